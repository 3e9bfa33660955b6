//! The API's typed extractors: the path segments of a route ([`Segments`], axum's `Path` answering
//! Kadeploy's 404 when it cannot be read), the [`Caller`] and [`Params`] that
//! [`super::authenticate`] attached to the request, and [`OnlyGet`] for the resources that exist for
//! `GET` alone.

use crate::auth::Caller;
use crate::params::Params;
use crate::reply::{HttpError, not_found};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use serde::de::DeserializeOwned;

/// The named segments of the route that matched, as `T` (a struct of `String`/`Option<String>`).
pub struct Segments<T>(pub T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Segments(t))
            .map_err(|_| not_found(String::new()))
    }
}

/// A value [`super::authenticate`] attaches is missing: the route was registered without the layer.
fn unauthenticated_route() -> HttpError {
    HttpError::Status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request handler failed".into(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(unauthenticated_route)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .remove::<Params>()
            .ok_or_else(unauthenticated_route)
    }
}

/// The request is a `GET`; any other method (`HEAD` included) finds nothing there: 404.
pub struct OnlyGet;

impl<S: Send + Sync> FromRequestParts<S> for OnlyGet {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        if parts.method == Method::GET {
            Ok(OnlyGet)
        } else {
            Err(not_found(String::new()))
        }
    }
}
