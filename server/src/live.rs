//! The application a listener serves, replaceable while it serves: a configuration reload swaps it in for
//! the next requests, and a shutdown turns new workflow submissions away with Kadeploy's 503 ("The service
//! is being shutdown") while the running ones can still be followed.

use super::App;
use super::api;
use super::reply::{self, HttpError};
use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tower::ServiceExt as _;

/// The served application and its router.
pub struct Live {
    current: RwLock<(Arc<App>, Router)>,
    draining: AtomicBool,
}

impl Live {
    /// Serves `app`.
    pub fn new(app: Arc<App>) -> Arc<Live> {
        let router = router(&app);
        Arc::new(Live {
            current: RwLock::new((app, router)),
            draining: AtomicBool::new(false),
        })
    }

    /// The application serving now.
    pub fn app(&self) -> Arc<App> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Serves `app` from the next request on.
    pub fn replace(&self, app: Arc<App>) {
        let router = router(&app);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (app, router);
    }

    /// Refuses new workflows from now on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// New workflows are refused.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The service of a listener: each request goes to the application serving when it arrives.
    pub fn service(self: &Arc<Self>) -> Router {
        let live = self.clone();
        Router::new().fallback(move |req: Request| {
            let live = live.clone();
            async move { live.handle(req).await }
        })
    }

    async fn handle(&self, req: Request) -> Response {
        if self.draining() && submits(&req) {
            return reply::render_error(
                HttpError::Status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is being shutdown".into(),
                ),
                None,
            );
        }
        let router = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        match router.oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }
}

fn router(app: &Arc<App>) -> Router {
    api::router(app)
}

/// The request may start a workflow or change state: every POST and PUT, and `GET /power?nodes=`.
fn submits(req: &Request) -> bool {
    let m = req.method();
    *m == Method::POST
        || *m == Method::PUT
        || (*m == Method::GET
            && req.uri().path().trim_end_matches('/') == "/power"
            && req.uri().query().is_some_and(|q| q.contains("nodes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str) -> Request {
        let mut r = Request::new(axum::body::Body::empty());
        *r.method_mut() = method;
        *r.uri_mut() = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
        r
    }

    #[test]
    fn submissions_are_posts_puts_and_power_status_queries() {
        assert!(submits(&req(Method::POST, "/deployment")));
        assert!(submits(&req(Method::PUT, "/power")));
        assert!(submits(&req(Method::GET, "/power?nodes=n1")));
        assert!(submits(&req(Method::GET, "/power/?nodes=n1")));
        assert!(!submits(&req(Method::GET, "/power")));
        assert!(!submits(&req(Method::GET, "/deployment/D-1/status")));
        assert!(!submits(&req(Method::DELETE, "/deployment/D-1")));
    }
}
