//! The life of a submitted workflow, as Kadeploy's clients follow it: submit, poll the resource and print
//! its incremental logs until it is done, read its final state, delete it, then write the OK/KO files and
//! print the summary (or one JSON object with `--json`). Ctrl-C and errors delete the workflow; Enter
//! prints its status.

use super::interrupt::StatusRequests;
use super::{Common, usage};
use crate::{Api, ClientError};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::Write as _;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the client asks of one server.
#[derive(Clone, Debug)]
pub struct Job {
    /// Index of the server in the connected list.
    pub server: usize,
    /// The nodes this server handles.
    pub nodes: Vec<String>,
    /// Cancelled on Ctrl-C.
    pub cancel: CancellationToken,
    /// Enter pressed.
    pub status: StatusRequests,
}

/// The submission: method, path and Kadeploy's name of the operation.
pub struct Operation {
    method: Method,
    path: &'static str,
    name: &'static str,
}

impl Operation {
    /// `name` is `Deployment`, `Reboot operation` or `Power operation`.
    pub fn new(method: Method, path: &'static str, name: &'static str) -> Operation {
        Operation { method, path, name }
    }
}

/// Submits and polls a workflow, Kadeploy style.
pub(super) async fn run(
    api: &Api,
    c: &Common,
    op: Operation,
    p: Map<String, Value>,
    job: &Job,
) -> Result<(), ClientError> {
    let sub = submit(api, &op, p).await?;
    if c.global.dry_run {
        return Ok(());
    }
    let wid = sub["wid"].as_str().unwrap_or("").to_string();
    let resources = Resources(&sub["resources"]);
    let result = after_submit(api, c, &op, &wid, &resources, job).await;
    if result.is_err() && !wid.is_empty() {
        // Kadeploy's client frees its workflow on any failure (`ClientWorkflow#kill`).
        let _ = api
            .json(Method::DELETE, &resources.path("resource"), &[], None)
            .await;
    }
    result
}

async fn after_submit(
    api: &Api,
    c: &Common,
    op: &Operation,
    wid: &str,
    resources: &Resources<'_>,
    job: &Job,
) -> Result<(), ClientError> {
    if let Some(f) = &c.write_wid {
        std::fs::write(f, wid).map_err(|e| usage(&format!("{f}: {e}")))?;
    }
    if c.no_wait {
        api.say(&format!("{wid} {}", resources.path("resource")));
        return Ok(());
    }
    if !c.json {
        api.say(&format!("{} #{wid} started", op.name));
    }
    let last = follow(api, c, op, resources, job).await?;
    if last["error"] == json!(true) {
        api.text(Method::GET, &resources.path("error"), &[], None)
            .await?;
    }
    let state = api
        .json(Method::GET, &resources.path("state"), &[], None)
        .await?;
    api.json(Method::DELETE, &resources.path("resource"), &[], None)
        .await?;
    let end = End::of(&state);
    append(&c.ok_file, &end.ok)?;
    append(
        &c.ko_file,
        &end.ko.iter().map(|k| k.0.clone()).collect::<Vec<_>>(),
    )?;
    if c.json {
        end.print_json(wid);
    } else {
        api.say(&end.text(wid, op.name));
    }
    Ok(())
}

/// The paths of a submitted workflow's resources (`resource`, `log`, `error`, `state`, `status`).
struct Resources<'a>(&'a Value);

impl Resources<'_> {
    fn path(&self, key: &str) -> String {
        self.0[key].as_str().unwrap_or("").to_string()
    }
}

/// Sends the submission: power status is a GET with the nodes (and flags) in the query, the rest a body.
async fn submit(api: &Api, op: &Operation, p: Map<String, Value>) -> Result<Value, ClientError> {
    if op.method == Method::GET {
        api.json(op.method.clone(), op.path, &query(&p), None).await
    } else {
        api.json(op.method.clone(), op.path, &[], Some(&Value::Object(p)))
            .await
    }
}

