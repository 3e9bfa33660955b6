//! The restart campaign: `kadeploy3d` SIGKILLed at seeded random moments while `kaload --url` deploys on
//! it and a writer adds environments and rights. After each kill the database passes
//! `PRAGMA integrity_check` and no workflow left `running` by an earlier kill is still `running`; the
//! restarted server still has every environment, right and workflow statistic it acknowledged before
//! any kill, no node in a `…ing` state, and no workflow in memory.
//!
//! CI runs [`restart_campaign`] (6 kills). The longer run, with the count and seed from the environment:
//!
//! ```text
//! KADEPLOY_CAMPAIGN_KILLS=60 KADEPLOY_CAMPAIGN_SEED=7 \
//!     cargo test -p kadeploy3d --test restart_campaign -- --ignored --nocapture
//! ```

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The sample configuration: 300 simulated nodes.
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../simulator/config/sim300");

/// Virtual seconds per real second: one `kaload` run (ten 30-node deployments) lasts about 2 s, so kills
/// (0.3 to 5.3 s after the load starts) land in the middle of workflows, at their ends and between runs.
const PACE: &str = "100";

/// `kaload`'s shape: 10 concurrent deployments of 30 nodes (all 300 nodes), polled every 100 ms.
const KALOAD: [&str; 6] = ["--workflows", "10", "--nodes", "30", "--poll-ms", "100"];

/// The campaign CI runs: 6 kills, a fixed seed.
#[test]
fn restart_campaign() {
    let report = campaign("ci", 6, 0x5eed);
    println!("{report}");
}

/// The longer campaign: `KADEPLOY_CAMPAIGN_KILLS` kills (default 50), seed `KADEPLOY_CAMPAIGN_SEED`.
#[test]
#[ignore = "long: run with --ignored (KADEPLOY_CAMPAIGN_KILLS, KADEPLOY_CAMPAIGN_SEED)"]
fn restart_campaign_long() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let report = campaign(
        "long",
        var("KADEPLOY_CAMPAIGN_KILLS", 50) as usize,
        var("KADEPLOY_CAMPAIGN_SEED", 1),
    );
    println!("{report}");
}

/// What the server acknowledged (200) before the kills.
#[derive(Default)]
struct Acked {
    /// Environment names.
    envs: BTreeSet<String>,
    /// Partitions of user `camper` on `node-1.sim.kadeploy`.
    parts: BTreeSet<String>,
    /// Finished workflows without error: wid → (OK nodes, KO nodes).
    workflows: BTreeMap<String, (usize, usize)>,
}

