//! Client-side files (spec §3.4): the client's file server, the server's fetch into its cache and the error
//! codes; custom operations (§5.7) and forced automata (`--force-steps`) on the simulated cluster.

use super::harness::{Http, Server, config_copy, seed_catalog, setup};
use kadeploy_clients::{ClientEnv, export, workflow};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A plain-HTTP server whose cache is `dir/cache`, `root` granted everything, and a client for `root`.
fn start(name: &str) -> (PathBuf, Server, Http, ClientEnv) {
    let dir = setup(name);
    let conf = config_copy(&dir, false);
    let path = conf.join("server.conf");
    let text = std::fs::read_to_string(&path).expect("server.conf");
    let cache = dir.join("cache");
    let text = text
        .replace(
            "directory: /var/cache/kadeploy3",
            &format!("directory: {}", cache.display()),
        )
        .replace(
            "repository: /var/lib/tftpboot",
            &format!("repository: {}", dir.join("tftp").display()),
        );
    std::fs::write(&path, text).expect("server.conf");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let root = Http::new(server.port, "root");
    seed_catalog(&root);
    let conf = format!(
        "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {}, secure: false}}\n",
        server.port
    );
    std::fs::write(dir.join("client.conf"), conf).expect("client.conf");
    let env = ClientEnv {
        config_dir: dir.clone(),
        user: "root".into(),
    };
    (dir, server, root, env)
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn cache_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("cache"))
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn write_env(dir: &Path, image: &str, post: &str) -> PathBuf {
    let env = format!(
        "name: local-env\nversion: 1\nos: linux\nfilesystem: ext4\n\
         image:\n  file: {image}\n  kind: tar\n  compression: gzip\n\
         boot:\n  kernel: /vmlinuz\n\
         postinstalls:\n  - archive: {post}\n    compression: gzip\n    script: none\n"
    );
    let path = dir.join("env.yaml");
    std::fs::write(&path, env).expect("env.yaml");
    path
}

