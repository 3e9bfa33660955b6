//! Fuzzing the router of the real `kadeploy3d` over keep-alive connections (security issue item 1):
//! random methods, paths built from the API's words and from `%`-escapes, query strings and bodies
//! built from the node-list and description grammars. No request may drop the connection or be
//! answered 500 (a handler panic). Cases: `PROPTEST_CASES` (CI: 32).

use super::conn::{Conn, request};
use super::harness::{Http, Server, config_copy, debian12, seed_catalog, setup};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Words of the API: resources, users, environment and node names, sub-resources.
const WORDS: &[&str] = &[
    "deployment",
    "reboot",
    "power",
    "environments",
    "rights",
    "nodes",
    "stats",
    "console",
    "version",
    "info",
    "clusters",
    "auth_headers_prefix",
    "root",
    "bob",
    "debian12",
    "node-1",
    "node-1.sim.kadeploy",
    "node-[1-3]",
    "logs",
    "state",
    "status",
    "error",
    "debugs",
    "sim",
    "1",
    "*",
    "",
];

/// The API's resources (first path segment).
const RESOURCES: &[&str] = &[
    "deployment",
    "reboot",
    "power",
    "environments",
    "rights",
    "nodes",
    "stats",
    "console",
    "version",
    "info",
    "clusters",
    "auth_headers_prefix",
];

/// Parameter names the handlers read.
const KEYS: &[&str] = &[
    "nodes",
    "list",
    "user",
    "username",
    "name",
    "version",
    "env_version",
    "last",
    "kind",
    "wid",
    "fields",
    "limit",
    "step",
    "force",
    "dry_run",
    "level",
    "status",
    "partitions",
    "verbose_level",
    "boot_partition",
    "deploy_partition",
    "block_device",
    "environment",
    "custom_operations",
    "breakpoint",
    "node",
    "overwrite",
    "toggle_destructive",
    "visibility",
    "update_files",
    "pxe",
    "automata",
    "timeout_reboot_classical",
    "client",
    "ssh_authorized_keys",
    "date_min",
    "date_max",
    "min_retries",
    "min_rate",
];

/// Text from the node-list grammar, numbers and escapes.
const GRAMMAR: &str = "[a-z0-9%\\[\\]\\-,.*:/_]{0,24}";

/// One fuzzed request.
#[derive(Clone, Debug)]
struct Case {
    method: &'static str,
    path: String,
    user: Option<&'static str>,
    accept: Option<&'static str>,
    body: Option<(&'static str, Vec<u8>)>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(String::from),
        2 => "[a-zA-Z0-9%._~\\-,*:@!$'()+;=]{0,16}",
        1 => "(%[0-9a-fA-FgG]{0,2}[a-z]?){1,4}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        3 => "[a-zA-Z0-9%.\\-\\[\\],*+]{0,24}",
        1 => prop::sample::select(WORDS).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ];
    let key = prop_oneof![
        5 => prop::sample::select(KEYS).prop_map(String::from),
        1 => "[a-z%\\[\\]]{0,8}",
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        GRAMMAR.prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(KEYS).prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `debian12` with some fields replaced by random values or removed.
fn mutated_description() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(
        &[
            "name",
            "version",
            "visibility",
            "os",
            "filesystem",
            "image",
            "boot",
            "kind",
            "user",
            "partition_type",
            "multipart",
            "options",
            "postinstalls",
            "preinstall",
            "destructive",
        ][..],
    );
    prop::collection::vec((fields, prop::option::of(json_value())), 0..4).prop_map(|edits| {
        let mut desc = debian12();
        for (field, value) in edits {
            match value {
                Some(v) => desc[field] = v,
                None => {
                    if let Some(m) = desc.as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        desc
    })
}

fn body() -> impl Strategy<Value = Option<(&'static str, Vec<u8>)>> {
    let object = || {
        prop::collection::btree_map(
            prop::sample::select(KEYS).prop_map(String::from),
            json_value(),
            0..6,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()))
    };
    let with_env = (object(), mutated_description()).prop_map(|(mut o, d)| {
        o["environment"] = d;
        o
    });
    prop_oneof![
        3 => Just(None),
        3 => object().prop_map(|v| Some(("application/json", serde_json::to_vec(&v).unwrap_or_default()))),
        2 => with_env.prop_map(|v| Some(("application/json", serde_json::to_vec(&v).unwrap_or_default()))),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Some(("application/json", b))),
        1 => "[a-z:\\[\\]{}, \n0-9%-]{0,60}".prop_map(|t| Some(("application/x-yaml", t.into_bytes()))),
    ]
}

/// Half random requests, half submissions shaped as the clients send them.
fn case() -> impl Strategy<Value = Case> {
    prop_oneof![random_request(), submission()]
}

/// Node lists: real ones, huge ones, and text from the grammar.
fn node_list() -> impl Strategy<Value = Value> {
    let one = prop_oneof![
        3 => prop::sample::select(&[
            "node-1", "node-[1-3]", "node-[1-300]", "node-1.sim.kadeploy", "node-[1-999999].sim.kadeploy",
            "node-[01-10]", "node-", "*", "node-[1-300],node-[1-300]", "n[1-1000]m[1-1000]",
        ][..]).prop_map(String::from),
        2 => GRAMMAR,
        1 => "node-\\[[0-9,\\-]{0,12}\\](\\.sim\\.kadeploy)?",
    ];
    prop_oneof![
        one.clone().prop_map(Value::from),
        prop::collection::vec(one, 0..8)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::from).collect())),
    ]
}