/// Runs `kills` rounds (start, load, kill -9, check) and returns the figures.
fn campaign(name: &str, kills: usize, seed: u64) -> String {
    let dir = std::env::temp_dir().join(format!("kadeploy-campaign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let conf = config_copy(&dir);
    let db = dir.join("db.sqlite");
    let mut rng = SplitMix(seed);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut left_running: BTreeSet<String> = BTreeSet::new();
    let (mut mid_workflow, mut aborted_total, mut kaload_runs) = (0, 0, 0);
    let started = Instant::now();
    for round in 0..kills {
        let mut server = Server::start(&conf, &db);
        let port = server.port;
        if round == 0 {
            seed_catalog(port);
        }
        check_server(port, &acked.lock().unwrap_or_else(|e| e.into_inner()));

        let stop = Arc::new(AtomicBool::new(false));
        let load = spawn_kaload(port, stop.clone());
        let writer = spawn_writer(port, round, stop.clone(), acked.clone());
        let observer = spawn_observer(port, stop.clone(), acked.clone());
        let delay = 300 + rng.below(5000);
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        kaload_runs += load.join().unwrap_or(0);
        let _ = writer.join();
        let _ = observer.join();

        let running = check_database(&db);
        assert!(
            running.is_disjoint(&left_running),
            "round {round}: workflows left running by the previous kill are still running: {:?}",
            running.intersection(&left_running).collect::<Vec<_>>()
        );
        if !running.is_empty() {
            mid_workflow += 1;
        }
        aborted_total += running.len();
        left_running = running;
    }
    // The last restart: everything is still there and the workflows of the last kill are aborted.
    let mut server = Server::start(&conf, &db);
    let a = acked.lock().unwrap_or_else(|e| e.into_inner());
    check_server(server.port, &a);
    server.kill();
    let running = check_database(&db);
    assert!(running.is_empty(), "still running: {running:?}");
    let report = format!(
        "restart campaign '{name}' seed {seed}: {kills} kills in {:.0} s ({kaload_runs} kaload runs), \
         {mid_workflow} kills during workflows ({aborted_total} workflows recorded aborted at restart); \
         checked after every restart: {} environments, {} rights, {} finished workflows' statistics; \
         integrity_check ok {} times",
        started.elapsed().as_secs_f64(),
        a.envs.len(),
        a.parts.len(),
        a.workflows.len(),
        kills + 1
    );
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// The database as the kill left it: `integrity_check` is `ok`; returns the workflows still `running`.
fn check_database(db: &Path) -> BTreeSet<String> {
    let store = kadeploy_server::store::Store::open(db).expect("the database opens after the kill");
    store
        .transaction(|tx| {
            let integrity: String = tx.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            assert_eq!(integrity, "ok", "integrity_check");
            let mut stmt = tx.prepare("SELECT wid FROM workflows WHERE state = 'running'")?;
            let wids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<BTreeSet<String>, _>>()?;
            Ok(wids)
        })
        .expect("the database reads")
}

/// The restarted server has everything acknowledged, no busy node and no workflow in memory.
fn check_server(port: u16, a: &Acked) {
    let envs = get_json(port, "/environments");
    let names: BTreeSet<String> = envs
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|e| e["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<_> = a.envs.difference(&names).collect();
    assert!(lost.is_empty(), "acknowledged environments lost: {lost:?}");
    if !a.parts.is_empty() {
        let rights = get_json(port, "/rights/camper");
        let parts: BTreeSet<String> = rights["camper"]["node-1.sim.kadeploy"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let lost: Vec<_> = a.parts.difference(&parts).collect();
        assert!(lost.is_empty(), "acknowledged rights lost: {lost:?}");
    }
    for (wid, (ok, ko)) in &a.workflows {
        let path = format!("/stats?wid={wid}&fields=hostname&fields=success");
        let (status, csv) = call(port, "GET", &path, None).expect("GET /stats");
        assert_eq!(status, 200, "{csv}");
        let rows: Vec<&str> = csv.lines().collect();
        let successes = rows.iter().filter(|l| l.ends_with(",true")).count();
        assert_eq!(
            (successes, rows.len() - successes),
            (*ok, *ko),
            "statistics of the finished workflow {wid}: {csv}"
        );
    }
    let nodes = get_json(port, "/nodes");
    let busy: Vec<_> = nodes
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, n)| n["state"].as_str().is_some_and(|s| s.ends_with("ing")))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        busy.is_empty(),
        "nodes still busy after a restart: {busy:?}"
    );
    assert_eq!(get_json(port, "/deployment"), json!([]));
}

/// `kaload --url` in a loop (a new run when one ends) until `stop`; returns the runs started.
fn spawn_kaload(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut runs = 0;
        while !stop.load(Ordering::SeqCst) {
            let child = Command::new(env!("CARGO_BIN_EXE_kaload"))
                .arg("--url")
                .arg(format!("http://127.0.0.1:{port}"))
                .args(KALOAD)
                .args(["--timeout-s", "120"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let Ok(mut child) = child else {
                panic!("kaload does not start");
            };
            runs += 1;
            loop {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                if stop.load(Ordering::SeqCst) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        runs
    })
}

/// Adds environments `camp-<round>-<i>` and partitions `/dev/camp<round>p<i>` of `camper` until `stop`,
/// recording what is acknowledged.
fn spawn_writer(
    port: u16,
    round: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let name = format!("camp-{round}-{i}");
            let mut e = environment();
            e["name"] = json!(name);
            if let Some((200, _)) = call(
                port,
                "POST",
                "/environments",
                Some(&json!({"environment": e})),
            ) {
                acked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .envs
                    .insert(name);
            }
            let part = format!("/dev/camp{round}p{i}");
            let body = json!({"username": "camper", "nodes": ["node-1.sim.kadeploy"], "partitions": [part]});
            if let Some((200, _)) = call(port, "POST", "/rights", Some(&body)) {
                acked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .parts
                    .insert(part);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Polls `GET /deployment` until `stop`, recording the workflows shown finished without error.
fn spawn_observer(port: u16, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if let Some((200, text)) = call(port, "GET", "/deployment", None)
                && let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&text)
            {
                let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                for w in list
                    .iter()
                    .filter(|w| w["done"] == true && w["error"] == false)
                {
                    let count = |k: &str| w["nodes"][k].as_array().map_or(0, Vec::len);
                    if let Some(wid) = w["wid"].as_str() {
                        a.workflows.insert(wid.into(), (count("ok"), count("ko")));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    })
}

/// Root's rights on every node and root's `debian12`, as `kaload` expects them.
fn seed_catalog(port: u16) {
    let rights = json!({"nodes": ["*"], "partitions": ["*"], "username": "root"});
    assert_eq!(
        call(port, "POST", "/rights", Some(&rights)).map(|r| r.0),
        Some(200)
    );
    let env = json!({"environment": environment()});
    assert_eq!(
        call(port, "POST", "/environments", Some(&env)).map(|r| r.0),
        Some(200)
    );
}

fn environment() -> Value {
    json!({
        "name": "debian12", "version": 1, "visibility": "shared", "os": "linux", "filesystem": "ext4",
        "image": {"file": format!("server://{}/debian12.tgz", image_dir().display()),
            "kind": "tar", "compression": "gzip"},
        "boot": {"kernel": "/vmlinuz"}
    })
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, text) = call(port, "GET", path, None).unwrap_or_else(|| panic!("GET {path}"));
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

/// One HTTP/1.1 request as `root` on a fresh connection: (status, body gunzipped), `None` when the
/// server is gone (the kill) or the answer is cut.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Kadeploy-User: root\r\n\
         Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let raw = &buf[end + 4..];
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    if length.is_some_and(|n| n != raw.len()) || head.contains("transfer-encoding") {
        return None;
    }
    let text = if head.contains("content-encoding: gzip") {
        let mut out = String::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_string(&mut out)
            .ok()?;
        out
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    Some((status, text))
}

/// A `kadeploy3d` on loopback; SIGKILLed and reaped by `kill` and on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(conf: &Path, db: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kadeploy3d"))
            .arg("-c")
            .arg(conf)
            .args(["--bind", "127.0.0.1:0", "--time-scale", PACE, "--database"])
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("kadeploy3d starts");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        match (read, port) {
            (Ok(_), Some(port)) => Server { child, port },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kadeploy3d did not print its listening line: {line:?}");
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A copy of the sample configuration in `dir/conf`, over plain HTTP, with the loopback ACL on.
fn config_copy(dir: &Path) -> PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    for entry in std::fs::read_dir(SAMPLE).expect("sample dir").flatten() {
        std::fs::copy(entry.path(), conf.join(entry.file_name())).expect("copy");
    }
    let server = conf.join("server.conf");
    let text = std::fs::read_to_string(&server).expect("server.conf");
    std::fs::write(
        &server,
        text.replace("secure_server: true", "secure_server: false")
            // The sample's commented-out loopback ACL: the load speaks for root from 127.0.0.1.
            .replace("\n  # acl: {", "\n  acl: {")
            // The image the campaign registers: the server reads it for its checksum.
            .replace(
                "server_file_directories:\n    - /envs",
                &format!("server_file_directories:\n    - {}", image_dir().display()),
            ),
    )
    .expect("server.conf");
    std::fs::create_dir_all(image_dir()).expect("image dir");
    std::fs::write(
        image_dir().join("debian12.tgz"),
        b"restart campaign image\n",
    )
    .expect("image");
    conf
}

/// Where the campaign's image is (allowed for `server://` references by its configuration).
fn image_dir() -> PathBuf {
    std::env::temp_dir().join(format!("kadeploy-campaign-envs-{}", std::process::id()))
}

/// SplitMix64: the campaign's seeded kill moments.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}
