//! `kadeploy3d --import-mysql` against a real MariaDB server loaded with Kadeploy 3.3's schema
//! (`fixtures/kadeploy-3.3-schema.sql`) and generated rows (`import_mysql/rows.rs`): imported twice (over TCP,
//! then over the unix socket) with the same store as a result, then the real `kadeploy3d` serves the store
//! and our clients (`kaenv3`, `karights3`, `kanodes3`, `kastat3`) show what the rows say. MariaDB is started
//! privately by the test (see `import_mysql/mariadb.rs`); it must be installed:
//! `apt-get install -y --no-install-recommends mariadb-server mariadb-client`.

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "import_mysql/mariadb.rs"]
mod mariadb;
#[path = "import_mysql/rows.rs"]
mod rows;

use harness::{SAMPLE, Server, setup};
use kadeploy_clients::{ClientEnv, tools};
use mariadb::MariaDb;
use rows::Generated;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

const KADEPLOY3D: &str = env!("CARGO_BIN_EXE_kadeploy3d");
const SCHEMA: &str = include_str!("fixtures/kadeploy-3.3-schema.sql");
const PASSWORD: &str = "s3cret-pw";
/// The child process that runs one client (see [`client_child`]).
const CHILD_ENV: &str = "KADEPLOY_IMPORT_TEST_CLIENT";
const BEGIN: &str = "@@client-output@@";
const END: &str = "@@client-exit@@";

/// Runs `kadeploy3d -c SAMPLE --database store --import-mysql url`.
fn import(store: &Path, url: &str, env: &[(&str, &str)]) -> Output {
    Command::new(KADEPLOY3D)
        .args(["-c", SAMPLE, "--database"])
        .arg(store)
        .args(["--import-mysql", url])
        .envs(env.iter().copied())
        .output()
        .expect("kadeploy3d runs")
}

/// The report's table: table → [read, inserted, updated, unchanged, kept, skipped, altered].
fn counts(stdout: &str) -> BTreeMap<String, [u64; 7]> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = *f.first()?;
            if !["environments", "rights", "nodes", "log"].contains(&name) || f.len() != 8 {
                return None;
            }
            let mut n = [0u64; 7];
            for (i, v) in f[1..].iter().enumerate() {
                n[i] = v.parse().ok()?;
            }
            Some((name.to_string(), n))
        })
        .collect()
}

