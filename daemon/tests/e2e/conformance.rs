//! Acceptance 5: raw HTTP requests shaped as the Ruby clients send them (spec §2.1, the trace of §2.2),
//! checked field for field against §3, plus malformed requests that must be refused without writing.

use super::harness::{Http, Resp, Server, config_copy, debian12, nodes, seed_catalog, setup};
use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn plain_server(name: &str) -> (std::path::PathBuf, Server) {
    let dir = setup(name);
    let conf = config_copy(&dir, false);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    (dir, server)
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A Kadeploy error: 400, the number, the Base64 message equal to the text body without its newline.
fn assert_kadeploy_error(r: &Resp, code: u32) {
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), Some(code), "{}", r.text());
    let info = r.header("x-application-error-info").expect("error info");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(info)
        .expect("strict Base64");
    let body = r.text();
    assert!(body.ends_with('\n'));
    assert_eq!(
        String::from_utf8_lossy(&decoded),
        body.trim_end_matches('\n')
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
}

fn text_plain(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let t = r.text();
    assert!(t.ends_with('\n'), "text/plain ends with a newline: {t:?}");
    t
}

#[test]
fn deployment_trace_of_the_ruby_client() {
    let (dir, server) = plain_server("trace");
    let h = Http::new(server.port, "root");
    let r = h.get("/version");
    assert_eq!(text_plain(&r), format!("{}\n", kadeploy_server::VERSION));
    assert_eq!(r.header("cache-control"), Some("no-store, no-cache"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(text_plain(&h.get("/auth_headers_prefix")), "X-Kadeploy-\n");
    seed_catalog(&h);
    let r = h.get("/nodes?user=root&list=true");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(
        r.header("content-encoding"),
        Some("gzip"),
        "Net::HTTP asks for gzip"
    );
    let mut sorted = nodes(1..=300);
    sorted.sort();
    assert_eq!(r.json(), json!(sorted));
    let envs = h.get("/environments?last=true&name=debian12").json();
    assert_eq!(envs.as_array().map(Vec::len), Some(1), "{envs}");
    assert_eq!(envs[0]["user"], "root");
    assert_eq!(envs[0]["version"], 1);

    let five = nodes(1..=5);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": five}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sub = r.json();
    assert_eq!(keys(&sub), ["resources", "wid"]);
    let wid = sub["wid"].as_str().expect("wid").to_string();
    assert!(wid.starts_with("D-") && is_uuid(&wid[2..]), "{wid}");
    let res = &sub["resources"];
    assert_eq!(
        keys(res),
        ["error", "log", "logs", "resource", "state", "status"]
    );
    let base = format!("/deployment/{wid}");
    assert_eq!(
        res["resource"],
        format!("{base}/"),
        "File.join: trailing slash"
    );
    assert_eq!(res["log"], format!("{base}/logs"));
    assert_eq!(
        res["logs"],
        json!({"sim": format!("{base}/logs/sim?user=root")})
    );
    assert_eq!(res["state"], format!("{base}/state"));
    assert_eq!(res["status"], format!("{base}/status"));
    assert_eq!(res["error"], format!("{base}/error"));
    let resource = res["resource"].as_str().expect("resource");

    let w = h.get(resource).json();
    for k in [
        "wid",
        "user",
        "done",
        "error",
        "start_time",
        "logs",
        "nodes",
        "time",
        "environment",
    ] {
        assert!(w.get(k).is_some(), "workflow object has {k}: {w}");
    }
    assert_eq!(w["wid"], wid.as_str());
    assert_eq!(w["user"], "root");
    assert!(w["start_time"].is_i64() && w["time"].is_number() && w["logs"].is_boolean());
    assert_eq!(
        w["environment"],
        json!({"id": 1, "user": "root", "name": "debian12", "version": 1})
    );
    let w = h.wait_done(resource, LIMIT);
    assert_eq!(w["error"], false);
    assert_eq!(keys(&w["nodes"]), ["ko", "ok"], "no `processing` once done");
    assert_eq!(w["nodes"]["ok"], json!(five));
    assert_eq!(w["logs"], true, "unread lines");

    let logs = text_plain(&h.get(res["log"].as_str().expect("log")));
    let mut last = 0.0;
    for line in logs.lines() {
        let (t, text) = line.split_once('|').expect("<epoch>|<text>");
        let t: f64 = t.parse().expect("float epoch");
        assert!(t >= w["start_time"].as_f64().unwrap_or(0.0) && t >= last && !text.is_empty());
        assert_eq!(
            line.split_once('.').map(|(_, f)| f.find('|')),
            Some(Some(5)),
            "%.5f"
        );
        last = t;
    }
    assert!(logs.contains("|Launching a deployment on "), "{logs}");
    assert_eq!(
        text_plain(&h.get(res["log"].as_str().expect("log"))),
        "\n",
        "consumed on read"
    );
    assert_eq!(
        text_plain(&h.get(res["logs"]["sim"].as_str().expect("logs"))),
        "\n"
    );
    assert_eq!(h.get(resource).json()["logs"], false);

    let state = h.get(&format!("{base}/state")).json();
    assert_eq!(keys(&state), five);
    for v in state.as_object().into_iter().flat_map(|m| m.values()) {
        assert_eq!(v, &json!({"macro": null, "micro": null, "state": "ok"}));
    }
    assert_eq!(h.get(&format!("{base}/status")).json(), json!({}));
    assert_eq!(text_plain(&h.get(&format!("{base}/error"))), "\n");
    let r = h.request("DELETE", resource, &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"wid": wid}));
    assert_kadeploy_error(&h.get(resource), 1);
    assert_kadeploy_error(&h.get(&format!("{base}/state")), 1);
    assert_eq!(h.get("/deployment").json(), json!([]));
    let n = h.get("/nodes/node-3.sim.kadeploy").json();
    assert_eq!(
        n,
        json!({"state": "deployed", "user": "root",
               "environment": {"name": "debian12", "version": 1, "user": "root"}})
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn power_yaml_stats_and_statuses() {
    let (dir, server) = plain_server("power");
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let r = h.send(
        "PUT",
        "/power",
        &json!({"nodes": ["node-1.sim.kadeploy"], "status": "on"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    assert!(wid.starts_with("P-") && is_uuid(&wid[2..]));
    let w = h.wait_done(&format!("/power/{wid}/"), LIMIT);
    assert_eq!(w["nodes"]["ok"], json!(["node-1.sim.kadeploy"]), "{w}");
    // Kadeploy 3.3's POST /power raises (a 500); this server answers 405 (method not allowed).
    let r = h.send(
        "POST",
        "/power",
        &json!({"nodes": ["node-1.sim.kadeploy"], "status": "on"}),
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET, PUT"));
    // GET /power?nodes=a&nodes=b starts a status workflow (repeated keys become an array).
    let r = h.get("/power?nodes=node-2.sim.kadeploy&nodes=node-3.sim.kadeploy");
    assert_eq!(r.status, 200, "{}", r.text());
    let status_wid = r.json()["wid"].as_str().expect("wid").to_string();
    let w = h.wait_done(&format!("/power/{status_wid}/"), LIMIT);
    assert_eq!(
        w["nodes"]["ok"],
        json!(["node-2.sim.kadeploy", "node-3.sim.kadeploy"])
    );
    let list = h.get("/power").json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    let r = h.request(
        "GET",
        "/nodes?nodes=node-1.sim.kadeploy",
        &[("Accept", "application/x-yaml")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-yaml"))
    );
    let yaml = r.text();
    assert!(
        yaml.starts_with("---\n") && yaml.contains("node-1.sim.kadeploy"),
        "{yaml}"
    );
    assert!(yaml.contains("powered"), "{yaml}");

    let r = h.request(
        "GET",
        &format!("/stats?wid={wid}"),
        &[("Accept-Encoding", "")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"), "always gzipped");
    assert_eq!(r.header("content-type"), Some("text/csv"));
    let csv = r.text();
    assert_eq!(csv.lines().count(), 1, "{csv}");
    assert!(
        csv.starts_with(&format!("{wid},root,node-1.sim.kadeploy,On,")),
        "{csv}"
    );
    let r = h.get("/stats/power?fields=hostname&sort=hostname");
    assert_eq!(
        r.text(),
        "node-1.sim.kadeploy\nnode-2.sim.kadeploy\nnode-3.sim.kadeploy\n"
    );
    let rates = h.get("/stats?kind=failure_rates").json();
    assert_eq!(rates["node-1.sim.kadeploy"], json!(0.0), "{rates}");

    assert_eq!(
        h.request("GET", "/nodes", &[("Accept", "text/html")], None)
            .status,
        406
    );
    assert_eq!(h.get("/nosuch").status, 404);
    let r = h.request("PUT", "/rights", &[], None);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, POST, DELETE"))
    );
    assert_eq!(Http::new(server.port, "bob").get("/rights").status, 403);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_are_refused_and_write_nothing() {
    let (dir, server) = plain_server("bad");
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let envs = h.get("/environments").json();
    let states = h.get("/nodes").json();
    assert!(
        states
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_null))
    );
    let db_env = json!({"kind": "database", "user": "root", "name": "debian12", "version": 1});
    let deploy = |extra: Value| {
        let mut body = json!({"environment": db_env, "nodes": ["node-1.sim.kadeploy"]});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        h.send("POST", "/deployment", &body)
    };
    let json_body =
        |path: &str, body: &[u8]| h.request("POST", path, &[], Some(("application/json", body)));

    // Malformed bodies.
    assert_kadeploy_error(&json_body("/deployment", br#"{"nodes": ["node-1"#), 4);
    assert_kadeploy_error(
        &json_body("/environments", br#"{"environment": {"name": }"#),
        4,
    );
    assert_kadeploy_error(&json_body("/deployment", br#"["node-1.sim.kadeploy"]"#), 4);
    let r = h.request(
        "POST",
        "/deployment",
        &[],
        Some(("text/html", b"<p>nodes</p>")),
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let mut big =
        br#"{"environment": {"name": "big", "version": 1, "os": "linux", "description": ""#
            .to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 20));
    big.extend_from_slice(br#""}}"#);
    let r = json_body("/environments", &big);
    assert_eq!(r.status, 413, "{}", r.text());

    // Parameter types (ParamsParser): deploy_partition is a String but an Integer is accepted;
    // boot_partition must be an Integer.
    let r = deploy(json!({"deploy_partition": 3, "dry_run": true}));
    assert_eq!(text_plain(&r), "\n", "dry_run: an empty text/plain answer");
    let r = deploy(json!({"deploy_partition": "3", "boot_partition": 2, "dry_run": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = deploy(json!({"boot_partition": "two"}));
    assert_kadeploy_error(&r, 4);
    assert!(
        r.text()
            .contains("Parameter 'boot_partition': should be an Integer"),
        "{}",
        r.text()
    );
    assert_kadeploy_error(&deploy(json!({"boot_partition": true})), 4);
    assert_kadeploy_error(&deploy(json!({"verbose_level": 9})), 4);
    assert_kadeploy_error(&deploy(json!({"nodes": {"a": 1}})), 4);
    assert_kadeploy_error(&deploy(json!({"breakpoint": "not a step!"})), 4);

    // Unknown environments (7), node lists (2), missing options (12), duplicates (10).
    let r = deploy(json!({"environment": {"kind": "database", "user": "root", "name": "nosuch"}}));
    assert_kadeploy_error(&r, 7);
    assert_kadeploy_error(
        &deploy(json!({"environment": {"kind": "database", "name": "debian12", "version": 9}})),
        7,
    );
    assert_kadeploy_error(&deploy(json!({"nodes": ["node-[1-"]})), 2);
    assert_kadeploy_error(&deploy(json!({"nodes": ["node-[a-c]"]})), 2);
    assert_kadeploy_error(&deploy(json!({"nodes": ["nosuch-1.sim.kadeploy"]})), 2);
    assert_kadeploy_error(&deploy(json!({"nodes": []})), 12);
    assert_kadeploy_error(
        &h.send(
            "POST",
            "/deployment",
            &json!({"nodes": ["node-1.sim.kadeploy"]}),
        ),
        12,
    );
    let r = h.send("POST", "/environments", &json!({"environment": debian12()}));
    assert_kadeploy_error(&r, 10);
    let mut no_image = debian12();
    no_image["name"] = json!("noimage");
    no_image.as_object_mut().map(|m| m.remove("image"));
    let r = h.send("POST", "/environments", &json!({"environment": no_image}));
    assert_eq!(r.status, 400, "{}", r.text());

    // Nothing was written, and the server still answers.
    assert_eq!(h.get("/environments").json(), envs);
    assert_eq!(h.get("/nodes").json(), states);
    assert_eq!(h.get("/deployment").json(), json!([]));
    assert_eq!(h.get("/stats").text(), "");
    assert_eq!(h.get("/version").status, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET path` asking for YAML as `kanodes3` does; the answer must be `application/x-yaml`.
fn yaml(h: &Http, method: &str, path: &str) -> String {
    let r = h.request(method, path, &[("Accept", "application/x-yaml")], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-yaml")),
        "{:?}",
        r.headers
    );
    r.text()
}

/// A YAML document's top-level block collection as one item of a sequence (`- ` then 2 spaces).
fn as_item(doc: &str) -> String {
    let body = doc.strip_prefix("---\n").expect("---");
    let mut out = String::new();
    for (i, line) in body.lines().enumerate() {
        out.push_str(if i == 0 { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether some line of `doc` has a Ruby Symbol key (`:key:`), as in `  :state: ok`.
fn has_symbol_key(doc: &str) -> bool {
    doc.lines()
        .any(|l| l.trim_start().trim_start_matches("- ").starts_with(':'))
}

#[test]
fn yaml_replies_show_ruby_symbol_keys() {
    let (dir, server) = plain_server("yaml");
    let h = Http::new(server.port, "root");
    seed_catalog(&h);
    let two = nodes(1..=2);
    let r = h.send(
        "POST",
        "/deployment",
        &json!({"environment": {"kind": "database", "user": "root", "name": "debian12", "version": 1},
                "nodes": two}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wid = r.json()["wid"].as_str().expect("wid").to_string();
    let base = format!("/deployment/{wid}");
    let w = h.wait_done(&base, LIMIT);
    let (start, time) = (&w["start_time"], w["time"].to_string());
    assert!(w["time"].is_f64(), "{w}");

    // The workflow object (`work_get`): Symbol keys at every level, in Kadeploy's order.
    let expected = format!(
        "---\n:wid: {wid}\n:user: root\n:done: true\n:error: false\n:start_time: {start}\n\
         :environment:\n  :id: 1\n  :user: root\n  :name: debian12\n  :version: 1\n:logs: true\n\
         :nodes:\n  :ok:\n  - node-1.sim.kadeploy\n  - node-2.sim.kadeploy\n  :ko: []\n:time: {time}\n"
    );
    assert_eq!(yaml(&h, "GET", &base), expected);
    assert_eq!(
        yaml(&h, "GET", "/deployment"),
        format!("---\n{}", as_item(&expected))
    );
    // JSON keeps plain keys, in the same order.
    let json_text = h.get(&base).text();
    assert!(
        json_text.starts_with(&format!("{{\n  \"wid\": \"{wid}\",\n  \"user\": \"root\",")),
        "{json_text}"
    );
    assert_eq!(
        Http::new(server.port, "bob")
            .request("GET", &base, &[("Accept", "application/x-yaml")], None)
            .text(),
        format!(
            "---\n:wid: {wid}\n:user: root\n:done: true\n:error: false\n:start_time: {start}\n\
             :nodes:\n- node-1.sim.kadeploy\n- node-2.sim.kadeploy\n"
        ),
        "the reduced view of another user"
    );

    // State: hostnames are Strings, the per-node leaves Symbols; nil is an empty value.
    let leaf = ":\n  :macro:\n  :micro:\n  :state: ok\n";
    assert_eq!(
        yaml(&h, "GET", &format!("{base}/state")),
        format!("---\nnode-1.sim.kadeploy{leaf}node-2.sim.kadeploy{leaf}")
    );
    assert_eq!(yaml(&h, "GET", &format!("{base}/status")), "--- {}\n");
    assert_eq!(h.get(&format!("{base}/status")).text(), "{}");

    // Hashes from the database keep String keys, in `kanodes.rb`'s order, as Psych writes them.
    let states = yaml(&h, "GET", "/nodes?nodes=node-1.sim.kadeploy");
    assert_eq!(
        states,
        "---\nnode-1.sim.kadeploy:\n  state: deployed\n  user: root\n  environment:\n    name: debian12\n    \
         version: 1\n    user: root\n",
    );
    assert!(!has_symbol_key(&states), "{states}");
    // A node never deployed has no row: nil, an empty value; JSON keeps the same order.
    let two = yaml(
        &h,
        "GET",
        "/nodes?nodes=node-2.sim.kadeploy&nodes=node-3.sim.kadeploy",
    );
    assert!(
        two.ends_with("    user: root\nnode-3.sim.kadeploy:\n"),
        "{two}"
    );
    assert_eq!(
        h.get("/nodes/node-1.sim.kadeploy")
            .text()
            .split_whitespace()
            .collect::<String>(),
        r#"{"state":"deployed","user":"root","environment":{"name":"debian12","version":1,"user":"root"}}"#
    );
    let envs = yaml(&h, "GET", "/environments?name=debian12");
    assert!(
        envs.starts_with("---\n- ") && envs.contains("name: debian12\n"),
        "{envs}"
    );
    assert!(!has_symbol_key(&envs), "{envs}");

    assert_eq!(
        yaml(&h, "DELETE", &base),
        format!("---\n:wid: {wid}\n"),
        "work_delete! answers {{:wid => …}}"
    );

    // A console object (`console_get`): Symbols, `:id` rather than `:wid`.
    let r = h.send("POST", "/console", &json!({"node": "node-1"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    let cid = created["wid"].as_str().expect("wid").to_string();
    let uri = created["resources"]["console"].as_str().expect("console");
    let doc = yaml(&h, "GET", &format!("/console/{cid}"));
    let (head, time_line) = doc.rsplit_once(":time: ").expect(":time:");
    assert_eq!(
        head,
        format!(
            "---\n:id: {cid}\n:user: root\n:node: node-1.sim.kadeploy\n:error: false\n\
             :attached: false\n:console_uri: {uri}\n"
        )
    );
    let t = time_line.strip_suffix('\n').expect("newline");
    assert!(
        t.parse::<f64>().is_ok() && t.contains('.'),
        "a Ruby Float: {t}"
    );
    let list = yaml(&h, "GET", "/console");
    assert!(
        list.starts_with(&format!("---\n- :id: {cid}\n  :user: root\n")),
        "{list}"
    );
    assert_eq!(
        yaml(&h, "DELETE", &format!("/console/{cid}")),
        format!("---\n:wid: {cid}\n")
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
