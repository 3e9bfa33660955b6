//! The life of a submitted workflow, as Kadeploy's clients follow it: submit, poll the resource and print
//! its incremental logs until it is done, read its final state, delete it, then write the OK/KO files and
//! print the summary (or one JSON object with `--json`).

use super::{Common, usage};
use crate::{Api, ClientError};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::Write as _;

/// Submits and polls a workflow, Kadeploy style.
pub(super) async fn run(
    api: &Api,
    c: &Common,
    method: Method,
    path: &str,
    p: Map<String, Value>,
    op: &str,
    lower: &str,
) -> Result<(), ClientError> {
    if c.ok_file.is_some() && c.ok_file == c.ko_file {
        return Err(usage("The OK and KO files must differ"));
    }
    let sub = submit(api, method, path, p).await?;
    if c.dry_run {
        return Ok(());
    }
    let wid = sub["wid"].as_str().unwrap_or("").to_string();
    let resources = Resources(&sub["resources"]);
    if let Some(f) = &c.write_wid {
        std::fs::write(f, &wid).map_err(|e| usage(&format!("{f}: {e}")))?;
    }
    if c.no_wait {
        println!("{wid} {}", resources.path("resource"));
        return Ok(());
    }
    if !c.json {
        println!("{op} #{wid} started");
    }
    follow(api, c, &resources).await?;
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
        end.print_json(&wid);
    } else {
        end.print(&wid, op, lower);
    }
    Ok(())
}

/// The paths of a submitted workflow's resources (`resource`, `log`, `error`, `state`).
struct Resources<'a>(&'a Value);

impl Resources<'_> {
    fn path(&self, key: &str) -> String {
        self.0[key].as_str().unwrap_or("").to_string()
    }
}

/// Sends the submission: power status is a GET with the nodes in the query, the rest a body.
async fn submit(
    api: &Api,
    method: Method,
    path: &str,
    p: Map<String, Value>,
) -> Result<Value, ClientError> {
    if method == Method::GET {
        let q: Vec<(&str, String)> = p["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .map(|n| ("nodes", n.to_string()))
            .collect();
        api.json(method, path, &q, None).await
    } else {
        api.json(method, path, &[], Some(&Value::Object(p))).await
    }
}

/// Polls the workflow until it is done, printing its logs as they come (not with `--json`).
async fn follow(api: &Api, c: &Common, resources: &Resources<'_>) -> Result<(), ClientError> {
    let every = std::time::Duration::from_millis(if c.json { 200 } else { 1000 });
    loop {
        tokio::time::sleep(every).await;
        let w = api
            .json(Method::GET, &resources.path("resource"), &[], None)
            .await?;
        if w["logs"] == json!(true) {
            let text = api
                .text(Method::GET, &resources.path("log"), &[], None)
                .await?;
            let mut lines: Vec<(f64, String)> = text
                .lines()
                .filter_map(|l| {
                    l.split_once('|')
                        .map(|(t, m)| (t.parse().unwrap_or(0.0), m.to_string()))
                })
                .collect();
            lines.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !c.json {
                for (_, l) in lines {
                    println!("{l}");
                }
            }
        }
        if w["error"] == json!(true) {
            api.text(Method::GET, &resources.path("error"), &[], None)
                .await?;
        }
        if w["done"] == json!(true) {
            return Ok(());
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

    /// Kadeploy's summary.
    fn print(&self, wid: &str, op: &str, lower: &str) {
        if !self.outs.is_empty() {
            println!("---");
            self.outs.iter().for_each(|(n, o)| println!("{n}: {o}"));
            println!("---");
        }
        println!("{op} #{wid} done");
        if !self.ok.is_empty() {
            println!("\nThe {lower} is successful on nodes");
            self.ok.iter().for_each(|n| println!("{n}"));
        }
        if !self.ko.is_empty() {
            println!("\nThe {lower} failed on nodes");
            self.ko.iter().for_each(|(n, e)| println!("{n} ({e})"));
        }
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