/// Every row of the store, table by table, in a stable order.
fn dump(store: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let conn = rusqlite::Connection::open(store).expect("store");
    let mut out = BTreeMap::new();
    for table in ["environments", "rights", "nodes", "log", "workflows"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("select");
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| v.join(" | "))
            })
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("values");
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Not a test: the child process of [`client`], which runs one client in-process and frames its output.
#[test]
#[ignore = "run by the other tests, as a child process"]
fn client_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).expect("spec");
    let args: Vec<String> = spec["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let env = ClientEnv {
        config_dir: spec["dir"].as_str().unwrap_or_default().into(),
        user: spec["user"].as_str().unwrap_or_default().into(),
    };
    print!("\n{BEGIN}\n");
    let _ = std::io::stdout().flush();
    let code = match spec["tool"].as_str() {
        Some("kaenv3") => tools::kaenv(&args, &env),
        Some("karights3") => tools::karights(&args, &env),
        Some("kastat3") => tools::kastat(&args, &env),
        Some("kanodes3") => tools::kanodes(&args, &env),
        other => panic!("unknown tool {other:?}"),
    };
    print!("\n{END}{code}\n");
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Runs `tool args` as `user` against the server of `dir/client.conf`; returns its exit code and stdout.
fn client(dir: &Path, user: &str, tool: &str, args: &[&str]) -> (i32, String) {
    let spec = json!({"tool": tool, "args": args, "user": user, "dir": dir});
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "client_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec.to_string())
        .output()
        .expect("client child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let body = stdout
        .split_once(&format!("\n{BEGIN}\n"))
        .and_then(|(_, rest)| rest.rsplit_once(&format!("\n{END}")))
        .unwrap_or_else(|| {
            panic!(
                "{tool} {args:?}: no framed output: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let code = body.1.trim().parse().expect("exit code");
    (code, body.0.to_string())
}

/// `client` that must succeed.
fn ok(dir: &Path, user: &str, tool: &str, args: &[&str]) -> String {
    let (code, out) = client(dir, user, tool, args);
    assert_eq!(code, 0, "{tool} {args:?} as {user}: {out}");
    out
}

/// Sorted lines after the `kaenv3 -l` / `karights3 -l` headers.
fn listed(out: &str, header_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = out
        .lines()
        .skip(header_lines)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// `kaenv3 -l` lines of `envs` (Kadeploy's columns; the description cut at 35 characters).
fn env_lines<'a>(envs: impl Iterator<Item = &'a rows::Env>) -> Vec<String> {
    let mut lines: Vec<String> = envs
        .map(|e| {
            let d: String = e.description.chars().take(35).collect();
            format!("{:<21} {:<7} {:<11} {d}", e.name, e.version, e.user)
        })
        .collect();
    lines.sort();
    lines
}

/// The newest version of each (owner, name) among `envs` that `visible` keeps.
fn last_visible(g: &Generated, visible: impl Fn(&rows::Env) -> bool) -> Vec<&rows::Env> {
    let mut last: BTreeMap<(&str, &str), &rows::Env> = BTreeMap::new();
    for e in g.envs.iter().filter(|e| visible(e)) {
        let slot = last.entry((e.user.as_str(), e.name.as_str())).or_insert(e);
        if e.version > slot.version {
            *slot = e;
        }
    }
    last.into_values().collect()
}

fn check_report(stdout: &str, g: &Generated, second: bool) {
    let got = counts(stdout);
    for (table, [read, inserted, unchanged, skipped, altered]) in &g.counts {
        let expected = if second {
            [*read, 0, 0, inserted + unchanged, 0, *skipped, *altered]
        } else {
            [*read, *inserted, 0, *unchanged, 0, *skipped, *altered]
        };
        assert_eq!(got.get(*table), Some(&expected), "{table} in:\n{stdout}");
    }
    for (kind, list) in [("skipped", &g.skipped), ("altered", &g.altered)] {
        for (table, identity, reason) in list {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("{kind}: {table} "))
                        && l.contains(identity.as_str())
                        && l.contains(reason)),
                "no `{kind}: {table} …{identity}…: …{reason}…` line in:\n{stdout}"
            );
        }
    }
    let reported = stdout
        .lines()
        .filter(|l| l.starts_with("skipped: ") || l.starts_with("altered: "))
        .count();
    assert_eq!(reported, g.skipped.len() + g.altered.len(), "{stdout}");
}

/// Acceptance: a Kadeploy 3.3 database in MariaDB imported twice (TCP, then unix socket with `MYSQL_PWD`)
/// gives the same store, with counts and every unmappable row reported; the clients then show the
/// environments, rights, node states and statistics the generated rows describe.
#[test]
fn imports_a_kadeploy_33_database_twice_and_the_clients_show_it() {
    let dir = setup("import-mysql");
    let mariadb_dir = dir.join("mariadb");
    std::fs::create_dir_all(&mariadb_dir).expect("mariadb dir");
    let db = MariaDb::start(&mariadb_dir);
    let g = Generated::new();
    db.sql(
        None,
        &format!(
            "CREATE DATABASE kadeploy3 CHARACTER SET utf8;
             CREATE USER 'kadeploy'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
             CREATE USER 'kadeploy'@'localhost' IDENTIFIED BY '{PASSWORD}';
             GRANT SELECT ON kadeploy3.* TO 'kadeploy'@'127.0.0.1';
             GRANT SELECT ON kadeploy3.* TO 'kadeploy'@'localhost';"
        ),
    );
    db.sql(Some("kadeploy3"), SCHEMA);
    db.sql(Some("kadeploy3"), &g.sql);
    let store = dir.join("store.sqlite");

    // First import, over TCP.
    let tcp = format!(
        "mysql://kadeploy:{PASSWORD}@127.0.0.1:{}/kadeploy3",
        db.port
    );
    let out = import(&store, &tcp, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "rows were reported: {stdout}{stderr}"
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the password is not printed"
    );
    println!("first import:\n{stdout}");
    check_report(&stdout, &g, false);
    let first = dump(&store);
    assert_eq!(first["environments"].len(), g.envs.len());

    // Second import, over the unix socket, the password from MYSQL_PWD: nothing changes.
    let socket = format!(
        "mysql://kadeploy@localhost/kadeploy3?socket={}",
        db.socket.display()
    );
    let out = import(&store, &socket, &[("MYSQL_PWD", PASSWORD)]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("second import:\n{stdout}");
    check_report(&stdout, &g, true);
    assert_eq!(
        dump(&store),
        first,
        "importing again leaves the store as it was"
    );

    // Columns no client shows are kept: checksums of archives and of old log rows, allowed_users, ids.
    let conn = rusqlite::Connection::open(&store).expect("store");
    let e = g
        .envs
        .iter()
        .find(|e| e.expected.get("preinstall").is_some())
        .expect("a preinstall");
    let (id, pre): (i64, String) = conn
        .query_row(
            "SELECT id, preinstall FROM environments WHERE user = ?1 AND name = ?2 AND version = ?3",
            rusqlite::params![e.user, e.name, e.version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("env row");
    assert_eq!(id, i64::from(e.id), "a free Kadeploy 3.3 id is kept");
    let archive = e.expected["preinstall"]["archive"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(pre, format!("{archive}|tgz|pre{}|launch.sh -v", e.id));
    for e in &g.envs {
        let allowed: String = conn
            .query_row(
                "SELECT allowed_users FROM environments WHERE user = ?1 AND name = ?2 AND version = ?3",
                rusqlite::params![e.user, e.name, e.version],
                |r| r.get(0),
            )
            .expect("env row");
        assert_eq!(allowed, e.allowed_users);
    }
    let md5s: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM log WHERE md5 = '0123456789abcdef0123456789abcdef'",
            [],
            |r| r.get(0),
        )
        .expect("md5");
    assert!(md5s > 0, "log md5 kept");
    drop(conn);

    // The server on the imported store, and our clients.
    // The sample's loopback ACL on: the clients speak for root, alice and bob from 127.0.0.1.
    let server = Server::start(&harness::config_copy(&dir, true), &store, &[]);
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {}, secure: true}}\n",
        server.port
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");

    for e in &g.envs {
        let v = e.version.to_string();
        let out = ok(
            &dir,
            "root",
            "kaenv3",
            &["-p", &e.name, "-u", &e.user, "--env-version", &v],
        );
        let shown: Value =
            serde_saphyr::from_str(&out).unwrap_or_else(|err| panic!("{err}: {out}"));
        assert_eq!(
            shown, e.expected,
            "kaenv3 -p {} -u {} --env-version {v}",
            e.name, e.user
        );
    }
    let all = ok(&dir, "root", "kaenv3", &["-l", "-s"]);
    assert_eq!(
        listed(&all, 2),
        env_lines(g.envs.iter()),
        "every version of every environment"
    );
    let alice = ok(&dir, "alice", "kaenv3", &["-l"]);
    let expected = last_visible(&g, |e| e.user == "alice" || e.visibility == "public");
    assert_eq!(
        listed(&alice, 2),
        env_lines(expected.into_iter()),
        "alice's and public ones, last versions"
    );
    let bobs = ok(&dir, "alice", "kaenv3", &["-l", "-u", "bob"]);
    let expected = last_visible(&g, |e| e.user == "bob" && e.visibility != "private");
    assert_eq!(
        listed(&bobs, 2),
        env_lines(expected.into_iter()),
        "bob's shared and public ones"
    );

    let rights = ok(&dir, "root", "karights3", &["-l"]);
    let mut expected: Vec<String> = g
        .rights
        .iter()
        .map(|(u, n, p)| format!("{u:<15} {n:<41} {}", p.join(",")))
        .collect();
    expected.sort();
    // Kadeploy's `karights3 -l` prints a header line and a `####` line.
    assert_eq!(listed(&rights, 2), expected);

    let mut args = vec!["-s"];
    let hosts: Vec<String> = g.nodes.keys().cloned().collect();
    for h in &hosts {
        args.extend(["-m", h.as_str()]);
    }
    let states: Value =
        serde_saphyr::from_str(&ok(&dir, "root", "kanodes3", &args)).expect("kanodes3 YAML");
    assert_eq!(states, serde_json::to_value(&g.nodes).expect("json"));

    let csv = ok(&dir, "root", "kastat3", &[]);
    let mut expected = g.log_lines.clone();
    expected.sort();
    assert_eq!(listed(&csv, 0), expected, "every log row, every field");
    let reboots = ok(
        &dir,
        "root",
        "kastat3",
        &["-o", "reboot", "-F", "wid,hostname,success"],
    );
    let mut expected: Vec<String> = g
        .log_rows
        .iter()
        .filter(|r| r.0.starts_with("R-"))
        .map(|r| format!("{},{},{}", r.0, r.1, r.2))
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(listed(&reboots, 0), expected);
    let retried = ok(&dir, "root", "kastat3", &["-r", "2", "-F", "wid,hostname"]);
    let mut expected: Vec<String> = g
        .log_rows
        .iter()
        .filter(|r| r.3.iter().any(|n| *n >= 2))
        .map(|r| format!("{},{}", r.0, r.1))
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(listed(&retried, 0), expected);
    let rates: BTreeMap<String, f64> = ok(&dir, "root", "kastat3", &["-b"])
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(h, r)| (h.to_string(), r.trim().parse().expect("rate")))
        .collect();
    let mut totals: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (_, host, success, _) in &g.log_rows {
        let t = totals.entry(host.clone()).or_default();
        t.0 += u32::from(*success);
        t.1 += 1;
    }
    assert_eq!(rates.len(), totals.len());
    for (host, (succ, total)) in totals {
        let expected = ((1.0 - f64::from(succ) / f64::from(total)) * 1000.0).round() / 1000.0;
        assert!(
            (rates[&host] - expected).abs() < 1e-9,
            "{host}: {} != {expected}",
            rates[&host]
        );
    }
    drop(server);

    // A database that is not at 3.3's schema (log.deploy_id not yet renamed by update-3.2.sql) is refused
    // before the store is even opened; so is a wrong password.
    db.sql(None, "CREATE DATABASE kadeploy31 CHARACTER SET utf8; GRANT SELECT ON kadeploy31.* TO 'kadeploy'@'127.0.0.1';");
    db.sql(Some("kadeploy31"), SCHEMA);
    db.sql(
        Some("kadeploy31"),
        "ALTER TABLE log CHANGE wid deploy_id varchar(41) NOT NULL;",
    );
    let fresh = dir.join("fresh.sqlite");
    let old = tcp.replace("/kadeploy3", "/kadeploy31");
    let out = import(&fresh, &old, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("table log lacks wid") && stderr.contains("update-3.2.sql"),
        "{stderr}"
    );
    assert!(!fresh.exists(), "nothing written");
    let out = import(&fresh, &tcp.replace(PASSWORD, "wrong"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!fresh.exists(), "nothing written");
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// No MariaDB needed: a server that is not there and a URL that is not a MySQL URL are errors (exit 1).
#[test]
fn unreachable_servers_and_bad_urls_are_errors() {
    let dir = setup("import-mysql-errors");
    let store = dir.join("store.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let out = import(
        &store,
        &format!("mysql://u:p@127.0.0.1:{port}/kadeploy3"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    let out = import(&store, "postgres://u@127.0.0.1/kadeploy3", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--import-mysql"), "{stderr}");
    assert!(!store.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}
