//! `GET /stats[/deploy|reboot|power]` (spec §3.12): the log rows as gzipped CSV, or failure rates.

use super::extract::Segments;
use super::guard::blocking;
use crate::App;
use crate::params::Params;
use crate::reply::{HttpError, Reply, method_not_allowed, not_found};
use crate::store::{STAT_FIELDS, StatsQuery};
use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::any;
use kadeploy::error::{ApiError, RequestError};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// `/stats[/{operation}[/{rest}]]` (deeper segments are ignored, as Kadeploy does).
#[derive(Default, Deserialize)]
struct StatsPath {
    operation: Option<String>,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/stats", any(collection))
        .route("/stats/{operation}", any(one))
        .route("/stats/{operation}/{*rest}", any(one))
}

async fn collection(
    State(app): State<Arc<App>>,
    params: Params,
    method: Method,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| stats(app, &method, &params, None)).await
}

async fn one(
    State(app): State<Arc<App>>,
    params: Params,
    method: Method,
    Segments(path): Segments<StatsPath>,
) -> Result<Reply, HttpError> {
    blocking(&app, move |app| {
        stats(app, &method, &params, path.operation.as_deref())
    })
    .await
}

/// `GET /stats[/deploy|reboot|power]`.
fn stats(
    app: &App,
    method: &Method,
    p: &Params,
    operation: Option<&str>,
) -> Result<Reply, HttpError> {
    if *method != Method::GET {
        return Err(method_not_allowed("GET"));
    }
    let op_prefix = match operation {
        None => None,
        Some("deploy") => Some('D'),
        Some("reboot") => Some('R'),
        Some("power") => Some('P'),
        Some(_) => return Err(not_found(String::new())),
    };
    let bad = |m: String| HttpError::Api(RequestError::new(ApiError::InvalidOption, m));
    let fields = p.strings("fields")?;
    if let Some(f) = fields
        .iter()
        .chain(p.strings("sort")?.iter())
        .find(|f| !STAT_FIELDS.contains(&f.as_str()))
    {
        return Err(bad(format!("Parameter 'fields': invalid field '{f}'")));
    }
    let date = |k: &str| -> Result<Option<i64>, HttpError> {
        p.string(k)?
            .map(|d| {
                httpdate::parse_http_date(&d)
                    .map(|t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .map(|x| x.as_secs() as i64)
                            .unwrap_or(0)
                    })
                    .map_err(|_| bad(format!("Parameter '{k}': invalid RFC 2616 date")))
            })
            .transpose()
    };
    let step_retries = p
        .strings("step_retries")?
        .iter()
        .map(|s| {
            s.parse::<u8>()
                .ok()
                .filter(|n| (1..=3).contains(n))
                .ok_or_else(|| bad(format!("Parameter 'step_retries': invalid step '{s}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let q = StatsQuery {
        op_prefix,
        nodes: p.strings("nodes")?,
        fields,
        sort: p.strings("sort")?,
        limit: p.int("limit")?.map(|l| l.max(0) as u64),
        wid: p.string("wid")?,
        date_min: date("date_min")?,
        date_max: date("date_max")?,
        min_retries: p.int("min_retries")?,
        step_retries,
    };
    match p.one_of("kind", &["all", "failure_rates"])?.as_deref() {
        Some("failure_rates") => {
            let min = p
                .string("min_failure_rate")?
                .map(|m| {
                    m.parse::<f64>()
                        .map_err(|_| bad("Parameter 'min_failure_rate': should be a Float".into()))
                })
                .transpose()?;
            Ok(Reply::Data(
                serde_json::to_value(app.store.failure_rates(&q, min)?).unwrap_or(Value::Null),
            ))
        }
        _ => Ok(Reply::Csv(app.store.stats_csv(&q)?)),
    }
}
