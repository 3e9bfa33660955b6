//! Unit tests of the workflow clients: options and the parameters they send, without a server.

use super::*;
use clap::CommandFactory as _;

#[test]
fn command_lines_are_consistent() {
    DeployCli::command().debug_assert();
    RebootCli::command().debug_assert();
    PowerCli::command().debug_assert();
}

#[test]
fn force_steps_syntax() {
    let a = force_steps(
        "SetDeploymentEnv|SetDeploymentEnvUntrusted:1:300&BroadcastEnv|BroadcastEnvKastafior:1:200&BootNewEnv|BootNewEnvClassical:1:200,BootNewEnvHardReboot:1:200",
    )
    .unwrap();
    assert_eq!(
        a["BootNewEnv"][1],
        json!({"name": "BootNewEnvHardReboot", "retries": 1, "timeout": 200})
    );
    for bad in [
        "SetDeploymentEnv|A:1:1&BroadcastEnv|B:1:1",
        "SetDeploymentEnv|A:1&BroadcastEnv|B:1:1&BootNewEnv|C:1:1",
        "BroadcastEnv|B:1:1&SetDeploymentEnv|A:1:1&BootNewEnv|C:1:1",
        "SetDeploymentEnv|&BroadcastEnv|B:1:1&BootNewEnv|C:1:1",
    ] {
        assert!(force_steps(bad).is_err(), "{bad}");
    }
}

fn parse<C: clap::Parser>(name: &str, args: &[&str]) -> C {
    C::try_parse_from(std::iter::once(name).chain(args.iter().copied())).expect("parses")
}

fn nodes() -> Vec<String> {
    vec!["node-1".into()]
}

#[test]
fn kadeploy_options_put_kadeploys_parameters_in_the_request() {
    let cli: DeployCli = parse(
        "kadeploy3",
        &[
            "-m",
            "node-1",
            "-b",
            "/dev/sdb",
            "-c",
            "0",
            "--vlan",
            "12",
            "--disable-bootloader-install",
            "--disable-disk-partitioning",
            "--reboot-classical-timeout",
            "100+n*2",
            "--reboot-kexec-timeout",
            "60",
            "--hook",
            "--dry-run",
            "-d",
            "--force",
            "-V",
            "4",
            "--breakpoint",
            "BroadcastEnv",
            "--no-kexec",
            "-r",
            "ext4",
        ],
    );
    let p = cli
        .params(nodes(), json!({"kind": "database", "name": "e"}))
        .unwrap();
    assert_eq!(p["boot_partition"], json!(0), "an integer");
    assert_eq!(
        p["deploy_partition"],
        json!(""),
        "-b without -p: the whole device"
    );
    assert_eq!(p["vlan"], json!("12"));
    assert_eq!(
        p["timeout_reboot_classical"],
        json!("100+n*2"),
        "a string expression"
    );
    assert_eq!(p["timeout_reboot_kexec"], json!("60"));
    for k in [
        "disable_bootloader_install",
        "disable_disk_partitioning",
        "disable_kexec",
        "hook",
        "dry_run",
        "debug",
        "force",
    ] {
        assert_eq!(p[k], json!(true), "{k}");
    }
    assert_eq!(p["verbose_level"], json!(4));
    assert_eq!(p["breakpoint"], json!("BroadcastEnv"));
    assert_eq!(p["reformat_tmp_partition"], json!("ext4"));
    assert_eq!(p["environment"]["name"], json!("e"));
    let plain: DeployCli = parse(
        "kadeploy3",
        &[
            "-m",
            "n",
            "--hook",
            "--no-hook",
            "--dry-run",
            "--no-dry-run",
        ],
    );
    let p = plain.params(nodes(), json!({})).unwrap();
    for k in [
        "hook",
        "dry_run",
        "boot_partition",
        "vlan",
        "debug",
        "force",
    ] {
        assert!(!p.contains_key(k), "{k} not sent");
    }
}

