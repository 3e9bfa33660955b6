//! Kadeploy 3.3's environment catalogue behaviours: checksums of the environment's files (computed at
//! `kaenv3 -a`, recomputed by `--update-*-checksum`, shown by kastat), files that do not exist, and "the
//! last version" of an environment whose versions have different visibilities.

use super::harness::{Http, Server, config_copy, image_dir, setup};
use crate::{plain_client as client, s};
use kadeploy_clients::{ClientEnv, tools, workflow};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The sample configuration, also allowing `server://` references under `extra`.
fn config_allowing(dir: &Path, extra: &Path) -> PathBuf {
    let conf = config_copy(dir, false);
    let file = conf.join("server.conf");
    let text = std::fs::read_to_string(&file).expect("server.conf");
    let from = format!("    - {}\n", image_dir().display());
    assert!(text.contains(&from));
    let text = text.replace(&from, &format!("{from}    - {}\n", extra.display()));
    std::fs::write(&file, text).expect("server.conf");
    conf
}

/// `md5sum` of `file`.
fn md5sum(file: &Path) -> String {
    let out = std::process::Command::new("md5sum")
        .arg(file)
        .output()
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `md5` column kastat shows for workflow `wid`.
fn stats_md5(h: &Http, wid: &str) -> String {
    let r = h.get(&format!("/stats?kind=all&wid={wid}&fields=md5"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.text().trim().to_string()
}

fn write_env(dir: &Path, name: &str, body: &str) -> String {
    let file = dir.join(format!("{name}.yml"));
    std::fs::write(&file, body).expect("env file");
    file.to_str().unwrap_or_default().to_string()
}

fn deploy(env: &ClientEnv, dir: &Path, name: &str, node: &str) -> (i32, String) {
    let wid = dir.join(format!("wid-{name}-{node}"));
    let mut args = s(&["-e", name, "-m", node, "--write-workflow-id"]);
    args.push(wid.to_str().unwrap_or_default().into());
    let code = workflow::deploy(&args, env);
    let wid = std::fs::read_to_string(&wid).unwrap_or_default();
    (code, wid.trim().to_string())
}

/// A one-file HTTP server on loopback: `HEAD`/`GET /img.tgz` answer `body`, any other path 404.
fn http_server(body: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = first.starts_with("HEAD ");
            let mut out = &stream;
            if first.split(' ').nth(1) == Some("/img.tgz") {
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"e1\"\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if !head {
                    let _ = out.write_all(body);
                }
            } else {
                let _ = out.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    port
}

/// `kaenv3 -a` records the MD5 of the image, pre-install and post-install files; kastat's `md5` column
/// shows the image's; `--update-image-checksum` and `--update-postinstalls-checksum` answer error 14 while
/// the file is unchanged and record the new checksum once it changed. Before, no checksum was ever
/// computed: the column was empty and every update answered 14.
#[test]
fn checksums_are_computed_recorded_and_updated() {
    let dir = setup("parity-checksums");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    let (img, post) = (files.join("img.tgz"), files.join("post.tgz"));
    std::fs::write(&img, b"image version 1\n").expect("image");
    std::fs::write(&post, b"post-install 1\n").expect("post");
    let server = Server::start(&config_allowing(&dir, &files), &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port, "root");
    let h = Http::new(server.port, "root");
    assert_eq!(
        tools::karights(&s(&["-a", "-u", "root", "-m", "*", "-p", "*"]), &root),
        0
    );
    let env = write_env(
        &dir,
        "sums",
        &format!(
            "name: sums\nversion: 1\nos: linux\nfilesystem: ext4\nboot: {{kernel: /vmlinuz}}\n\
             image: {{file: 'server://{}', kind: tar, compression: gzip}}\n\
             postinstalls: [{{archive: 'server://{}', compression: gzip, script: none}}]\n",
            img.display(),
            post.display()
        ),
    );
    assert_eq!(tools::kaenv(&s(&["-a", &env]), &root), 0);
    let (code, wid) = deploy(&root, &dir, "sums", "node-1");
    assert_eq!(code, 0);
    let first = md5sum(&img);
    assert_eq!(stats_md5(&h, &wid), first, "kastat's md5 column");

    let update = |what: &str| tools::kaenv(&s(&[what, "sums"]), &root);
    assert_eq!(update("--update-image-checksum"), 14, "unchanged image");
    assert_eq!(update("--update-postinstalls-checksum"), 14, "unchanged");
    std::fs::write(&img, b"image version 2\n").expect("image");
    assert_eq!(update("--update-image-checksum"), 0, "the image changed");
    assert_eq!(update("--update-image-checksum"), 14, "recorded");
    std::fs::write(&post, b"post-install 2\n").expect("post");
    assert_eq!(update("--update-postinstalls-checksum"), 0);
    let (code, wid) = deploy(&root, &dir, "sums", "node-2");
    assert_eq!(code, 0);
    assert_ne!(md5sum(&img), first);
    assert_eq!(stats_md5(&h, &wid), md5sum(&img), "the updated checksum");

    // The Ruby client's `kaenv3 --update-image-checksum sums` request, replayed.
    let r = h.send(
        "PUT",
        "/environments/root/sums",
        &json!({"update_image_checksum": true, "last": true}),
    );
    assert_eq!((r.status, r.code()), (400, Some(14)), "{}", r.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Environments whose files do not exist: `kaenv3 -a` answers Kadeploy's error 5 "Unable to grab the
/// file" for a missing `server://` file and for an HTTP 404, and the simulated backend refuses to deploy
/// an anonymous environment whose image is missing. An HTTP image that exists is checksummed. Before, all
/// of them were accepted and the simulated backend "deployed" the missing image.
#[test]
fn missing_files_are_refused() {
    let dir = setup("parity-missing");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    let server = Server::start(&config_allowing(&dir, &files), &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port, "root");
    let h = Http::new(server.port, "root");
    assert_eq!(
        tools::karights(&s(&["-a", "-u", "root", "-m", "*", "-p", "*"]), &root),
        0
    );
    let desc = |name: &str, file: &str| {
        json!({"name": name, "version": 1, "os": "linux", "filesystem": "ext4", "boot": {"kernel": "/vmlinuz"},
            "image": {"file": file, "kind": "tar", "compression": "gzip"}})
    };
    let missing = format!("server://{}/missing.tgz", files.display());
    let r = h.send(
        "POST",
        "/environments",
        &json!({"environment": desc("gone", &missing)}),
    );
    assert_eq!((r.status, r.code()), (400, Some(5)), "{}", r.text());
    assert!(r.text().contains("Unable to grab the file"), "{}", r.text());
    let env = write_env(
        &dir,
        "gone",
        &format!(
            "name: gone\nversion: 1\nos: linux\nfilesystem: ext4\nboot: {{kernel: /vmlinuz}}\n\
             image: {{file: '{missing}', kind: tar, compression: gzip}}\n"
        ),
    );
    assert_eq!(tools::kaenv(&s(&["-a", &env]), &root), 5, "kaenv3 -a");
    assert_eq!(
        workflow::deploy(&s(&["-a", &env, "-m", "node-1"]), &root),
        5,
        "the simulated backend refuses the missing image"
    );

    let port = http_server(b"an image served over HTTP\n");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let r = h.send(
        "POST",
        "/environments",
        &json!({"environment": desc("web404", &url("/nothing.tgz"))}),
    );
    assert_eq!((r.status, r.code()), (400, Some(5)), "{}", r.text());
    assert!(r.text().contains("Unable to grab the file"));
    assert!(r.text().contains("http error #404"), "{}", r.text());
    let r = h.send(
        "POST",
        "/environments",
        &json!({"environment": desc("web", &url("/img.tgz"))}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let local = files.join("served.tgz");
    std::fs::write(&local, b"an image served over HTTP\n").expect("copy");
    let (code, wid) = deploy(&root, &dir, "web", "node-2");
    assert_eq!(code, 0);
    assert_eq!(
        stats_md5(&h, &wid),
        md5sum(&local),
        "the MD5 of the content"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// After `kaenv3 --set-visibility-tag` on the newest version, "the last version" is still the newest:
/// `kadeploy3 -e NAME` deploys it, whatever the visibilities (Kadeploy orders by visibility, then name,
/// then version). Before, the version of the first visibility group won and an old image was deployed.
#[test]
fn the_last_version_stays_the_newest_after_a_visibility_change() {
    let dir = setup("parity-last");
    let server = Server::start(&config_copy(&dir, false), &dir.join("db.sqlite"), &[]);
    let root = client(&dir, server.port, "root");
    let h = Http::new(server.port, "root");
    assert_eq!(
        tools::karights(&s(&["-a", "-u", "root", "-m", "*", "-p", "*"]), &root),
        0
    );
    for v in 1..=2 {
        let env = write_env(
            &dir,
            &format!("v{v}"),
            &format!(
                "name: tagged\nversion: {v}\nvisibility: shared\nos: linux\nfilesystem: ext4\n\
                 boot: {{kernel: /vmlinuz}}\nimage: {{file: '{}', kind: tar, compression: gzip}}\n",
                super::harness::image_ref()
            ),
        );
        assert_eq!(tools::kaenv(&s(&["-a", &env]), &root), 0);
    }
    let version_on = |node: &str| {
        let r = h.get(&format!("/nodes/{node}.sim.kadeploy"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["environment"]["version"].clone()
    };
    for (tag, node) in [("private", "node-1"), ("public", "node-2")] {
        assert_eq!(
            tools::kaenv(&s(&["--set-visibility-tag", "tagged", "-t", tag]), &root),
            0
        );
        assert_eq!(deploy(&root, &dir, "tagged", node).0, 0);
        assert_eq!(version_on(node), 2, "after tagging version 2 {tag}");
    }
    // Version 1 public, version 2 shared: the newest still wins.
    assert_eq!(
        tools::kaenv(
            &s(&[
                "--set-visibility-tag",
                "tagged",
                "--env-version",
                "2",
                "-t",
                "shared"
            ]),
            &root
        ),
        0
    );
    assert_eq!(
        tools::kaenv(
            &s(&[
                "--set-visibility-tag",
                "tagged",
                "--env-version",
                "1",
                "-t",
                "public"
            ]),
            &root
        ),
        0
    );
    assert_eq!(deploy(&root, &dir, "tagged", "node-3").0, 0);
    assert_eq!(version_on("node-3"), 2);
    let r = h.get("/environments?last=true&name=tagged&username=root");
    assert_eq!(r.json()[0]["version"], 2, "{}", r.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
