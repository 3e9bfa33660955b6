//! End to end: the real `kadeploy3d` binary over HTTPS on loopback with the simulated 300-node cluster,
//! driven by the clients' `run` functions in-process (acceptance 1 and 2 of the control-plane issue), the
//! kill/restart scenario (acceptance 3) and raw-HTTP conformance (acceptance 5). One test binary: the
//! scenarios are modules under `e2e/`.

#[path = "e2e/attacks_auth.rs"]
mod attacks_auth;
#[path = "e2e/attacks_conn.rs"]
mod attacks_conn;
#[path = "e2e/attacks_console.rs"]
mod attacks_console;
#[path = "e2e/attacks_http.rs"]
mod attacks_http;
#[path = "e2e/attacks_store.rs"]
mod attacks_store;
#[path = "e2e/attacks_x509.rs"]
mod attacks_x509;
#[path = "e2e/auth.rs"]
mod auth;
#[path = "e2e/auto_broadcast.rs"]
mod auto_broadcast;
#[path = "e2e/autoclean.rs"]
mod autoclean;
#[path = "e2e/client_options.rs"]
mod client_options;
#[path = "e2e/clusters.rs"]
mod clusters;
#[path = "e2e/conformance.rs"]
mod conformance;
#[path = "e2e/conn.rs"]
mod conn;
#[path = "e2e/console.rs"]
mod console;
#[path = "e2e/export.rs"]
mod export;
#[path = "e2e/fuzz_http.rs"]
mod fuzz_http;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/netboot.rs"]
mod netboot;
#[path = "e2e/parity_envs.rs"]
mod parity_envs;
#[path = "e2e/parity_hooks.rs"]
mod parity_hooks;
#[path = "e2e/parity_workflows.rs"]
mod parity_workflows;
#[path = "e2e/restart.rs"]
mod restart;
#[path = "e2e/site_parity.rs"]
mod site_parity;

use harness::{Server, config_copy, setup};
use kadeploy_clients::{ClientEnv, tools, workflow};
use std::path::Path;

fn start(dir: &Path) -> Server {
    Server::start(&config_copy(dir, true), &dir.join("db.sqlite"), &[])
}

fn client(dir: &Path, port: u16, user: &str) -> ClientEnv {
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {port}, secure: true}}\n"
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");
    ClientEnv {
        config_dir: dir.to_path_buf(),
        user: user.into(),
    }
}

/// Our clients' environment for `user` against a plain-HTTP server on `port` (the raw `Http` harness
/// speaks plain HTTP too).
fn plain_client(dir: &Path, port: u16, user: &str) -> ClientEnv {
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {port}, secure: false}}\n"
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");
    ClientEnv {
        config_dir: dir.to_path_buf(),
        user: user.into(),
    }
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

async fn get(port: u16, user: &str, path: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let r = http
        .get(format!("https://127.0.0.1:{port}{path}"))
        .header("X-Kadeploy-User", user)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let gz = r.headers().get("content-encoding").is_some();
    let bytes = r.bytes().await.expect("body");
    let text = if gz {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .expect("gzip");
        out
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (status, text)
}

#[test]
fn deploy_300_nodes_then_stats_and_nodes_and_rights() {
    let dir = setup("deploy");
    let server = start(&dir);
    let root = client(&dir, server.port, "root");
    let bob = client(&dir, server.port, "bob");
    assert_eq!(
        tools::karights(&s(&["-a", "-u", "root", "-m", "*", "-p", "*"]), &root),
        0
    );
    let env = dir.join("env.yml");
    std::fs::write(
        &env,
        format!(
            "name: debian12\nversion: 1\nvisibility: shared\nos: linux\nfilesystem: ext4\n\
        image: {{file: '{}', kind: tar, compression: gzip}}\nboot: {{kernel: /vmlinuz}}\n",
            harness::image_ref()
        ),
    )
    .expect("env");
    assert_eq!(
        tools::kaenv(&s(&["-a", env.to_str().unwrap_or_default()]), &root),
        0
    );
    let nodes = dir.join("nodes");
    let all: Vec<String> = (1..=300)
        .map(|i| format!("node-{i}.sim.kadeploy"))
        .collect();
    std::fs::write(&nodes, all.join("\n")).expect("nodes");
    let (ok, ko, wid) = (dir.join("ok"), dir.join("ko"), dir.join("wid"));
    let args = [
        "-e",
        "debian12",
        "-f",
        nodes.to_str().unwrap_or_default(),
        "-o",
        ok.to_str().unwrap_or_default(),
        "-n",
        ko.to_str().unwrap_or_default(),
        "--write-workflow-id",
        wid.to_str().unwrap_or_default(),
    ];
    assert_eq!(workflow::deploy(&s(&args), &root), 0);
    let mut ok_nodes = lines(&ok);
    ok_nodes.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(ok_nodes, expected, "every node is in the OK file");
    assert!(lines(&ko).is_empty(), "the KO file is empty");
    let wid = std::fs::read_to_string(&wid).expect("wid");
    assert_eq!(tools::kastat(&s(&["-w", &wid]), &root), 0);
    assert_eq!(tools::kanodes(&s(&["-s", "-m", "node-7"]), &root), 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (status, csv) = get(
            server.port,
            "root",
            &format!("/stats?kind=all&wid={wid}&fields=hostname&fields=env&fields=success"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            csv.lines().count(),
            300,
            "kastat lists the deployment per node"
        );
        assert!(csv.lines().all(|l| l.ends_with(",debian12:1,true")));
        let (_, yaml) = get(server.port, "root", "/nodes?nodes=node-7.sim.kadeploy").await;
        assert!(
            yaml.contains("\"deployed\"") && yaml.contains("\"debian12\""),
            "{yaml}"
        );
    });
    // Acceptance 2: bob has no rights: error 6, nothing changes.
    let before = rt
        .block_on(get(server.port, "root", "/nodes?nodes=node-1.sim.kadeploy"))
        .1;
    assert_eq!(
        workflow::deploy(&s(&["-e", "debian12", "-u", "root", "-m", "node-1"]), &bob),
        6
    );
    assert_eq!(
        rt.block_on(get(server.port, "root", "/nodes?nodes=node-1.sim.kadeploy"))
            .1,
        before
    );
    assert_eq!(
        tools::karights(&s(&["-l"]), &bob),
        2,
        "rights are admin-only (403)"
    );
    assert_eq!(
        tools::karights(
            &s(&["-a", "-u", "bob", "-m", "node-1", "-p", "/dev/sda3"]),
            &root
        ),
        0
    );
    let ok1 = dir.join("ok1");
    assert_eq!(
        workflow::deploy(
            &s(&[
                "-e",
                "debian12",
                "-u",
                "root",
                "-m",
                "node-1",
                "-o",
                ok1.to_str().unwrap_or_default()
            ]),
            &bob
        ),
        0
    );
    assert_eq!(lines(&ok1), ["node-1.sim.kadeploy"]);
    assert_eq!(
        workflow::deploy(&s(&["-e", "debian12", "-u", "root", "-m", "node-2"]), &bob),
        6,
        "only the granted node"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