#[test]
fn kareboot_options_put_kadeploys_parameters_in_the_request() {
    let cli: RebootCli = parse(
        "kareboot3",
        &[
            "-m",
            "n",
            "-r",
            "deploy_env",
            "-k",
            "/tmp/k.pub",
            "-b",
            "/dev/sdb",
            "-p",
            "2",
            "--vlan",
            "7",
            "--reboot-classical-timeout",
            "n*10",
            "-l",
            "hard",
        ],
    );
    let p = cli.params(nodes(), None).unwrap();
    assert_eq!(p["kind"], json!("deploy_env"));
    assert_eq!(p["ssh_authorized_keys"], json!("/tmp/k.pub"));
    assert_eq!(p["block_device"], json!("/dev/sdb"));
    assert_eq!(p["deploy_partition"], json!("2"));
    assert_eq!(p["vlan"], json!("7"));
    assert_eq!(p["timeout_reboot_classical"], json!("n*10"));
    assert_eq!(p["level"], json!("hard"));
    let rec: RebootCli = parse(
        "kareboot3",
        &[
            "-m",
            "n",
            "-r",
            "recorded_env",
            "-e",
            "deb",
            "-u",
            "root",
            "--env-version",
            "3",
            "-p",
            "3",
            "-c",
        ],
    );
    let env = json!({"kind": "database", "user": "root", "name": "deb", "version": 3});
    let p = rec.params(nodes(), Some(env.clone())).unwrap();
    assert_eq!(p["environment"], env);
    assert_eq!(p["check_destructive"], json!(true));
}

#[test]
fn kareboot_checks_its_kinds_as_kadeploy_does() {
    for args in [
        &["-m", "n", "-r", "set_pxe"][..],
        &["-m", "n", "-r", "recorded_env", "-e", "deb"][..],
        &["-m", "n", "-r", "simple", "-k", "/tmp/k"][..],
        &["-m", "n", "-r", "simple", "-u", "root"][..],
        &["-m", "n", "-r", "deploy_env", "--env-version", "2"][..],
    ] {
        let cli: RebootCli = parse("kareboot3", args);
        assert!(cli.params(nodes(), None).is_err(), "{args:?}");
    }
}

#[test]
fn kapower_requests() {
    let on: PowerCli = parse(
        "kapower3",
        &["-m", "n", "--on", "-l", "very_hard", "--hook"],
    );
    let (m, p) = on.request(nodes()).unwrap();
    assert_eq!(m, Method::PUT);
    assert_eq!(
        (p["status"].clone(), p["level"].clone(), p["hook"].clone()),
        (json!("on"), json!("very_hard"), json!(true))
    );
    let st: PowerCli = parse("kapower3", &["-m", "n", "--status", "--dry-run"]);
    let (m, p) = st.request(nodes()).unwrap();
    assert_eq!(m, Method::GET);
    let q = poll::query(&p);
    assert!(
        q.contains(&("dry_run", "true".to_string()))
            && q.contains(&("nodes", "node-1".to_string()))
    );
    let bad: PowerCli = parse("kapower3", &["-m", "n", "--status", "-l", "soft"]);
    assert!(bad.request(nodes()).is_err());
}

#[test]
fn workflow_option_checks() {
    let same: DeployCli = parse("kadeploy3", &["-m", "n", "-o", "f", "-n", "f"]);
    assert!(check_common(&same.common).is_err());
    let nowait: DeployCli = parse("kadeploy3", &["-m", "n", "-o", "f", "--no-wait"]);
    assert!(check_common(&nowait.common).is_err());
    let dir = std::env::temp_dir().join(format!("kadeploy-script-{}", std::process::id()));
    std::fs::write(&dir, "#!/bin/sh\n").unwrap();
    let path = dir.to_string_lossy().to_string();
    let script: DeployCli = parse("kadeploy3", &["-m", "n", "-s", &path]);
    assert!(check_common(&script.common).is_err(), "not executable");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(check_common(&script.common).is_ok());
    let _ = std::fs::remove_file(&dir);
    assert!(DeployCli::try_parse_from(["kadeploy3", "--breakpoint", "a:b:c"]).is_err());
}

#[test]
fn status_snapshot_is_printed_as_kadeploy_does() {
    let stats = json!({"c1": {"SetDeploymentEnvUntrusted": {"wait_reboot": {"nodes": {"OK": [], "KO": [], "**": ["node-1", "node-2"]}, "time": 63}}}});
    assert_eq!(
        poll::status_text("Deployment", 70, &stats),
        "---\nDeployment status (70s):\n  [SetDeploymentEnvUntrusted-wait_reboot] ~63s (**)\n     node-1\n     node-2\n---"
    );
    assert_eq!(
        poll::status_text("Deployment", 1, &json!({})),
        "---\nDeployment did not start at the moment\n---"
    );
}
