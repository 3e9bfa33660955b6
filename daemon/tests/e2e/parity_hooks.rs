//! Kadeploy 3.3's end-of-operation hooks (`hooks/end_of_{deployment,reboot,power}` in server.conf, the
//! clients' `--hook`), with our clients against kadeploy3d and with the request the Ruby client sends.

use super::harness::{Http, Server, config_copy, seed_catalog, setup};
use crate::{plain_client as client, s};
use kadeploy_clients::workflow;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hook script that appends its arguments to `calls` and fails (exit 3).
fn hook_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("hook.sh");
    let calls = dir.join("calls");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> {c}\nexit 3\n",
            c = calls.display()
        ),
    )
    .expect("hook script");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// The sample configuration with the three hooks running `script <kind> WORKFLOW_ID`.
fn hooked_config(dir: &Path, script: &Path) -> std::path::PathBuf {
    let conf = config_copy(dir, false);
    let file = conf.join("server.conf");
    let text = std::fs::read_to_string(&file).expect("server.conf");
    let old =
        "hooks:\n  end_of_deployment: logger -t kadeploy3 \"end of deployment WORKFLOW_ID\"\n";
    assert!(text.contains(old), "the sample's hooks section");
    let s = script.display();
    let new = format!(
        "hooks:\n  end_of_deployment: {s} deploy WORKFLOW_ID\n  end_of_reboot: {s} reboot WORKFLOW_ID\n  \
         end_of_power: {s} power WORKFLOW_ID\n"
    );
    std::fs::write(&file, text.replace(old, &new)).expect("server.conf");
    conf
}

/// The lines of `calls` once it has `n` of them (hooks run after the workflow shows done).
fn wait_calls(dir: &Path, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= n || start.elapsed() > Duration::from_secs(60) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wid(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("workflow id file")
        .trim()
        .to_string()
}

/// `kadeploy3 --hook`, `kareboot3 --hook` and `kapower3 --hook` run the configured hook of their operation
/// once it has ended, with `WORKFLOW_ID` replaced; without `--hook` nothing runs; a failing hook changes
/// nothing (the clients exit 0). Before, hooks never ran (`hook` was ignored).
#[test]
fn hooks_run_at_the_end_of_operations_that_ask_for_them() {
    let dir = setup("parity-hooks");
    let script = hook_script(&dir);
    let server = Server::start(&hooked_config(&dir, &script), &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port, "root");
    seed_catalog(&Http::new(server.port, "root"));
    let (w1, w2, w3, w4) = (
        dir.join("w1"),
        dir.join("w2"),
        dir.join("w3"),
        dir.join("w4"),
    );
    let p = |p: &Path| p.to_str().unwrap_or_default().to_string();
    let deploy = ["-e", "debian12", "-m", "node-1", "--hook"];
    let mut args = s(&deploy);
    args.extend(["--write-workflow-id".into(), p(&w1)]);
    assert_eq!(
        workflow::deploy(&args, &root),
        0,
        "a failing hook fails nothing"
    );
    assert_eq!(wait_calls(&dir, 1), [format!("deploy {}", wid(&w1))]);

    let mut args = s(&["-e", "debian12", "-m", "node-2"]);
    args.extend(["--write-workflow-id".into(), p(&w2)]);
    assert_eq!(workflow::deploy(&args, &root), 0);
    let mut args = s(&["-r", "simple", "-m", "node-2", "--hook"]);
    args.extend(["--write-workflow-id".into(), p(&w3)]);
    assert_eq!(workflow::reboot(&args, &root), 0);
    let mut args = s(&["--on", "-m", "node-3", "--hook"]);
    args.extend(["--write-workflow-id".into(), p(&w4)]);
    assert_eq!(workflow::power(&args, &root), 0);
    let calls = wait_calls(&dir, 3);
    assert_eq!(
        calls,
        [
            format!("deploy {}", wid(&w1)),
            format!("reboot {}", wid(&w3)),
            format!("power {}", wid(&w4)),
        ],
        "no call for {} (no --hook)",
        wid(&w2)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Ruby client's `kadeploy3 -e debian12 -m node-4 --hook` request, replayed: `"hook": true` in the JSON
/// body of `POST /deployment`; the hook runs for that workflow.
#[test]
fn the_ruby_clients_hook_request_runs_the_hook() {
    let dir = setup("parity-hooks-wire");
    let script = hook_script(&dir);
    let server = Server::start(&hooked_config(&dir, &script), &dir.join("db.sqlite"), &[]);
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let body = json!({"nodes": ["node-4.sim.kadeploy"], "hook": true,
        "environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1}});
    let r = h.send("POST", "/deployment", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let resource = r.json()["resources"]["resource"]
        .as_str()
        .expect("resource")
        .to_string();
    let w = h.wait_done(&resource, Duration::from_secs(120));
    assert_eq!(w["error"], false, "{w}");
    assert_eq!(wait_calls(&dir, 1), [format!("deploy {wid}")]);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
