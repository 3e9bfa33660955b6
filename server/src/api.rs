//! The REST API's HTTP layer (spec §3): axum's router, one file per resource, typed extractors.
//!
//! Every request goes through the same layers, outermost first: [`guard`] (a panic is a 500 and the
//! connection survives), [`render`] (content negotiation: an unacceptable `Accept` is a 406 before
//! anything else; then the handler's reply or error is rendered for the client), [`path`] (empty
//! segments dropped and escapes made canonical, so that `//deployment/` is `/deployment` and a broken
//! escape is kept literally), then routing. An unknown path is a 404 at once. The resources that need a
//! user go through [`authenticate`] (the body and the query string become the request's parameters,
//! then the user is authenticated), then their handler, in Kadeploy's order: authenticate, prepare
//! (typed parameters), check rights, run.
//!
//! Each route takes every method and its handler dispatches on it: Kadeploy authenticates, and looks up
//! the workflow or console a path names, before it answers 405 with the resource's `Allow` list, and a
//! `HEAD` is a 405 like any other method a resource does not list. axum's method router would answer
//! 405 before the handler runs, send `HEAD` to the `GET` handler and add its own `Allow` header to
//! every answer of a method fallback.

mod authenticate;
mod body;
mod console;
mod deployment;
mod environments;
mod extract;
mod guard;
mod info;
mod nodes;
mod path;
mod power;
mod reboot;
mod render;
mod rights;
mod stats;
mod submission;
mod version;
mod workflows;

pub use authenticate::LocalPort;

use crate::App;
use crate::reply::not_found;
use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use std::sync::Arc;
use tower::ServiceBuilder;
use tower::util::MapRequestLayer;

/// The API of `app`: every route and layer.
pub fn router(app: &Arc<App>) -> Router {
    let resources = Router::new()
        .merge(deployment::routes())
        .merge(reboot::routes())
        .merge(power::routes())
        .merge(environments::routes())
        .merge(rights::routes())
        .merge(nodes::routes())
        .merge(stats::routes())
        .merge(console::routes())
        .layer(from_fn_with_state(app.clone(), authenticate::layer));
    let routes = Router::new()
        .merge(version::routes())
        .merge(info::routes())
        .merge(resources)
        .fallback(|| async { not_found(String::new()) })
        .with_state(app.clone());
    let service = ServiceBuilder::new()
        .layer(from_fn(guard::layer))
        .layer(from_fn_with_state(app.clone(), render::layer))
        .layer(MapRequestLayer::new(path::normalize))
        .service(routes);
    Router::new().fallback_service(service)
}
