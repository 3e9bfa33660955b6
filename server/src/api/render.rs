//! Content negotiation: a request whose `Accept` header names nothing the API speaks is a 406 before
//! anything else; the other requests get their handler's [`Reply`] or [`HttpError`] rendered as the
//! client asked (JSON or YAML, gzipped when accepted), by [`crate::reply`].
//!
//! Handlers return `Result<Reply, HttpError>`; both become a placeholder response carrying the value,
//! which this layer, knowing the request's `Accept` headers, renders.

use crate::App;
use crate::reply::{self, HttpError, Reply};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// A handler's answer, before rendering.
#[derive(Clone)]
struct Unrendered(Result<Reply, HttpError>);

fn unrendered(answer: Result<Reply, HttpError>) -> Response {
    let mut response = Response::default();
    response.extensions_mut().insert(Unrendered(answer));
    response
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        unrendered(Ok(self))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        unrendered(Err(self))
    }
}

/// The client accepts a gzipped body (`Accept-Encoding` names gzip, without a `*`).
fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip") && !v.contains('*'))
}

/// The negotiation layer: 406, or the rendered answer of the rest of the stack.
pub async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(format) = reply::negotiate(req.headers()) else {
        return reply::render_error(
            HttpError::Status(StatusCode::NOT_ACCEPTABLE, String::new()),
            None,
        );
    };
    let gz = accepts_gzip(&req);
    let mut response = next.run(req).await;
    match response.extensions_mut().remove::<Unrendered>() {
        Some(Unrendered(Ok(r))) => reply::render(r, format, gz),
        Some(Unrendered(Err(e))) => {
            let realm = app.settings.basic.as_ref().map(|b| b.realm.as_str());
            reply::render_error(e, realm)
        }
        None => response,
    }
}