/// Parameters as a query string (`URI.encode_www_form`): arrays repeat their key, `true` is `"true"`.
pub(crate) fn query(p: &Map<String, Value>) -> Vec<(&str, String)> {
    let mut q = Vec::new();
    for (k, v) in p {
        match v {
            Value::Array(items) => q.extend(items.iter().map(|i| (k.as_str(), scalar(i)))),
            v => q.push((k.as_str(), scalar(v))),
        }
    }
    q
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Polls the workflow until it is done, printing its logs as they come (not with `--json`); gives the
/// last workflow object. Ctrl-C deletes the workflow; Enter prints its status.
async fn follow(
    api: &Api,
    c: &Common,
    op: &Operation,
    resources: &Resources<'_>,
    job: &Job,
) -> Result<Value, ClientError> {
    let every = std::time::Duration::from_millis(if c.json { 200 } else { 1000 });
    let start = Instant::now();
    let mut status = job.status.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = job.cancel.cancelled() => {
                let _ = api.json(Method::DELETE, &resources.path("resource"), &[], None).await;
                return Err(ClientError::Interrupted);
            }
            () = status.next() => {
                let stats = api.json(Method::GET, &resources.path("status"), &[], None).await?;
                api.say(&status_text(op.name, start.elapsed().as_secs(), &stats));
                continue;
            }
        }
        let w = api
            .json(Method::GET, &resources.path("resource"), &[], None)
            .await?;
        let mut lines: Vec<(f64, String)> = Vec::new();
        if w["logs"] == json!(true) {
            let text = api
                .text(Method::GET, &resources.path("log"), &[], None)
                .await?;
            lines.extend(timed_lines(&text, ""));
        }
        // `-d`: the per-node command traces, `[dbg] ` lines merged with the logs.
        if c.debug && w["debugs"] == json!(true) {
            let text = api
                .text(Method::GET, &resources.path("debug"), &[], None)
                .await?;
            lines.extend(timed_lines(&text, "[dbg] "));
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !c.json && !lines.is_empty() {
            let text: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
            api.say(&text.join("\n"));
        }
        if w["done"] == json!(true) || w["error"] == json!(true) {
            return Ok(w);
        }
    }
}

/// `<epoch float>|<message>` lines as (time, `tag` + message); lines without a time sort first.
fn timed_lines(text: &str, tag: &str) -> Vec<(f64, String)> {
    (text.lines().filter(|l| !l.is_empty()))
        .map(|l| match l.split_once('|') {
            Some((t, m)) => (t.parse().unwrap_or(0.0), format!("{tag}{m}")),
            None => (0.0, format!("{tag}{l}")),
        })
        .collect()
}

/// The snapshot printed when Enter is pressed (`ClientWorkflow#display_status`).
pub fn status_text(op: &str, elapsed: u64, stats: &Value) -> String {
    let mut out = vec!["---".to_string()];
    match stats.as_object() {
        Some(m) if !m.is_empty() => {
            out.push(format!("{op} status ({elapsed}s):"));
            if m.len() == 1 {
                if let Some((_, stat)) = m.iter().next() {
                    status_cluster(stat, "", &mut out);
                }
            } else {
                for (cluster, stat) in m {
                    out.push(format!("  [{cluster}]"));
                    status_cluster(stat, "  ", &mut out);
                }
            }
        }
        _ => out.push(format!("{op} did not start at the moment")),
    }
    out.push("---".into());
    out.join("\n")
}

