//! `kasim sweep --slurm` on a real single-node Slurm (Debian's `slurm-wlm` and `munge`): the test
//! starts munged, slurmctld and slurmd with a private configuration in a temporary directory, submits
//! the 4-task job array kasim wrote, merges the shards and checks the result is the CSV of one run,
//! then stops the daemons (by PID) and removes the directory. Needs root; without the tools it is
//! skipped, except under CI (`CI` set), where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOOLS: [&str; 5] = [
    "/usr/sbin/munged",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
    "/usr/bin/sbatch",
    "/usr/bin/sinfo",
];

/// The daemons and the directory, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            // SIGTERM first, then SIGKILL after 5 s.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn hostname() -> String {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .expect("hostname");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start(dir: &Path) -> Cluster {
    let mut cluster = Cluster {
        dir: dir.to_path_buf(),
        children: Vec::new(),
    };
    let key = dir.join("munge.key");
    let mut bytes = vec![0u8; 1024];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("random key");
    }
    std::fs::write(&key, &bytes).expect("munge key");
    let chmod = |p: &Path, mode: &str| {
        assert!(
            Command::new("chmod")
                .arg(mode)
                .arg(p)
                .status()
                .expect("chmod")
                .success()
        );
    };
    chmod(&key, "0400");
    chmod(dir, "0755");
    let socket = dir.join("munge.sock");
    cluster.children.push(
        Command::new("/usr/sbin/munged")
            .arg("--foreground")
            .arg("--force")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
            .arg(format!("--log-file={}", dir.join("munged.log").display()))
            .arg(format!("--seed-file={}", dir.join("munged.seed").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("munged starts"),
    );
    wait_for("munged's socket", Duration::from_secs(20), || {
        socket.exists()
    });
    let host = hostname();
    for d in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(d)).expect("slurm dirs");
    }
    let conf = format!(
        "ClusterName=kasimtest\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         SlurmctldPort={ctld}\n\
         SlurmdPort={slurmd}\n\
         AuthType=auth/munge\n\
         CredType=cred/munge\n\
         AuthInfo=socket={socket}\n\
         StateSaveLocation={d}/state\n\
         SlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/slurmctld.log\n\
         SlurmdLogFile={d}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         SchedulerType=sched/builtin\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         ReturnToService=2\n\
         MpiDefault=none\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n\
         PartitionName=kasim Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        ctld = free_port(),
        slurmd = free_port(),
        socket = socket.display(),
        d = dir.display(),
    );
    let conf_path = dir.join("slurm.conf");
    std::fs::write(&conf_path, conf).expect("slurm.conf");
    for (exe, extra) in [
        ("/usr/sbin/slurmctld", vec!["-D", "-i"]),
        ("/usr/sbin/slurmd", vec!["-D", "-N", host.as_str()]),
    ] {
        cluster.children.push(
            Command::new(exe)
                .args(&extra)
                .arg("-f")
                .arg(&conf_path)
                .env("SLURM_CONF", &conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{exe} starts: {e}")),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let conf_path2 = conf_path.clone();
    wait_for("the node to be idle", Duration::from_secs(60), || {
        let out = Command::new("/usr/bin/sinfo")
            .args(["-h", "-o", "%T"])
            .env("SLURM_CONF", &conf_path2)
            .output();
        matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("idle"))
    });
    cluster
}

#[test]
fn a_four_task_slurm_array_runs_the_sweep() {
    // Like every test that needs a system tool: fail with the reason (scripts/install-deps.sh installs them).
    if let Some(missing) = TOOLS.iter().find(|t| !Path::new(t).exists()) {
        panic!("{missing} is missing: apt-get install -y slurm-wlm munge (CI installs them)");
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    assert!(
        root,
        "the Slurm test needs root (slurmd and munged run as root)"
    );
    let dir = std::env::temp_dir().join(format!("kasim-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cluster = start(&dir);
    let conf = dir.join("slurm.conf");
    let grid = [
        "--strategies",
        "chain,swarm,multicast",
        "--nodes",
        "8,32",
        "--sizes",
        "32e6",
        "--seeds",
        "1,2",
    ];
    let kasim = env!("CARGO_BIN_EXE_kasim");
    let script = dir.join("sweep.sbatch");
    let out = dir.join("result.csv");
    let st = Command::new(kasim)
        .arg("sweep")
        .args(grid)
        .args(["--shards", "4", "--slurm"])
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("kasim runs");
    assert!(st.success());
    let mut sbatch = Command::new("/usr/bin/sbatch")
        .arg("--wait")
        .arg(&script)
        .env("SLURM_CONF", &conf)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sbatch runs");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(st) = sbatch.try_wait().expect("sbatch status") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = sbatch.kill();
            panic!(
                "the job array did not finish in 300 s: {}",
                log(&dir, "slurmctld.log")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        status.success(),
        "sbatch failed\nslurmctld: {}\nslurmd: {}",
        log(&dir, "slurmctld.log"),
        log(&dir, "slurmd.log")
    );
    let shards: Vec<PathBuf> = (0..4)
        .map(|i| PathBuf::from(format!("{}.shard-{i}-of-4.csv", out.display())))
        .collect();
    for s in &shards {
        assert!(s.exists(), "{} written by its array task", s.display());
    }
    let merged = Command::new(kasim)
        .args(["sweep", "merge"])
        .args(&shards)
        .output()
        .expect("merge runs");
    assert!(merged.status.success());
    let single = Command::new(kasim)
        .arg("sweep")
        .args(grid)
        .output()
        .expect("kasim runs");
    assert_eq!(merged.stdout, single.stdout);
    drop(cluster);
}
