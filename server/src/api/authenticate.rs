//! The layer in front of every resource that needs a user (Kadeploy's `launch`, before `prepare`): the
//! body ([`super::body`]) and the query string become the request's [`Params`] (query keys win, repeated
//! keys become arrays), then the user is authenticated ([`crate::auth`]). Handlers take both as
//! extractors ([`super::extract`]). A body error is answered before authentication, as Kadeploy does.

use super::body;
use crate::App;
use crate::auth::{self, Caller, Credentials};
use crate::params::Params;
use crate::reply::HttpError;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::Map;
use std::net::SocketAddr;
use std::sync::Arc;

/// The port the API listens on, added to every request by the listener (ident queries need it).
#[derive(Clone, Copy, Debug)]
pub struct LocalPort(pub u16);

/// Authenticates the request, then hands it, with its [`Caller`] and [`Params`], to the resource.
pub async fn layer(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match authenticated(&app, peer, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authenticated(app: &App, peer: SocketAddr, req: Request) -> Result<Request, HttpError> {
    let (mut parts, body) = req.into_parts();
    let object = if body::announced(&parts.headers) {
        body::object(&parts.headers, body).await?
    } else {
        Map::new()
    };
    let params = Params::merge(object, parts.uri.query());
    let tls = parts
        .extensions
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .cloned();
    let local_port = parts
        .extensions
        .get::<LocalPort>()
        .map_or(app.settings.port, |p| p.0);
    let creds = Credentials {
        headers: &parts.headers,
        peer,
        local_port,
        tls_cert: tls
            .as_ref()
            .and_then(|t| t.peer_certificates.first())
            .map(Vec::as_slice),
    };
    let user = auth::authenticate(&app.settings, &creds).await?;
    let caller = Caller {
        almighty: app.almighty(&user),
        user,
        peer,
    };
    parts.extensions.insert(caller);
    parts.extensions.insert(params);
    Ok(Request::from_parts(parts, Body::empty()))
}
