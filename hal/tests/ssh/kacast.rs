//! `kacast --ssh-key`: the token handed to the hosts over SSH as the site backend does, then the image
//! cast and the timeline written; a host without SSH fails before any image is sent to it.

use crate::agents::start_agent;
use crate::harness::{Lab, s};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;

/// The kacast binary built by cargo for this test.
const KACAST: &str = env!("CARGO_BIN_EXE_kacast");

/// 127.0.0.2 (OpenSSH, an agent that only knows its token file's path) gets the token over SSH and
/// the image; 127.0.0.9 (no SSH, no agent) fails; the token file is gone afterwards.
pub async fn kacast_over_ssh(lab: &Lab) {
    let root = lab.path("kacast-root");
    std::fs::create_dir_all(&root).unwrap();
    let token_file = s(&lab.path("kacast.token"));
    let port = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _agent = start_agent(
        SocketAddr::from(([127, 0, 0, 2], port)),
        &s(&root),
        &token_file,
    );
    let data: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i * 13 + i / 509) as u8)
        .collect();
    let image = lab.path("kacast.raw");
    std::fs::write(&image, &data).unwrap();
    let json = lab.path("kacast.json");
    let mut cmd = Command::new(KACAST);
    cmd.arg("--image")
        .arg(&image)
        .arg("--hosts")
        .arg(format!("127.0.0.2:{port},127.0.0.9:{port}"))
        .arg("--ssh-key")
        .arg(&lab.key)
        .args(["--ssh-port", &lab.port.to_string()])
        .args(["--remote-token-file", &token_file])
        .args(["--device", "/disk.img", "--strategy", "chain"])
        .arg("--json")
        .arg(&json);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run kacast"))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        std::fs::read(root.join("disk.img")).unwrap() == data,
        "the node wrote other data"
    );
    assert!(
        !std::path::Path::new(&token_file).exists(),
        "the token file stays on the node after the cast"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("JSON timeline");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["ok"].as_bool(), Some(true), "{}", nodes[0]);
    let times: Vec<f64> = [
        "connected",
        "first_byte",
        "last_byte",
        "verified",
        "written",
    ]
    .iter()
    .map(|e| {
        nodes[0][e]
            .as_f64()
            .unwrap_or_else(|| panic!("{e}: {}", nodes[0]))
    })
    .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(nodes[1]["ok"].as_bool(), Some(false));
    assert!(nodes[1]["connected"].is_null(), "{}", nodes[1]);
}
