//! The research bench of `kasim` end to end, in separate processes: multicast and swarm deployments of
//! the 300-node sample, the strategy picked by the simulator, the deployment timeline, and sweeps
//! whose shards merge into exactly the CSV of one run (issue 14).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kasim"))
        .args(args)
        .output()
        .expect("kasim runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

/// A fresh temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kasim-research-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_of(out: &str) -> Value {
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is JSON ({e}): {last}"))
}

#[test]
fn multicast_and_swarm_deploy_the_300_node_sample() {
    for strategy in ["multicast", "swarm"] {
        let o = kasim(&["deploy", "--broadcast", strategy, "--json", "-V", "0"]);
        let out = stdout(&o);
        assert!(o.status.success(), "{strategy}: {out}");
        let v = json_of(&out);
        assert_eq!(
            v["nodes_ok"].as_array().map(Vec::len),
            Some(300),
            "{strategy}"
        );
        assert_eq!(v["broadcast"], strategy);
    }
}

#[test]
fn auto_prints_the_prediction_and_the_simulated_time() {
    let dir = TempDir::new("auto");
    let timeline = dir.path().join("timeline.svg");
    let o = kasim(&[
        "deploy",
        "--broadcast",
        "auto",
        "--nodes",
        "50",
        "-V",
        "0",
        "--timeline",
        timeline.to_str().expect("utf-8 path"),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Broadcast auto: chose "), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("predicted") && l.contains("simulated"))
        .unwrap_or_else(|| panic!("no prediction/measure line: {out}"));
    // "…, predicted 12.3s, simulated 12.3s": on healthy nodes the simulated broadcast is the prediction.
    let nums: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|x| x.parse().ok())
        .collect();
    let (p, m) = (nums[nums.len() - 2], nums[nums.len() - 1]);
    assert!(p > 0.0 && (p - m).abs() <= 0.1 + 0.01 * p, "{line}");
    let svg = std::fs::read_to_string(&timeline).expect("timeline written");
    assert!(
        svg.contains(".sim.kadeploy") && svg.contains("BroadcastEnv") && svg.contains("50 nodes")
    );
    assert!(svg.matches("<rect").count() > 150, "bars for 50 nodes");
}

fn sweep(args: &[&str]) -> Output {
    let mut all = vec![
        "sweep",
        "--strategies",
        "chain,tree,multicast,swarm,unicast",
        "--nodes",
        "4,16",
        "--sizes",
        "64e6",
        "--topologies",
        "flat,switches:4:50e6",
        "--failures",
        "0,0.2",
        "--seeds",
        "1,2",
    ];
    all.extend_from_slice(args);
    kasim(&all)
}

#[test]
fn merged_shards_equal_one_run() {
    let dir = TempDir::new("sweep");
    let single = dir.path().join("single.csv");
    let o = sweep(&["--out", single.to_str().expect("path")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = std::fs::read_to_string(&single).expect("single CSV");
    assert_eq!(single.lines().count(), 1 + 5 * 2 * 2 * 2 * 2);
    let mut shards = Vec::new();
    for i in [2, 0, 1] {
        let f = dir.path().join(format!("s{i}.csv"));
        let o = sweep(&[
            "--shard",
            &format!("{i}/3"),
            "--out",
            f.to_str().expect("path"),
        ]);
        assert!(o.status.success());
        shards.push(f);
    }
    let merged = dir.path().join("merged.csv");
    let plots = dir.path().join("plots");
    let mut args = vec!["sweep", "merge", "-o", merged.to_str().expect("path")];
    args.extend(shards.iter().map(|p| p.to_str().expect("path")));
    args.extend(["--plots", plots.to_str().expect("path")]);
    let o = kasim(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&merged).expect("merged"), single);
    for f in [
        "time_vs_nodes.svg",
        "time_vs_nodes.png",
        "cdf.svg",
        "cdf.png",
    ] {
        assert!(
            std::fs::metadata(plots.join(f))
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{f}"
        );
    }
    // A missing shard is an error, not a shorter result.
    let o = kasim(&[
        "sweep",
        "merge",
        shards[0].to_str().expect("path"),
        shards[1].to_str().expect("path"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
    // Failures: some nodes fail at rate 0.2, none at 0.
    let rows: Vec<Vec<&str>> = single
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.iter().filter(|r| r[6] == "0").all(|r| r[9] == "0"));
    assert!(rows.iter().filter(|r| r[6] == "0.2").any(|r| r[9] != "0"));
}

#[test]
fn the_slurm_script_runs_each_shard() {
    let dir = TempDir::new("slurm");
    let script = dir.path().join("sweep.sbatch");
    let out = dir.path().join("result.csv");
    let o = sweep(&[
        "--slurm",
        script.to_str().expect("path"),
        "--shards",
        "4",
        "--out",
        out.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&script).expect("script");
    assert!(text.contains("#SBATCH --array=0-3"));
    assert!(!out.exists(), "--slurm does not run the grid");
    // Run the array's tasks by hand, as Slurm would (the real Slurm runs it in tests/slurm.rs).
    for task in 0..4 {
        let st = Command::new("sh")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .status()
            .expect("sh runs");
        assert!(st.success());
    }
    let shards: Vec<String> = (0..4)
        .map(|i| format!("{}.shard-{i}-of-4.csv", out.display()))
        .collect();
    let mut args = vec!["sweep", "merge"];
    args.extend(shards.iter().map(String::as_str));
    let merged = kasim(&args);
    assert!(merged.status.success());
    let single = sweep(&[]);
    assert_eq!(stdout(&merged), stdout(&single));
}

/// Issue 14: past ~30,000 nodes every node used to end KO ("Timeout in the SetDeploymentEnvUntrusted
/// step": the sample's reboot window of 100 nodes could not reboot them within the step's timeout).
/// Past the configured cluster, the windows now grow as a site of that size would have them.
#[test]
fn a_cluster_past_the_configured_one_scales_its_windows() {
    let o = kasim(&["deploy", "--nodes", "40000", "-V", "0", "--seed", "3"]);
    let out = stdout(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("40000 OK, 0 KO"),
        "{}",
        out.lines().last().unwrap_or("")
    );
    assert!(err.contains("reboot window 100 -> 13400"), "{err}");
}