#[test]
fn a_client_side_image_is_exported_fetched_and_cached() {
    let (dir, server, root, env) = start("export");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files");
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(files.join("image.tgz"), &image).expect("image");
    std::fs::write(files.join("post.tgz"), b"postinstall").expect("post");
    std::fs::write(files.join("keys"), "ssh-ed25519 AAAAC3Nz test\n").expect("keys");
    let env_file = write_env(
        &dir,
        &files.join("image.tgz").display().to_string(),
        &format!("local://{}", files.join("post.tgz").display()),
    );
    let (ok, ko) = (dir.join("ok"), dir.join("ko"));
    let key = files.join("keys").display().to_string();
    let code = workflow::deploy(
        &args(&[
            "-a",
            &env_file.display().to_string(),
            "-m",
            "node-[1-3]",
            "-k",
            &key,
            "-o",
            &ok.display().to_string(),
            "-n",
            &ko.display().to_string(),
        ]),
        &env,
    );
    assert_eq!(code, 0);
    let ok_nodes = std::fs::read_to_string(&ok).unwrap_or_default();
    assert_eq!(ok_nodes.lines().count(), 3, "{ok_nodes}");
    assert_eq!(std::fs::read_to_string(&ko).unwrap_or_default(), "");
    // The three files are in the cache, complete, with their checksum (the client's ETag) beside them.
    let entries = cache_entries(&dir);
    let data: Vec<&String> = entries.iter().filter(|e| e.ends_with(".data")).collect();
    assert_eq!(data.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| !e.ends_with(".part")), "{entries:?}");
    let cached = data
        .iter()
        .find(|e| e.contains("image_tgz"))
        .expect("cached image");
    assert_eq!(
        std::fs::read(dir.join("cache").join(cached)).expect("cached"),
        image
    );
    let meta = std::fs::metadata(files.join("image.tgz")).expect("meta");
    assert_eq!(
        std::fs::read_to_string(dir.join("cache").join(format!("{cached}.etag"))).expect("etag"),
        export::etag(&meta)
    );
    let key_copy = data.iter().find(|e| e.ends_with("keys.data")).expect("key");
    assert_eq!(
        std::fs::read_to_string(dir.join("cache").join(key_copy)).expect("key"),
        "ssh-ed25519 AAAAC3Nz test\n"
    );
    // Again over HTTPS (`--secure`), with a PXE profile and an uploaded PXE file: the unchanged files are
    // taken from the cache, the PXE file lands in the PXE repository.
    std::fs::write(files.join("profile"), "KERNEL FILES_PREFIX--vmlinuz\n").expect("profile");
    std::fs::write(files.join("vmlinuz"), b"kernel").expect("kernel");
    let before = std::fs::metadata(dir.join("cache").join(cached))
        .and_then(|m| m.modified())
        .expect("mtime");
    let code = workflow::deploy(
        &args(&[
            "-a",
            &env_file.display().to_string(),
            "-m",
            "node-[5-6]",
            "--secure",
            "-w",
            &files.join("profile").display().to_string(),
            "-x",
            &files.join("vmlinuz").display().to_string(),
            "-o",
            &ok.display().to_string(),
        ]),
        &env,
    );
    assert_eq!(code, 0);
    let ok_nodes = std::fs::read_to_string(&ok).unwrap_or_default();
    assert_eq!(ok_nodes.lines().count(), 5, "{ok_nodes}");
    let after = std::fs::metadata(dir.join("cache").join(cached))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "the cached image was fetched again");
    assert_eq!(
        std::fs::read(dir.join("tftp/userfiles/pxe-root--vmlinuz")).expect("PXE file"),
        b"kernel"
    );
    // --no-wait cannot export files.
    let code = workflow::deploy(
        &args(&[
            "-a",
            &env_file.display().to_string(),
            "-m",
            "node-4",
            "--no-wait",
        ]),
        &env,
    );
    assert_eq!(code, 1);
    drop(server);
    let _ = root;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_client_files_give_kadeploy_errors_and_no_partial_cache() {
    let (dir, server, root, env) = start("export-missing");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files");
    std::fs::write(files.join("post.tgz"), b"postinstall").expect("post");
    let env_file = write_env(
        &dir,
        &files.join("nothere.tgz").display().to_string(),
        &files.join("post.tgz").display().to_string(),
    );
    // The client's file server answers 404: error 5, the client exits 5, nothing is cached.
    let code = workflow::deploy(
        &args(&["-a", &env_file.display().to_string(), "-m", "node-1"]),
        &env,
    );
    assert_eq!(code, 5);
    assert!(
        cache_entries(&dir).iter().all(|e| !e.contains("nothere")),
        "{:?}",
        cache_entries(&dir)
    );
    assert!(
        cache_entries(&dir).iter().all(|e| !e.ends_with(".part")),
        "{:?}",
        cache_entries(&dir)
    );
    // A client-side file without `client`: error 3.
    let desc = json!({"kind": "anonymous", "name": "x", "version": 1, "os": "linux", "filesystem": "ext4",
        "image": {"file": "/home/u/x.tgz", "kind": "tar", "compression": "gzip"}, "boot": {"kernel": "/vmlinuz"}});
    let r = root.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-1"], "environment": desc}),
    );
    assert_eq!((r.status, r.code()), (400, Some(3)), "{}", r.text());
    // An unreachable client: error 5.
    let r = root.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-1"], "environment": desc, "client": "http://127.0.0.1:1"}),
    );
    assert_eq!((r.status, r.code()), (400, Some(5)), "{}", r.text());
    // No workflow was started by the failed submissions.
    assert_eq!(root.get("/deployment").json(), json!([]));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Polls a workflow to its end, collecting its log lines (without timestamps).