/// The environment of a submission: a recorded one by name and any version, or an anonymous one.
fn environment() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value().prop_map(|version| serde_json::json!({"kind": "database", "name": "debian12", "user": "root", "version": version})),
        mutated_description().prop_map(|mut d| {
            d["kind"] = Value::from("anonymous");
            d
        }),
        json_value(),
    ]
}

/// `POST /deployment`, `POST /reboot`, `PUT|GET /power`, `POST /console`, `GET /nodes`, `POST /rights`,
/// `POST /environments` with a node list, an environment and random other parameters.
fn submission() -> impl Strategy<Value = Case> {
    let target = prop::sample::select(
        &[
            ("POST", "/deployment"),
            ("POST", "/reboot"),
            ("PUT", "/power"),
            ("GET", "/power"),
            ("POST", "/console"),
            ("GET", "/nodes"),
            ("POST", "/rights"),
            ("POST", "/environments"),
        ][..],
    );
    let extra = prop::collection::btree_map(
        prop::sample::select(KEYS).prop_map(String::from),
        json_value(),
        0..4,
    );
    (
        target,
        node_list(),
        prop::option::of(environment()),
        extra,
        prop::sample::select(&["root", "bob"][..]),
        any::<bool>(),
    )
        .prop_map(|((method, path), nodes, env, extra, user, dry_run)| {
            let mut body: serde_json::Map<String, Value> = extra.into_iter().collect();
            body.insert("nodes".into(), nodes.clone());
            body.insert("node".into(), nodes);
            if let Some(env) = env {
                body.insert("environment".into(), env);
            }
            if dry_run {
                body.insert("dry_run".into(), Value::Bool(true));
            }
            Case {
                method,
                path: path.to_string(),
                user: Some(user),
                accept: None,
                body: Some((
                    "application/json",
                    serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
                )),
            }
        })
}

/// Any method on a path starting (mostly) with a resource, a query string and a body.
fn random_request() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"][..]),
        prop_oneof![
            8 => prop::sample::select(RESOURCES).prop_map(String::from),
            1 => segment(),
        ],
        prop::collection::vec(segment(), 0..4),
        prop::option::of(query()),
        prop::sample::select(&[Some("root"), Some("bob"), None][..]),
        prop::sample::select(
            &[
                None,
                Some("application/json"),
                Some("application/x-yaml"),
                Some("text/plain"),
                Some("*/*"),
            ][..],
        ),
        body(),
    )
        .prop_map(|(method, first, rest, query, user, accept, body)| {
            let mut path = format!("/{first}");
            for seg in rest {
                path = format!("{path}/{seg}");
            }
            if let Some(q) = query {
                path = format!("{path}?{q}");
            }
            Case {
                method,
                path,
                user,
                accept,
                body,
            }
        })
}

/// The bytes of a case's request, keeping the connection open.
fn bytes(port: u16, c: &Case) -> Vec<u8> {
    let body = c.body.as_ref().map(|(t, b)| (*t, b.as_slice()));
    let raw = request(port, c.method, &c.path, c.user, body, false);
    match c.accept {
        // `request` asks for JSON: swap the header for the fuzzed one (or none).
        Some(accept) => replace(
            &raw,
            "Accept: application/json\r\n",
            &format!("Accept: {accept}\r\n"),
        ),
        None => replace(&raw, "Accept: application/json\r\n", ""),
    }
}

fn replace(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    match raw.windows(from.len()).position(|w| w == from.as_bytes()) {
        Some(at) => [&raw[..at], to.as_bytes(), &raw[at + from.len()..]].concat(),
        None => raw.to_vec(),
    }
}

/// Random requests against a seeded server (root has every right and `debian12`): each is answered on
/// its connection, never with 500. At f72496d the first path ending in `%` dropped the connection.
#[test]
fn fuzzed_requests_never_panic_the_router() {
    let dir = setup("fuzz-http");
    let conf = config_copy(&dir, false);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    let port = server.port;
    seed_catalog(&Http::new(port, "root"));
    let conn: RefCell<Option<Conn>> = RefCell::new(None);
    let count = Cell::new(0u64);
    // Answers by status and Kadeploy error number, to show how deep the cases reach.
    let seen: RefCell<BTreeMap<(u16, Option<u32>), u64>> = RefCell::new(BTreeMap::new());
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        count.set(count.get() + 1);
        let raw = bytes(port, &c);
        let mut answer = None;
        // A reused connection may have been closed after the previous answer: one retry on a fresh one.
        for fresh in [false, true] {
            let mut slot = conn.borrow_mut();
            if fresh || slot.is_none() {
                *slot = Some(Conn::open(port, Duration::from_secs(60)));
            }
            let Some(open) = slot.as_mut() else { continue };
            open.send(&raw);
            answer = open.read();
            if answer.is_some() {
                break;
            }
        }
        let Some(r) = answer else {
            return Err(TestCaseError::fail(format!(
                "{c:?}: the connection dropped without an answer"
            )));
        };
        if r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            *conn.borrow_mut() = None;
        }
        *seen.borrow_mut().entry((r.status, r.code())).or_default() += 1;
        prop_assert!(r.status != 500, "{c:?}: 500 {}", r.text());
        prop_assert!((100..600).contains(&r.status), "{c:?}: status {}", r.status);
        Ok(())
    });
    println!(
        "fuzz_http: {} requests in {:.1} s; answers (status, error number): {:?}",
        count.get(),
        started.elapsed().as_secs_f64(),
        seen.borrow()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let alive = Http::new(port, "root").get("/version");
    assert_eq!(alive.status, 200, "the server survived the fuzzing");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
