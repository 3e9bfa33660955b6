//! The micro-steps that run commands on the server: the custom broadcast (`localops/broadcastenv/cmd`,
//! `BroadcastEnvCustom`) and `set_vlan` (`network/vlan/set_cmd`), each with a command that records what it
//! was given.

use super::run::Run;
use super::scenario::{Boot, Broadcast, Scenario, SetEnv, inst};
use kadeploy::config::VlanConfig;
use kadeploy::engine::VlanRequest;
use std::path::{Path, PathBuf};

/// A scratch directory with an executable `name` that appends its arguments (and the lines of the file
/// its second argument names, when `with_file`) to `calls`, then exits with `status`.
struct Recorder {
    dir: PathBuf,
}

impl Recorder {
    fn new(tag: &str, name: &str, status: i32, with_file: bool) -> Recorder {
        let dir =
            std::env::temp_dir().join(format!("kadeploy-engine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let calls = dir.join("calls");
        let file = if with_file {
            format!("cat \"$2\" >> '{}'; ", calls.display())
        } else {
            String::new()
        };
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'; {file}exit {status}\n",
            calls.display()
        );
        let path = dir.join(name);
        std::fs::write(&path, script).unwrap_or_else(|e| panic!("{e}"));
        let chmod = std::process::Command::new("chmod")
            .arg("755")
            .arg(&path)
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(chmod.success());
        Recorder { dir }
    }

    fn program(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn custom_deploy(recorder: &Recorder) -> Scenario {
    let template = format!(
        "{} ENVFILE NODEFILE 'DECOMPRESS' 'TAKTUK_CONNECTOR'",
        recorder.program("bcast")
    );
    Scenario::new(3)
        .automata(
            [inst(SetEnv::Untrusted)],
            [inst(Broadcast::Custom)],
            [inst(Boot::Kexec)],
        )
        .cluster(|c| c.broadcast_cmd = Some(template))
        .server(|s| s.taktuk_connector = "ssh -q -l root".into())
}

fn has_step(run: &Run, micro: &str) -> bool {
    run.micro_steps().iter().any(|m| m == micro)
}

/// `BroadcastEnvCustom` runs the cluster's command once, on the server, with `ENVFILE`, `NODEFILE` (one node
/// per line), `DECOMPRESS` and `TAKTUK_CONNECTOR` replaced, then the rest of the broadcast macro-step
/// (before, `localops/broadcastenv/cmd` was dropped and every deployment with a Custom broadcast refused).
#[tokio::test(start_paused = true)]
async fn the_custom_broadcast_runs_the_clusters_command_with_kadeploys_words() {
    let recorder = Recorder::new("custom-ok", "bcast", 0, true);
    let run = custom_deploy(&recorder).run_deploy().await;
    assert_eq!(run.ok(), [1, 2, 3]);
    assert_eq!(run.calls_to("broadcast").count(), 0, "no kaagent broadcast");
    assert!(has_step(&run, "check_kernel_files"));
    let calls = recorder.calls();
    let [args, n1, n2, n3] = calls.as_slice() else {
        panic!("one call and its node file: {calls:?}")
    };
    let words: Vec<&str> = args.split(' ').collect();
    assert_eq!(words[0], "/var/lib/kadeploy/envs/debian12-min.tgz");
    assert!(
        words[1].contains("kadeploy-nodefile-"),
        "a temporary node file: {args}"
    );
    assert!(
        !Path::new(words[1]).exists(),
        "the node file is removed afterwards"
    );
    assert_eq!(
        &words[2..],
        [
            "tar",
            "",
            "-C",
            "/mnt/dest",
            "-xz",
            "ssh",
            "-q",
            "-l",
            "root"
        ]
    );
    assert_eq!(
        [n1, n2, n3].map(String::as_str),
        ["node-1.test", "node-2.test", "node-3.test"]
    );
}

/// A failing command fails every node of the broadcast with Kadeploy's message.
#[tokio::test(start_paused = true)]
async fn a_failing_custom_broadcast_fails_its_nodes_with_kadeploys_message() {
    let recorder = Recorder::new("custom-ko", "bcast", 3, false);
    let run = custom_deploy(&recorder).run_deploy().await;
    assert_eq!(run.ko(), [1, 2, 3]);
    let failure = run.failure(2);
    assert_eq!(
        (&*failure.macro_step, &*failure.micro_step),
        ("BroadcastEnvCustom", "send_environment")
    );
    assert_eq!(
        failure.error,
        "Error while processing to the file broadcast with bcast (exited with status 3)"
    );
}

fn vlan_deploy(recorder: &Recorder) -> Scenario {
    let set_cmd = format!("{} NODES -s -i VLAN_ID -u USER", recorder.program("kavlan"));
    Scenario::new(2)
        .server(|s| {
            s.vlan = Some(VlanConfig {
                hostname_suffix: "-kavlan-VLAN_ID".into(),
                set_cmd,
            })
        })
        .request(|r| {
            r.vlan = Some(VlanRequest {
                id: "12".into(),
                user: "alice".into(),
            })
        })
}

/// With `--vlan`, the nodes go back to the default VLAN before the deploy kernel boots and into the
/// requested one before the deployed system is waited for, through `set_cmd` with `NODES`, `VLAN_ID` and
/// `USER` replaced (before, `--vlan` was refused with error 9).
#[tokio::test(start_paused = true)]
async fn set_vlan_runs_the_servers_command_twice_per_deployment() {
    let recorder = Recorder::new("vlan-ok", "kavlan", 0, false);
    let run = vlan_deploy(&recorder).run_deploy().await;
    assert_eq!(run.ok(), [1, 2]);
    assert_eq!(
        recorder.calls(),
        [
            "-m node-1.test -m node-2.test -s -i DEFAULT -u alice",
            "-m node-1.test -m node-2.test -s -i 12 -u alice"
        ]
    );
    let without = Recorder::new("vlan-none", "kavlan", 0, false);
    let run = vlan_deploy(&without)
        .request(|r| r.vlan = None)
        .run_deploy()
        .await;
    assert_eq!(run.ok(), [1, 2]);
    assert!(without.calls().is_empty(), "no VLAN, no set_vlan");
    assert!(!has_step(&run, "set_vlan"));
}

/// A failing `set_cmd` fails the nodes with Kadeploy's `Cannot set the VLAN`.
#[tokio::test(start_paused = true)]
async fn a_failing_set_cmd_fails_the_nodes() {
    let recorder = Recorder::new("vlan-ko", "kavlan", 1, false);
    let run = vlan_deploy(&recorder).run_deploy().await;
    assert_eq!(run.ko(), [1, 2]);
    let failure = run.failure(1);
    assert_eq!(
        (&*failure.micro_step, failure.error.as_str()),
        ("set_vlan", "Cannot set the VLAN")
    );
}