/// One cluster of the status (`display_status_cluster`).
fn status_cluster(stat: &Value, prefix: &str, out: &mut Vec<String>) {
    let names = |v: &Value| -> Vec<String> {
        (v.as_array().into_iter().flatten())
            .map(|n| {
                n.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| n.to_string())
            })
            .collect()
    };
    for (macro_step, micros) in stat.as_object().into_iter().flatten() {
        match micros {
            Value::Object(micros) => {
                for (micro, status) in micros {
                    match status {
                        Value::Object(s) => {
                            for (state, nodes) in s
                                .get("nodes")
                                .and_then(Value::as_object)
                                .into_iter()
                                .flatten()
                            {
                                let nodes = names(nodes);
                                if nodes.is_empty() {
                                    continue;
                                }
                                let time = s.get("time").map(|t| t.to_string()).unwrap_or_default();
                                out.push(format!(
                                    "{prefix}  [{macro_step}-{micro}] ~{time}s ({state})"
                                ));
                                out.push(format!(
                                    "{prefix}     {}",
                                    nodes.join(&format!("\n{prefix}     "))
                                ));
                            }
                        }
                        Value::Array(_) => {
                            out.push(format!("{prefix}  [{macro_step}-{micro}]"));
                            out.push(format!(
                                "{prefix}    {}",
                                names(status).join(&format!("\n{prefix}    "))
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Value::Array(_) => {
                out.push(format!("{prefix}  [{macro_step}]"));
                out.push(format!(
                    "{prefix}    {}",
                    names(micros).join(&format!("\n{prefix}    "))
                ));
            }
            _ => {}
        }
    }
}

/// A finished workflow's nodes: OK, KO with their errors, and power status outputs.
struct End {
    ok: Vec<String>,
    ko: Vec<(String, String)>,
    outs: Vec<(String, String)>,
}

impl End {
    /// Reads the `state` resource.
    fn of(state: &Value) -> End {
        let mut ok = Vec::new();
        let mut ko = Vec::new();
        for (node, s) in state.as_object().into_iter().flatten() {
            if s["state"] == json!("ko") {
                ko.push((node.clone(), s["error"].as_str().unwrap_or("").to_string()));
            } else {
                ok.push(node.clone());
            }
        }
        // Power status: each node's `power_status` output (`node: <stdout>` between `---` lines).
        let outs = state
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(node, s)| {
                s["out"]
                    .as_str()
                    .map(|o| (node.clone(), o.trim().to_string()))
            })
            .collect();
        End { ok, ko, outs }
    }

    /// `--json`: one object with the workflow id, the OK and KO nodes, and the status outputs.
    fn print_json(&self, wid: &str) {
        let ko: Vec<Value> = (self.ko.iter())
            .map(|(n, e)| json!({"node": n, "error": e}))
            .collect();
        let mut answer = json!({"wid": wid, "ok": self.ok, "ko": ko});
        if !self.outs.is_empty() {
            answer["status"] = (self.outs.iter())
                .map(|(n, o)| (n.clone(), json!(o)))
                .collect();
        }
        println!("{answer}");
    }

    /// Kadeploy's summary (`<Operation> #<wid> done`, then the OK and KO lists).
    fn text(&self, wid: &str, op: &str) -> String {
        let lower = op.to_lowercase();
        let mut out = Vec::new();
        if !self.outs.is_empty() {
            out.push("---".to_string());
            out.extend(self.outs.iter().map(|(n, o)| format!("{n}: {o}")));
            out.push("---".into());
        }
        out.push(format!("{op} #{wid} done"));
        if !self.ok.is_empty() {
            out.push(format!("\nThe {lower} is successful on nodes"));
            out.extend(self.ok.iter().cloned());
        }
        if !self.ko.is_empty() {
            out.push(format!("\nThe {lower} failed on nodes"));
            out.extend(self.ko.iter().map(|(n, e)| format!("{n} ({e})")));
        }
        out.join("\n")
    }
}

/// Appends `nodes` to the file at `path`, one per line (`-o`/`-n`).
fn append(path: &Option<String>, nodes: &[String]) -> Result<(), ClientError> {
    if let Some(path) = path {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| usage(&format!("{path}: {e}")))?;
        for n in nodes {
            writeln!(f, "{n}").map_err(|e| usage(&format!("{path}: {e}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lines_are_tagged_and_merged_by_time() {
        let mut lines = timed_lines("2.0|second\n\n1.0|first\n", "");
        lines.extend(timed_lines("1.5|COMMAND: true\n", "[dbg] "));
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(text, ["first", "[dbg] COMMAND: true", "second"]);
    }
}
