//! One load run: the server process (killed by PID on drop), the setup requests, the concurrent client
//! loops, and the report.

use super::Args;
use super::layout;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `kadeploy3d` started by the run; SIGKILLed and reaped on drop, also on error.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &std::path::Path, conf: &std::path::Path) -> anyhow::Result<Server> {
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .args(["--bind", "127.0.0.1:0", "--time-scale", "0", "--database"])
            .arg(conf.join("db.sqlite"))
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take();
        let mut server = Server { child, port: 0 };
        let mut line = String::new();
        if let Some(out) = stdout {
            BufReader::new(out).read_line(&mut line)?;
        }
        server.port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("kadeploy3d did not start: {line:?}"))?;
        Ok(server)
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`).
    fn status_kb(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// User + system CPU seconds of the process.
    fn cpu_s(&self) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let after = text.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }
}

/// A client speaking to the server as `root`.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Kadeploy-User", "root")
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(b)?);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, text) = self.call(method, path, body).await?;
        if status != 200 {
            bail!("{path}: HTTP {status}: {}", text.trim());
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// What one client loop measured.
#[derive(Default)]
struct Sample {
    submit: Duration,
    total: Duration,
    gets: Vec<Duration>,
    ok: usize,
    ko: usize,
}

async fn one(api: Arc<Api>, nodes: Vec<String>, poll: Duration) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let sub = api
        .json(
            reqwest::Method::POST,
            "/deployment",
            Some(
                &json!({"environment": {"kind": "database", "user": "root", "name": "debian12"},
                         "nodes": nodes}),
            ),
        )
        .await?;
    let mut s = Sample {
        submit: start.elapsed(),
        ..Sample::default()
    };
    let res = &sub["resources"];
    let path = |k: &str| res[k].as_str().unwrap_or_default().to_string();
    let (resource, log) = (path("resource"), path("log"));
    let w = loop {
        let t = Instant::now();
        let w = api.json(reqwest::Method::GET, &resource, None).await?;
        s.gets.push(t.elapsed());
        if w["logs"] == true {
            api.call(reqwest::Method::GET, &log, None).await?;
        }
        if w["done"] == true {
            break w;
        }
        tokio::time::sleep(poll).await;
    };
    if w["error"] == true {
        bail!("{resource}: the workflow failed: {w}");
    }
    api.json(reqwest::Method::GET, &path("state"), None).await?;
    api.json(reqwest::Method::DELETE, &resource, None).await?;
    s.total = start.elapsed();
    s.ok = w["nodes"]["ok"].as_array().map_or(0, Vec::len);
    s.ko = w["nodes"]["ko"].as_array().map_or(0, Vec::len);
    Ok(s)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clusters = args
        .clusters
        .unwrap_or(args.workflows)
        .clamp(1, args.workflows.max(1));
    let mut http = reqwest::Client::builder().tls_danger_accept_invalid_certs(true);
    if !args.keep_alive {
        http = http.pool_max_idle_per_host(0);
    }
    let http = http.build()?;
    if let Some(url) = &args.url {
        let api = Arc::new(Api {
            http,
            base: url.trim_end_matches('/').to_string(),
        });
        let per_workflow = nodes_of(&api, args.workflows, args.nodes).await?;
        return load(&args, api, per_workflow, 0, None).await;
    }
    let dir = std::env::temp_dir().join(format!("kaload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (conf, layout) = layout::write(&dir, args.workflows, args.nodes, clusters)?;
    let bin = match &args.server {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("kadeploy3d"),
    };
    let boot = Instant::now();
    let server = Server::start(&bin, &conf)?;
    let boot = boot.elapsed();
    let api = Arc::new(Api {
        http,
        base: format!("https://127.0.0.1:{}", server.port),
    });
    api.json(
        reqwest::Method::POST,
        "/rights",
        Some(&json!({"username": "root", "nodes": ["*"], "partitions": ["*"]})),
    )
    .await?;
    api.json(
        reqwest::Method::POST,
        "/environments",
        Some(&json!({"environment": {"name": "debian12", "version": 1, "visibility": "shared", "os": "linux",
            "filesystem": "ext4", "boot": {"kernel": "/vmlinuz"},
            "image": {"file": layout.image, "kind": "tar", "compression": "gzip"}}})),
    )
    .await?;
    let report = load(
        &args,
        api,
        layout.per_workflow,
        clusters,
        Some((&server, boot)),
    )
    .await;
    drop(server);
    if report.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    report
}

/// `workflows` disjoint sets of `nodes` nodes of the server at `api`.
async fn nodes_of(api: &Api, workflows: usize, nodes: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let list = api.json(reqwest::Method::GET, "/nodes?list", None).await?;
    let mut names: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.len() < workflows.saturating_mul(nodes) {
        bail!(
            "the server has {} nodes, {workflows} x {nodes} are needed",
            names.len()
        );
    }
    Ok(names
        .chunks(nodes.max(1))
        .take(workflows)
        .map(<[String]>::to_vec)
        .collect())
}

/// Runs the client loops and prints the report (with the server's figures when kaload started it).
async fn load(
    args: &Args,
    api: Arc<Api>,
    per_workflow: Vec<Vec<String>>,
    clusters: usize,
    server: Option<(&Server, Duration)>,
) -> anyhow::Result<()> {
    let rss_idle = server.and_then(|s| s.0.status_kb("VmRSS")).unwrap_or(0);
    let poll = Duration::from_millis(args.poll_ms);
    let start = Instant::now();
    let tasks: Vec<_> = per_workflow
        .into_iter()
        .map(|nodes| tokio::spawn(one(api.clone(), nodes, poll)))
        .collect();
    let mut samples = Vec::new();
    let deadline = Duration::from_secs(args.timeout_s);
    for t in tasks {
        let left = deadline.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, t).await {
            Ok(Ok(Ok(s))) => samples.push(s),
            Ok(Ok(Err(e))) => bail!("a workflow failed: {e:#}"),
            Ok(Err(e)) => bail!("a client task died: {e}"),
            Err(_) => bail!("timed out after {}s", args.timeout_s),
        }
    }
    let wall = start.elapsed();
    let hwm = server.and_then(|s| s.0.status_kb("VmHWM")).unwrap_or(0);
    let cpu = server.and_then(|s| s.0.cpu_s()).unwrap_or(0.0);

    let mut gets: Vec<Duration> = samples.iter().flat_map(|s| s.gets.clone()).collect();
    gets.sort();
    let mut totals: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    totals.sort();
    let mut submits: Vec<Duration> = samples.iter().map(|s| s.submit).collect();
    submits.sort();
    let (ok, ko): (usize, usize) = samples.iter().fold((0, 0), |a, s| (a.0 + s.ok, a.1 + s.ko));
    let on = if server.is_some() {
        format!("on {clusters} cluster(s)")
    } else {
        format!("on {}", api.base)
    };
    println!(
        "kaload: {} workflows x {} nodes {on}, poll {} ms, {} connections",
        args.workflows,
        args.nodes,
        args.poll_ms,
        if args.keep_alive {
            "kept-alive"
        } else {
            "one-per-request"
        }
    );
    if let Some((_, boot)) = server {
        println!("server start          {:.2} s", boot.as_secs_f64());
    }
    println!("nodes ok / ko         {ok} / {ko}");
    println!("wall time             {:.2} s", wall.as_secs_f64());
    println!(
        "throughput            {:.2} workflows/s ({:.0} nodes/s)",
        samples.len() as f64 / wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    );
    println!(
        "workflow duration     p50 {:.2} s, max {:.2} s",
        pct(&totals, 0.5) / 1000.0,
        pct(&totals, 1.0) / 1000.0
    );
    println!(
        "POST /deployment      p50 {:.1} ms, max {:.1} ms",
        pct(&submits, 0.5),
        pct(&submits, 1.0)
    );
    println!(
        "GET workflow          n {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        gets.len(),
        pct(&gets, 0.5),
        pct(&gets, 0.99),
        pct(&gets, 1.0)
    );
    if server.is_some() {
        println!(
            "server RSS            idle {:.1} MiB, peak (VmHWM) {:.1} MiB",
            rss_idle as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        println!("server CPU            {cpu:.2} s");
    }
    Ok(())
}
