//! Attacks on authentication and on the server's own files (security issue, items 4, 5, 8 and 11), each
//! performed against the real `kadeploy3d`. Each test says what the attack achieved before the fix
//! (commit f72496d).

use super::attacks_x509::b64;
use super::auth::{bind_privileged, set_authentication};
use super::harness::{Http, Resp, Server, config_copy, seed_catalog, setup};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------------
// Item 4: server:// references.

/// A plain-HTTP server whose PXE repository and cache are under `dir`, whose `server://` references may
/// name the sample image's directory and `dir/envs`; `root` owns everything and `bob` has rights on
/// node-1 to node-4.
struct Site {
    dir: PathBuf,
    envs: PathBuf,
    _server: Server,
    bob: Http,
}

fn site(name: &str) -> Site {
    let dir = setup(name);
    let conf = config_copy(&dir, false);
    let envs = dir.join("envs");
    std::fs::create_dir_all(&envs).expect("envs");
    let path = conf.join("server.conf");
    let text = std::fs::read_to_string(&path).expect("server.conf");
    let listed = format!("\n    - {}\n", super::harness::image_dir().display());
    assert!(
        text.contains(&listed),
        "the test configuration lists the image directory"
    );
    let text = text
        .replace(
            "directory: /var/cache/kadeploy3",
            &format!("directory: {}", dir.join("cache").display()),
        )
        .replace(
            "repository: /var/lib/tftpboot",
            &format!("repository: {}", dir.join("tftp").display()),
        )
        .replace(&listed, &format!("{listed}    - {}\n", envs.display()));
    std::fs::write(&path, text).expect("server.conf");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = Http::new(server.port, "root");
    seed_catalog(&root);
    let nodes: Vec<String> = (1..=4).map(|i| format!("node-{i}.sim.kadeploy")).collect();
    let r = root.send(
        "POST",
        "/rights",
        &json!({"username": "bob", "nodes": nodes, "partitions": ["*"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    Site {
        bob: Http::new(server.port, "bob"),
        dir,
        envs,
        _server: server,
    }
}

/// `POST /deployment` of root's debian12 on `node`, with the extra fields of `extra`.
fn deploy(h: &Http, node: &str, extra: Value) -> Resp {
    let mut body = json!({"nodes": [node],
        "environment": {"kind": "database", "name": "debian12", "user": "root"}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    h.send("POST", "/deployment", &body)
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo {}", path.display());
}

fn userfiles(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("tftp/userfiles"))
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Before: `"pxe": {"files": ["server:///etc/shadow"]}` from a user with rights on one node copied the file
/// to the PXE repository as `pxe-bob--shadow` (served over TFTP and HTTP); `..`, symlinks and FIFOs were
/// followed, and "No such file"/"Is a directory" told which paths exist.
#[test]
fn server_files_outside_the_listed_directories_are_not_published() {
    let s = site("srvfiles");
    let envs = s.envs.display().to_string();
    std::fs::write(s.dir.join("secret"), "TOP SECRET\n").expect("secret");
    std::os::unix::fs::symlink(s.dir.join("secret"), s.envs.join("link")).expect("symlink");
    std::fs::create_dir(s.envs.join("sub")).expect("sub");
    mkfifo(&s.envs.join("fifo"));
    std::fs::write(s.envs.join("vmlinuz"), "kernel").expect("vmlinuz");
    let refs = [
        "server:///etc/shadow".to_string(),
        "server://etc/shadow".to_string(),
        format!("server://{envs}/../secret"),
        format!("server://{}/secret", s.dir.display()),
        format!("server://{envs}/link"),
        format!("server://{envs}/missing"),
        format!("server://{envs}/sub"),
        format!("server://{envs}/fifo"),
    ];
    let mut answers = Vec::new();
    for file in &refs {
        let r = deploy(
            &s.bob,
            "node-1.sim.kadeploy",
            json!({"pxe": {"files": [file]}}),
        );
        assert_eq!((r.status, r.code()), (400, Some(5)), "{file}: {}", r.text());
        answers.push(r.text().replace(file.as_str(), "<file>"));
    }
    // One answer for missing, forbidden and non-regular files.
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "the answers differ: {answers:#?}"
    );
    assert!(userfiles(&s.dir).is_empty(), "{:?}", userfiles(&s.dir));
    // The same confinement for keys, custom operations and environment images.
    let file = "server:///etc/shadow";
    let send = json!({"BroadcastEnv": {"send_environment": {"post-ops": [
        {"action": "send", "name": "x", "file": file, "destination": "/tmp", "timeout": 5}]}}});
    let mut image = super::harness::debian12();
    image["kind"] = json!("anonymous");
    image["image"]["file"] = json!(file);
    for extra in [
        json!({"ssh_authorized_keys": file}),
        json!({"custom_operations": send}),
        json!({"environment": image}),
    ] {
        let r = deploy(&s.bob, "node-1.sim.kadeploy", extra.clone());
        assert_eq!(
            (r.status, r.code()),
            (400, Some(5)),
            "{extra}: {}",
            r.text()
        );
    }
    // A file of a listed directory is published.
    let file = format!("server://{envs}/vmlinuz");
    let r = deploy(
        &s.bob,
        "node-1.sim.kadeploy",
        json!({"pxe": {"files": [file]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        std::fs::read_to_string(s.dir.join("tftp/userfiles/pxe-bob--vmlinuz")).expect("PXE file"),
        "kernel"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Before: a FIFO named as the authorized keys file hung the request (and read whatever a writer sent,
/// 300 MiB in the report); a 2 MiB keys file was read whole.
#[test]
fn a_fifo_or_an_oversized_key_file_is_refused_at_once() {
    let s = site("srvkeys");
    let envs = s.envs.display().to_string();
    mkfifo(&s.envs.join("keys.fifo"));
    std::fs::write(s.envs.join("big.keys"), vec![b'a'; 2 << 20]).expect("big");
    std::fs::write(s.envs.join("ok.keys"), "ssh-ed25519 AAAA bob\n").expect("ok");
    let keys = |name: &str| json!({"ssh_authorized_keys": format!("server://{envs}/{name}")});
    let r = deploy(&s.bob, "node-2.sim.kadeploy", keys("keys.fifo"));
    assert_eq!((r.status, r.code()), (400, Some(5)), "{}", r.text());
    let r = deploy(&s.bob, "node-2.sim.kadeploy", keys("big.keys"));
    assert_eq!((r.status, r.code()), (400, Some(5)), "{}", r.text());
    assert!(r.text().contains("too big"), "{}", r.text());
    let r = deploy(&s.bob, "node-2.sim.kadeploy", keys("ok.keys"));
    assert_eq!(r.status, 200, "{}", r.text());
    let _ = std::fs::remove_dir_all(&s.dir);
}

// ---------------------------------------------------------------------------------------------------
// Item 8: HTTP Basic and ident.

/// `GET path` with HTTP Basic credentials `user:password` and no user header.
fn basic_get(port: u16, path: &str, user: &str, password: &str) -> Option<Resp> {
    let auth = b64(&format!("{user}:{password}"));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\n\
         Authorization: Basic {auth}\r\n\r\n"
    );
    raw_opt(port, req.as_bytes())
}

/// Sends `request` and reads the answer; `None` when the connection fails or nothing complete comes.
fn raw_opt(port: u16, request: &[u8]) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Resp {
        status,
        headers: Vec::new(),
        raw: buf[end + 4..].to_vec(),
    })
}

/// A server with HTTP Basic (htpasswd `htpasswd` with `lines`) for 127.0.0.1 only.
fn basic_server(name: &str, lines: &str) -> (PathBuf, Server) {
    let dir = setup(name);
    let conf = config_copy(&dir, false);
    std::fs::write(conf.join("htpasswd"), lines).expect("htpasswd");
    set_authentication(
        &conf,
        "authentication:\n  http_basic:\n    dbfile: htpasswd\n    whitelist:\n      - 127.0.0.1\n",
    );
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    (dir, server)
}

/// Before: an htpasswd line `bob:` let anybody in as bob with an empty password.
#[test]
fn an_empty_htpasswd_password_opens_nothing() {
    let (dir, server) = basic_server(
        "basic-empty",
        "bob:\nalice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n",
    );
    let r = basic_get(server.port, "/deployment", "bob", "").expect("answer");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = basic_get(server.port, "/deployment", "alice", "").expect("answer");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = basic_get(server.port, "/deployment", "alice", "secret").expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `kadeploy3d` on `conf`, expecting it to refuse: its error output.
fn start_refused(conf: &Path, db: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kadeploy3d"))
        .arg("-c")
        .arg(conf)
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kadeploy3d starts");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if !line.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("kadeploy3d accepted the configuration: {line}");
    }
    let out = child.wait_with_output().expect("exit");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Before: `authentication/ident/port` could name an unprivileged port, where any local user can run an
/// "identd" that answers root: every local user logged in as root.
#[test]
fn an_identd_on_an_unprivileged_port_is_not_trusted() {
    let dir = setup("ident-unprivileged");
    let conf = config_copy(&dir, false);
    // What any local user can do: listen on a high port and answer "root" to every query.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").expect("fake identd");
    let port = fake.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in fake.incoming().flatten() {
            let mut line = String::new();
            if BufReader::new(&s).read_line(&mut line).is_ok() {
                let _ = (&s)
                    .write_all(format!("{} : USERID : UNIX : root\r\n", line.trim()).as_bytes());
            }
        }
    });
    set_authentication(
        &conf,
        &format!(
            "authentication:\n  ident:\n    port: {port}\n    whitelist:\n      - 127.0.0.1\n"
        ),
    );
    let err = start_refused(&conf, &dir.join("db.sqlite"));
    assert!(err.contains("authentication/ident/port"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Before: an identd answering one endless line made the server read it whole (600 MB: 1.5 GB RSS) and
/// echo it in the 401 body.
#[test]
fn an_endless_ident_answer_is_cut_and_not_echoed() {
    let dir = setup("ident-endless");
    let conf = config_copy(&dir, false);
    let identd = bind_privileged();
    let port = identd.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Some(mut s) = identd.incoming().flatten().next() {
            let mut query = String::new();
            let _ = BufReader::new(&s).read_line(&mut query);
            // 32 MiB of one line, then its end.
            let chunk = vec![b'A'; 64 << 10];
            for _ in 0..512 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"\r\n");
        }
    });
    set_authentication(
        &conf,
        &format!(
            "authentication:\n  ident:\n    port: {port}\n    whitelist:\n      - 127.0.0.1\n"
        ),
    );
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let r = Http::new(server.port, "root").get("/deployment");
    let text = r.text();
    assert_eq!(r.status, 401, "{}", &text[..text.len().min(200)]);
    assert!(
        text.len() < 1024 && !text.contains("AAAA"),
        "{} bytes: {}",
        text.len(),
        &text[..text.len().min(200)]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------------
// Item 11: password checks off the request path.

/// Before: eight parallel wrong-password loops (bcrypt on the async workers) raised `/version` from 3 ms to
/// 1-2 s, and every request waited for them. Now: while wrong-password checks are in flight (none has
/// been answered yet), cheap requests and a remembered password are answered, and beyond the queue the
/// server answers 503 at once.
#[test]
fn wrong_password_floods_leave_other_requests_answered() {
    // bcrypt cost 14: a check takes about a second, far longer than the cheap requests below.
    let hash = bcrypt::hash("secret", 14).expect("bcrypt");
    let (dir, server) = basic_server("basic-flood", &format!("alice:{hash}\n"));
    let port = server.port;
    // A first success, remembered by the server.
    let r = basic_get(port, "/deployment", "alice", "secret").expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
    const LOOPS: usize = 12;
    let stop = Arc::new(AtomicBool::new(false));
    let wrong_answered = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Barrier::new(LOOPS + 1));
    let mut loops = Vec::new();
    for i in 0..LOOPS {
        let (stop, answered, sent) = (stop.clone(), wrong_answered.clone(), sent.clone());
        loops.push(std::thread::spawn(move || {
            let mut first = true;
            while !stop.load(Ordering::SeqCst) {
                let auth = b64(&format!("alice:wrong{i}"));
                let req = format!(
                    "GET /deployment HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                     Authorization: Basic {auth}\r\n\r\n"
                );
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    break;
                };
                let _ = s.write_all(req.as_bytes());
                if first {
                    sent.wait();
                    first = false;
                }
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                if buf.starts_with(b"HTTP/1.1 401") {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    sent.wait();
    // Let the server take the requests in.
    std::thread::sleep(Duration::from_millis(200));
    let cheap = std::time::Instant::now();
    for _ in 0..10 {
        let r = raw_opt(
            port,
            b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .expect("version");
        assert_eq!(r.status, 200);
    }
    let r = basic_get(port, "/deployment", "alice", "secret").expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
    let answered = wrong_answered.load(Ordering::SeqCst);
    let cheap = cheap.elapsed();
    eprintln!(
        "10 /version and a remembered password under load: {cheap:?}, {answered} wrong answered"
    );
    assert!(
        answered < 2,
        "{answered} wrong-password checks ended before the cheap requests were answered (in {cheap:?})"
    );
    // Beyond the running and waiting checks, more wrong passwords are answered 503 at once (the others
    // wait for their turn: the first 503 is enough).
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..24 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let status =
                basic_get(port, "/deployment", "alice", &format!("x{i}")).map(|r| r.status);
            let _ = tx.send(status);
        });
    }
    drop(tx);
    let busy = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(60)).ok())
        .any(|status| status == Some(503));
    assert!(busy, "no 503 beyond the queue");
    stop.store(true, Ordering::SeqCst);
    drop(server);
    for t in loops {
        let _ = t.join();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
