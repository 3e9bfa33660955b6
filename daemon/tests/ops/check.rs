//! `kadeploy3d --check-config`: a good configuration passes with its warnings printed (before, the
//! loader's warnings were collected and never shown, and the option did not exist); each broken one
//! fails with exit status 1 and a message naming the key.

use super::process::{BIN, config, edit};
use std::path::Path;
use std::process::Command;

/// Runs `--check-config` on `conf`: (exit status, stdout, stderr).
fn check(conf: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["--check-config", "-c"])
        .arg(conf)
        .output()
        .expect("kadeploy3d runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_warnings_and_fails_on_errors() {
    let (dir, conf) = config("check");
    let server = conf.join("server.conf");
    let good = std::fs::read_to_string(&server).expect("server.conf");
    edit(&server, |t| {
        t.replace("backend:\n  kind: simulated\n", "backend:\n")
            .replace(
                &dir.join("kadeploy.debug").display().to_string(),
                &dir.join("no/such/dir/kadeploy.debug").display().to_string(),
            )
            + "frobnicate: 1\n"
    });
    let (code, out, err) = check(&conf);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "configuration OK (1 cluster(s), 300 node(s), backend simulated, 3 warning(s))"
        ),
        "{out}"
    );
    assert!(
        err.contains("warning: Unused field frobnicate in server.conf"),
        "{err}"
    );
    assert!(
        err.contains(
            "warning: server.conf has no backend/kind: kadeploy3d drives the SIMULATED cluster"
        ),
        "{err}"
    );
    assert!(
        err.contains("warning: logs/debugfile: ") && err.contains("is not writable"),
        "{err}"
    );
    assert!(
        !dir.join("kadeploy.log").exists(),
        "checking creates no file"
    );

    let broken: [(&str, &str, &str); 4] = [
        ("  logs: 4\n", "  logs: 9\n", "verbosity/logs"),
        (
            "  kind: simulated\n",
            "  kind: nosuch\n",
            "backend/kind 'nosuch' is unknown (known: simulated, site)",
        ),
        (
            "autoclean_threshold: 360\n",
            "metrics:\n  listen: nowhere\n",
            "metrics/listen: 'nowhere'",
        ),
        (
            "rights:\n  kind: db\n",
            "rights:\n  kind: nis\n",
            "rights/kind",
        ),
    ];
    for (from, to, message) in broken {
        assert!(good.contains(from), "{from:?} is in the sample");
        std::fs::write(&server, good.replace(from, to)).expect("write");
        let (code, out, err) = check(&conf);
        assert_eq!(code, 1, "{to:?} must fail: {out}{err}");
        assert!(out.contains("configuration has 1 error(s)"), "{out}");
        assert!(
            err.contains("error: ") && err.contains(message),
            "{to:?}: {err}"
        );
    }
    std::fs::write(&server, &good).expect("write");
    std::fs::remove_file(conf.join("sim-cluster.conf")).expect("rm");
    let (code, _, err) = check(&conf);
    assert_eq!(code, 1);
    assert!(err.contains("sim-cluster.conf"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
