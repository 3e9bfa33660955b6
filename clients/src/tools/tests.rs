//! Unit tests of the non-workflow clients: options, requests and outputs, without a server.

use super::*;

fn parse<C: Parser>(name: &str, args: &[&str]) -> C {
    C::try_parse_from(std::iter::once(name).chain(args.iter().copied())).expect("parses")
}

#[test]
fn kaenv_changes_send_kadeploys_fields() {
    let cli: EnvCli = parse("kaenv3", &["--update-image-checksum", "deb"]);
    let (name, change) = cli.change().unwrap().unwrap();
    assert_eq!(name, "deb");
    assert_eq!(
        change.body(None),
        json!({"update_image_checksum": true, "last": true})
    );
    let cli: EnvCli = parse(
        "kaenv3",
        &["--update-preinstall-checksum", "deb", "--env-version", "2"],
    );
    let (_, change) = cli.change().unwrap().unwrap();
    assert_eq!(
        change.body(Some(2)),
        json!({"update_preinstall_checksum": true})
    );
    let cli: EnvCli = parse("kaenv3", &["--update-postinstalls-checksum", "deb"]);
    assert_eq!(
        cli.change().unwrap().unwrap().1,
        EnvChange::PostinstallsChecksum
    );
    let cli: EnvCli = parse("kaenv3", &["--set-visibility-tag", "deb"]);
    assert!(cli.change().is_err(), "-t is needed");
    let cli: EnvCli = parse(
        "kaenv3",
        &["--move-files", "-m", "http://old/::http://new/,/a::/b"],
    );
    assert_eq!(
        cli.move_body().unwrap(),
        json!({"update_files": {"http://old/": "http://new/", "/a": "/b"}})
    );
    assert!(EnvCli::try_parse_from(["kaenv3", "-m", "nothing"]).is_err());
    let cli: EnvCli = parse("kaenv3", &["--move-files"]);
    assert!(cli.move_body().is_err());
}

#[test]
fn karights_body_and_list_output() {
    let cli: RightsCli = parse(
        "karights3",
        &["-a", "-u", "bob", "-m", "*", "-p", "*", "-o", "--dry-run"],
    );
    assert_eq!(
        cli.body().unwrap(),
        json!({"username": "bob", "overwrite": true, "dry_run": true})
    );
    let cli: RightsCli = parse(
        "karights3",
        &["-d", "-u", "bob", "-m", "node-1", "-p", "/dev/sda3"],
    );
    assert_eq!(
        cli.body().unwrap(),
        json!({"nodes": ["node-1"], "partitions": ["/dev/sda3"]})
    );
    let table = rights_table(&json!({"root": {"*": ["*"]}}));
    assert_eq!(
        table,
        format!(
            "{:<15} {:<41} Partitions\n{:<15} {:<41} ##########\n{:<15} {:<41} *\n",
            "User", "Node", "####", "####", "root", "*"
        )
    );
}

#[test]
fn kastat_query() {
    let cli: StatCli = parse(
        "kastat3",
        &[
            "-x",
            "2013-10-08 12:34:56",
            "-y",
            "2013-10-09",
            "-b",
            "0.5",
            "-m",
            "node-1",
            "-o",
            "deploy",
        ],
    );
    let q = cli.query().unwrap();
    for pair in [
        ("date_min", "Tue, 08 Oct 2013 12:34:56 GMT"),
        ("date_max", "Wed, 09 Oct 2013 00:00:00 GMT"),
        ("kind", "failure_rates"),
        ("min_failure_rate", "0.5"),
        ("nodes", "node-1"),
    ] {
        assert!(
            q.contains(&(pair.0, pair.1.to_string())),
            "{pair:?} in {q:?}"
        );
    }
}

#[test]
fn kanodes_queries() {
    let q = |args: &[&str]| parse::<NodesCli>("kanodes3", args).query();
    assert_eq!(q(&["-c"]).unwrap(), NodesQuery::Status("/console".into()));
    assert_eq!(
        q(&["--get-deployments-status", "-w", "D-1"]).unwrap(),
        NodesQuery::Status("/deployment/D-1".into())
    );
    assert_eq!(
        q(&["--get-reboots-status"]).unwrap(),
        NodesQuery::Status("/reboot".into())
    );
    assert_eq!(
        q(&["--get-powers-status"]).unwrap(),
        NodesQuery::Status("/power".into())
    );
    assert_eq!(
        q(&["-a"]).unwrap(),
        NodesQuery::All(vec!["/deployment", "/reboot", "/power", "/console"])
    );
    assert_eq!(
        q(&["-s", "-m", "node-1", "--dry-run"]).unwrap(),
        NodesQuery::States(vec![("nodes", "node-1".into()), ("dry_run", "true".into())])
    );
    assert!(q(&["-d", "-m", "node-1"]).is_err());
    assert!(
        parse::<StatCli>("kastat3", &["-F", "wid,nope"])
            .query()
            .is_err()
    );
    assert!(q(&["-s", "-w", "D-1"]).is_err());
}
