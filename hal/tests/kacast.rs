//! `kacast` as a process against real `kaagent` processes on loopback: chain and swarm casts verified on
//! every receiver, the JSON and CSV timelines parsed and checked (five events per node, in order), and
//! an agent holding another token refused.

#[allow(dead_code)]
#[path = "broadcast/harness.rs"]
mod harness;

use harness::*;
use std::path::Path;
use std::process::{Command, Output};

/// The kacast binary built by cargo for this test.
const KACAST: &str = env!("CARGO_BIN_EXE_kacast");

/// The five timeline events, in the order they must happen.
const EVENTS: [&str; 5] = [
    "connected",
    "first_byte",
    "last_byte",
    "verified",
    "written",
];

/// Runs kacast over `agents` with `strategy`, writing the timeline under `dir`.
fn kacast(agents: &[AgentProc], token_file: &Path, image: &Path, strategy: &str) -> Output {
    let dir = image.parent().expect("image dir");
    let hosts: Vec<String> = agents.iter().map(|a| a.addr.to_string()).collect();
    Command::new(KACAST)
        .arg("--image")
        .arg(image)
        .arg("--hosts")
        .arg(hosts.join(","))
        .arg("--strategy")
        .arg(strategy)
        .arg("--chunk-size")
        .arg((128 << 10).to_string())
        .arg("--token-file")
        .arg(token_file)
        .arg("--device")
        .arg("/disk.img")
        .arg("--report-timeout")
        .arg("20")
        .arg("--json")
        .arg(dir.join(format!("{strategy}.json")))
        .arg("--csv")
        .arg(dir.join(format!("{strategy}.csv")))
        .output()
        .expect("run kacast")
}

/// Splits one CSV line into fields (double-quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// The JSON timeline's node lines, checked: `want_ok[i]` says whether node `i` must have written
/// the image with all five events in order.
fn check_json(path: &Path, want_ok: &[bool]) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("json timeline");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), want_ok.len(), "{text}");
    for (line, ok) in nodes.iter().zip(want_ok) {
        assert_eq!(line["ok"].as_bool(), Some(*ok), "{line}");
        if *ok {
            let times: Vec<f64> = EVENTS
                .iter()
                .map(|e| {
                    line[e]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{e} missing: {line}"))
                })
                .collect();
            assert!(times[0] >= 0.0, "{line}");
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "not in order: {line}"
            );
        } else {
            assert!(line["written"].is_null(), "{line}");
            assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    v
}

/// The CSV timeline, checked against the JSON one: same nodes, same status, the same five times.
fn check_csv(path: &Path, json: &serde_json::Value) {
    let text = std::fs::read_to_string(path).expect("csv timeline");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("node,addr,ok,connected,first_byte,last_byte,verified,written,error")
    );
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    let nodes = json["nodes"].as_array().expect("nodes");
    assert_eq!(rows.len(), nodes.len(), "{text}");
    for (row, line) in rows.iter().zip(nodes) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(Some(row[0].as_str()), line["node"].as_str());
        assert_eq!(row[2], line["ok"].to_string());
        for (i, e) in EVENTS.iter().enumerate() {
            match line[e].as_f64() {
                Some(t) => {
                    let csv: f64 = row[3 + i].parse().expect("seconds");
                    assert!((csv - t).abs() < 1e-5, "{e}: {csv} vs {t}");
                }
                None => assert_eq!(row[3 + i], "", "{e}"),
            }
        }
    }
}

fn cast_and_check(strategy: &str) {
    let scratch = Scratch::new(&format!("kacast-{strategy}"));
    let data = random_bytes((3 << 20) + 4321, 7);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let want = blake3::hash(&data).to_hex().to_string();
    let agents = start_agents(4, &scratch.0);
    let token = TokenFile::in_dir(&scratch.0);
    let out = kacast(&agents, &token.path, &image, strategy);
    assert!(
        out.status.success(),
        "kacast {strategy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..agents.len() {
        let got = file_hash(&scratch.0.join(format!("node-{i}/disk.img")));
        assert_eq!(got, want, "{strategy}: node {i} wrote other data");
    }
    let json = check_json(&scratch.0.join(format!("{strategy}.json")), &[true; 4]);
    assert_eq!(json["image_bytes"].as_u64(), Some(data.len() as u64));
    assert_eq!(json["chunk_size"].as_u64(), Some(128 << 10));
    check_csv(&scratch.0.join(format!("{strategy}.csv")), &json);
}

/// A chain cast writes the image on every node and a full, ordered timeline for each.
#[test]
fn kacast_chain_writes_every_node_and_its_timeline() {
    cast_and_check("chain");
}

/// A swarm cast writes the image on every node and a full, ordered timeline for each.
#[test]
fn kacast_swarm_writes_every_node_and_its_timeline() {
    cast_and_check("swarm");
}

/// An agent holding another token is refused: kacast fails that node (exit status 1), writes
/// nothing there, and still serves the others.
#[test]
fn kacast_refuses_an_agent_with_another_token() {
    let scratch = Scratch::new("kacast-hostile");
    let data = random_bytes((1 << 20) + 99, 3);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).expect("image");
    let mut agents = start_agents(2, &scratch.0);
    let token = TokenFile::in_dir(&scratch.0);
    // A third agent with its own token: kacast's token does not open it.
    let other_dir = scratch.0.join("other");
    std::fs::create_dir_all(other_dir.join("node-2")).expect("dir");
    let other = TokenFile::in_dir(&other_dir);
    assert_ne!(other.token.secret(), token.token.secret());
    let mut cmd = Command::new(KAAGENT);
    cmd.arg("--root").arg(other_dir.join("node-2"));
    agents.push(spawn_agent(cmd, free_port([127, 0, 0, 4]), &other));
    let out = kacast(&agents, &token.path, &image, "chain");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !other_dir.join("node-2/disk.img").exists(),
        "the hostile agent got the image"
    );
    let want = blake3::hash(&data).to_hex().to_string();
    for i in 0..2 {
        assert_eq!(
            file_hash(&scratch.0.join(format!("node-{i}/disk.img"))),
            want
        );
    }
    let json = check_json(&scratch.0.join("chain.json"), &[true, true, false]);
    check_csv(&scratch.0.join("chain.csv"), &json);
}
