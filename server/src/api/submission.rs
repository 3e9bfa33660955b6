//! The steps of a submission's handler (`POST /deployment`, `POST /reboot`, `PUT /power`,
//! `GET /power?nodes=`), in Kadeploy's order: prepare (the typed submission) and check rights on the
//! blocking pool (they read the database); stop there for a dry run; fetch the files on the runtime;
//! admit the nodes and start the workflow on the blocking pool; answer its `wid` and resources.

use super::guard::blocking;
use crate::App;
use crate::auth::Caller;
use crate::params::Params;
use crate::reply::{HttpError, Reply};
use crate::submit::{self, Context, Submission};
use crate::workflow::Workflow;
use kadeploy::error::RequestError;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How a resource reads its submissions.
pub type Parse = fn(&Context<'_>, &Caller, &Params) -> Result<Submission, RequestError>;

/// Creates a workflow from the request's parameters, read by `parse`.
pub async fn create(
    app: Arc<App>,
    caller: Caller,
    params: Params,
    parse: Parse,
) -> Result<Reply, HttpError> {
    let submission = blocking(&app, move |app| {
        let submission = parse(&Context::of(app), &caller, &params)?;
        submit::rights::check(app, &caller.user, &submission)?;
        Ok(submission)
    })
    .await?;
    if submission.common().dry_run {
        return Ok(Reply::Text(String::new()));
    }
    let files = submission.fetch_files(&app).await?;
    let wf = blocking(&app, move |app| {
        Ok(submit::start::start(app, &submission, &files)?)
    })
    .await?;
    Ok(Reply::Data(resources(&wf)))
}

/// The submission answer: `wid` and the resource paths.
fn resources(wf: &Workflow) -> Value {
    let base = format!("/{}/{}", wf.kind.base(), wf.wid);
    let mut logs = Map::new();
    for p in &wf.parts {
        logs.insert(
            p.cluster_name.clone(),
            json!(format!("{base}/logs/{}?user={}", p.cluster_name, wf.user)),
        );
    }
    let mut res = json!({
        "resource": format!("{base}/"), "log": format!("{base}/logs"), "logs": logs,
        "state": format!("{base}/state"), "status": format!("{base}/status"), "error": format!("{base}/error"),
    });
    if wf.debug {
        res["debug"] = json!(format!("{base}/debugs"));
        let debugs: Map<String, Value> = wf
            .node_names()
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    json!(format!("{base}/debugs/{n}?user={}", wf.user)),
                )
            })
            .collect();
        res["debugs"] = Value::Object(debugs);
    }
    json!({"wid": wf.wid, "resources": res})
}