fn follow(h: &Http, resources: &Value) -> (Value, Vec<String>) {
    let get = |k: &str| resources[k].as_str().expect("resource path").to_string();
    let mut lines = Vec::new();
    let start = std::time::Instant::now();
    loop {
        let w = h.get(&get("resource")).json();
        let text = h.get(&get("log")).text();
        lines.extend(
            text.lines()
                .filter_map(|l| l.split_once('|'))
                .map(|(_, m)| m.to_string()),
        );
        if w["done"] == true {
            let state = h.get(&get("state")).json();
            return (state, lines);
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{w}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn custom_operations_run_around_and_instead_of_micro_steps() {
    let (dir, server, root, env) = start("customops");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files");
    let conf_file = files.join("sysctl.conf").display().to_string();
    let script = files.join("tune.sh").display().to_string();
    std::fs::write(&conf_file, "net.ipv4.ip_forward = 1\n").expect("file");
    std::fs::write(&script, "#!/bin/sh\necho $1\n").expect("script");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let exported = rt
        .block_on(export::start(
            &[conf_file.clone(), script.clone()],
            "127.0.0.1",
            false,
        ))
        .expect("file server");
    let ops = json!({
        "SetDeploymentEnvUntrusted": {"format_swap_part": {
            "substitute": [{"action": "exec", "name": "noswap", "command": "true"}]}},
        "BroadcastEnv": {"send_environment": {"post-ops": [
            {"action": "send", "name": "conf", "file": conf_file,
             "destination": "$KADEPLOY_ENV_EXTRACTION_DIR/etc", "timeout": 30},
            {"action": "run", "name": "tune", "file": script, "params": "a b", "retries": 1}]}}
    });
    let automata = workflow::force_steps(
        "SetDeploymentEnv|SetDeploymentEnvUntrusted:1:400&BroadcastEnv|BroadcastEnvChain:1:600&BootNewEnv|BootNewEnvClassical:1:400",
    )
    .expect("force-steps");
    let r = root.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-1", "node-2"], "client": exported.url, "custom_operations": ops,
                "automata": automata,
                "environment": {"kind": "database", "name": "debian12", "user": "root"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (state, lines) = follow(&root, &r.json()["resources"]);
    for (node, s) in state.as_object().expect("state") {
        assert_eq!(s["state"], "ok", "{node}: {s}");
    }
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("no line {needle:?} in {lines:#?}"))
    };
    assert!(
        lines.iter().all(|l| l != "  format_swap_part"),
        "{lines:#?}"
    );
    assert!(pos("  mount_deploy_part") < pos("  format_swap_part-noswap"));
    assert!(pos("  send_environment") < pos("  send_environment-conf"));
    assert!(pos("  send_environment-conf") < pos("  send_environment-tune"));
    // The forced automata replaced the cluster's (Kascade, then Kexec).
    pos("Performing a Deploy[BroadcastEnvChain] step");
    pos("Performing a Deploy[BootNewEnvClassical] step");
    assert!(lines.iter().all(|l| !l.contains("Kascade")), "{lines:#?}");

    // Invalid custom operations: error 8, from the API and from kadeploy3 --custom-steps.
    let bad = json!({"BroadcastEnv": {"send_environment": {"post-ops": [{"action": "boom", "name": "x"}]}}});
    let r = root.send(
        "POST",
        "/deployment",
        &json!({"nodes": ["node-3"], "custom_operations": bad,
                "environment": {"kind": "database", "name": "debian12", "user": "root"}}),
    );
    assert_eq!((r.status, r.code()), (400, Some(8)), "{}", r.text());
    // `kadeploy3 -e debian12 -m node-3 <extra>`: its exit code.
    let deploy = |extra: &[&str]| {
        let mut argv = vec!["-e", "debian12", "-m", "node-3"];
        argv.extend_from_slice(extra);
        workflow::deploy(&args(&argv), &env)
    };
    let steps = dir.join("steps.yaml");
    let steps_arg = steps.display().to_string();
    std::fs::write(
        &steps,
        "SetDeploymentEnv:\n  no_such_micro_step:\n    pre-ops:\n      - {action: exec, name: x, command: 'true'}\n",
    )
    .expect("steps");
    assert_eq!(deploy(&["--custom-steps", &steps_arg]), 8);
    // A custom-operation file missing on the client: error 5.
    std::fs::write(
        &steps,
        "BroadcastEnv:\n  send_environment:\n    post-ops:\n      - {action: send, name: f, file: /no/such/file, destination: /tmp}\n",
    )
    .expect("steps");
    assert_eq!(deploy(&["--custom-steps", &steps_arg]), 5);
    // Malformed --force-steps and unknown implementations.
    assert_eq!(deploy(&["--force-steps", "SetDeploymentEnv|x"]), 1);
    assert_eq!(
        deploy(&[
            "--force-steps",
            "SetDeploymentEnv|SetDeploymentEnvNope:1:1&BroadcastEnv|BroadcastEnvChain:1:1&BootNewEnv|BootNewEnvClassical:1:1",
        ]),
        4
    );
    drop(exported);
    drop(rt);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
