//! Attacks on `kaagent` (security issue 6), each performed over real sockets against agent
//! processes: jobs without or with a wrong token, targets escaping the root or naming a plain file,
//! oversized frame announcements, idle and trickling handshakes. Before the fix (commit f72496d)
//! every one of them succeeded.

use crate::harness::*;
use hal::broadcast::deployer::Options;
use hal::broadcast::handshake::Sealer;
use hal::broadcast::token::AgentToken;
use hal::broadcast::wire::{self, Hello, NodePlan, Reply};
use hal::image::{Manifest, frame};
use hal::{ErrorKind, ImageKind, Strategy};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHUNK: u32 = 64 << 10;

fn options() -> Options {
    let mut o = Options {
        chunk_size: CHUNK,
        ..Options::default()
    };
    o.tuning.upstream_timeout_ms = 10_000;
    o.report_timeout = Duration::from_secs(20);
    o
}

/// The job a client of f72496d sent: the plan as the first frame, in clear, then the manifest.
fn legacy_job(job: &str, kind: &str, device: &str, extraction_dir: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "job", "job": job, "node": "victim", "kind": kind, "compression": "none",
        "device": device, "extraction_dir": extraction_dir, "forwards": [],
        "fault_tolerant": false,
        "tuning": {"stall_timeout_ms": 3000, "connect_timeout_ms": 3000,
                   "upstream_timeout_ms": 5000, "window": 8, "socket_buffer": 0,
                   "corrupt_chunk": null, "pace": null}
    })
}

/// Reads frames until one is a [`Reply`] (an agent now first sends its nonce); None at the end.
fn first_reply(conn: &mut TcpStream) -> Option<Reply> {
    for _ in 0..3 {
        let frame = wire::read_raw(conn, wire::MAX_CONTROL_FRAME).ok()?;
        if let Ok(r) = serde_json::from_slice::<Reply>(&frame) {
            return Some(r);
        }
    }
    None
}

/// Sends `data` on a data connection of `job` as an upstream of f72496d did (no token).
fn legacy_stream(addr: SocketAddr, job: &str, data: &[u8]) {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let hello = serde_json::json!({"type": "data", "job": job, "from": "attacker"});
    let _ = wire::write_raw(&mut conn, &serde_json::to_vec(&hello).unwrap());
    if let Some(Reply::Data { .. }) = first_reply(&mut conn) {
        for (i, chunk) in data.chunks(CHUNK as usize).enumerate() {
            let _ = frame::write_chunk(&mut conn, i as u64, chunk);
        }
        let _ = frame::write_end(&mut conn, data.len().div_ceil(CHUNK as usize) as u64);
        // Wait until the agent has everything (it acknowledges), then let it go.
        let _ = frame::read_feedback(&mut conn);
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs the whole unauthenticated job of f72496d's protocol; whether the agent accepted it.
fn legacy_attack(addr: SocketAddr, kind: &str, device: &str, dir: &str, data: &[u8]) -> bool {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let manifest = Manifest::build(data, CHUNK).unwrap();
    let job = legacy_job("evil", kind, device, dir);
    let _ = wire::write_raw(&mut conn, &serde_json::to_vec(&job).unwrap());
    let _ = wire::write_raw(&mut conn, &manifest.encode());
    let accepted = matches!(first_reply(&mut conn), Some(Reply::Ready));
    if accepted {
        legacy_stream(addr, "evil", data);
        // The agent reports until it wrote.
        while wire::recv::<hal::broadcast::wire::Report>(&mut conn).is_ok() {}
    }
    accepted
}

/// A tar archive holding one file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    t.append_data(&mut h, name, data).unwrap();
    t.into_inner().unwrap()
}

/// A legitimate broadcast of a small dd image to `agents` still works; returns its outcomes.
fn legit_broadcast(scratch: &Path, agents: &[AgentProc], device: &str) -> hal::Outcomes {
    let data = random_bytes(300 << 10, 11);
    let image = scratch.join("legit.raw");
    std::fs::write(&image, &data).unwrap();
    let (b, nodes) = backend(agents, options());
    b.run(
        &dd_image(&image, "none", data.len() as u64),
        &target(device.as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &nodes,
    )
    .outcomes
}

/// Before: any peer reaching port 25301 had an agent write what it sent where it said.
#[test]
fn a_job_without_or_with_a_wrong_token_is_refused_and_writes_nothing() {
    let scratch = Scratch::new("sec-token");
    let agents = start_agents(1, &scratch.0);
    let root = scratch.0.join("node-0");
    let data = random_bytes(200 << 10, 9);

    // No token at all: the unauthenticated job of the old protocol.
    let accepted = legacy_attack(agents[0].addr, "dd", "/planted.img", "/mnt", &data);
    assert!(!accepted, "an unauthenticated job was accepted");
    assert!(
        !root.join("planted.img").exists(),
        "an unauthenticated job wrote"
    );

    // A wrong token: the agent refuses the job at its first frame.
    let wrong = AgentToken::generate().unwrap();
    let mut conn = TcpStream::connect(agents[0].addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sealer = Sealer::start(&mut conn, wrong).unwrap();
    sealer
        .send(&mut conn, &Hello::Job { job: "evil".into() })
        .unwrap();
    let plan: NodePlan =
        serde_json::from_value(legacy_job("evil", "dd", "/planted.img", "/mnt")).expect("a plan");
    let _ = sealer.send(&mut conn, &plan);
    let _ = sealer.send_raw(
        &mut conn,
        &Manifest::build(&data[..], CHUNK).unwrap().encode(),
    );
    assert_eq!(
        wire::recv::<Reply>(&mut conn).ok(),
        Some(Reply::Refused {
            reason: "authentication failed".into()
        })
    );
    legacy_stream(agents[0].addr, "evil", &data);
    assert!(!root.join("planted.img").exists(), "a wrong token wrote");

    // A data connection sealed with a wrong token is refused too (chain forwarding is checked).
    let mut conn = TcpStream::connect(agents[0].addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sealer = Sealer::start(&mut conn, AgentToken::generate().unwrap()).unwrap();
    let hello = Hello::Data {
        job: "evil".into(),
        from: "attacker".into(),
    };
    sealer.send(&mut conn, &hello).unwrap();
    assert!(matches!(
        wire::recv::<Reply>(&mut conn),
        Ok(Reply::Refused { .. })
    ));

    // The deployer's own backend without the agents' token fails cleanly.
    let (b, nodes) = backend(&agents, options());
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let stale = b.with_token(AgentToken::generate().unwrap());
    let r = stale.run(
        &dd_image(&image, "none", data.len() as u64),
        &target("/planted.img".as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &nodes,
    );
    let failure = &r.outcomes.failures()[0].1;
    assert!(
        failure.message.contains("authentication failed"),
        "{failure:?}"
    );
    assert!(!root.join("planted.img").exists());

    // The holder of the token still deploys.
    let ok = legit_broadcast(&scratch.0, &agents, "/disk.img");
    assert!(ok.failures().is_empty(), "{ok:?}");
    assert!(root.join("disk.img").exists());
}

/// Before: `--root` was joined, not enforced: `../escaped-dd` or a tar extracted into `../victim`
/// landed next to the root (sent by anyone, as f72496d's protocol allowed), and a link inside the
/// root led anywhere. Now the attack fails without the token, and with it too.
#[test]
fn dotdot_and_link_escapes_from_the_root_are_refused() {
    let scratch = Scratch::new("sec-escape");
    let agents = start_agents(1, &scratch.0);
    let root = scratch.0.join("node-0");
    let (b, nodes) = backend(&agents, options());
    let data = random_bytes(100 << 10, 12);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let archive = tar_of("owned", &data);
    let tar_image = scratch.0.join("image.tar");
    std::fs::write(&tar_image, &archive).unwrap();
    let dd = dd_image(&image, "none", data.len() as u64);
    let mut tar = dd_image(&tar_image, "none", archive.len() as u64);
    tar.kind = ImageKind::Tar;

    let refused = |spec: &hal::ImageSpec, device: &str, dir: &str| {
        let r = b.run(
            spec,
            &target(device.as_ref(), dir.as_ref()),
            Strategy::Chain,
            &nodes,
        );
        let f = r.outcomes.failures();
        assert_eq!(f.len(), 1, "{device} {dir}: accepted");
        assert_eq!(f[0].1.kind, ErrorKind::Transfer, "{:?}", f[0].1);
        f[0].1.message.clone()
    };
    // As anyone could send them before.
    assert!(!legacy_attack(
        agents[0].addr,
        "dd",
        "../escaped-dd",
        "/mnt",
        &data
    ));
    assert!(
        !scratch.0.join("escaped-dd").exists(),
        "dd escaped the root"
    );
    assert!(!legacy_attack(
        agents[0].addr,
        "tar",
        "/dev/sda3",
        "../victim",
        &archive
    ));
    assert!(!scratch.0.join("victim").exists(), "tar escaped the root");
    // With the token.
    let why = refused(&dd, "../escaped-dd", "/mnt");
    assert!(why.contains(".."), "{why}");
    assert!(
        !scratch.0.join("escaped-dd").exists(),
        "dd escaped the root"
    );
    let why = refused(&tar, "/dev/sda3", "../victim");
    assert!(why.contains(".."), "{why}");
    assert!(!scratch.0.join("victim").exists(), "tar escaped the root");
    refused(&dd, "/a/../../escaped-dd", "/mnt");
    assert!(!scratch.0.join("escaped-dd").exists());

    // Links inside the root that lead out of it.
    let outside = scratch.0.join("outside.txt");
    std::fs::write(&outside, b"precious").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("disk.img")).unwrap();
    std::os::unix::fs::symlink(&scratch.0, root.join("up")).unwrap();
    let why = refused(&dd, "/disk.img", "/mnt");
    assert!(why.contains("outside the agent's root"), "{why}");
    refused(&dd, "/up/outside.txt", "/mnt");
    refused(&tar, "/dev/sda3", "/up/victim");
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    assert!(!scratch.0.join("victim").exists());

    // Inside the root, both kinds still work.
    std::fs::remove_file(root.join("disk.img")).unwrap();
    let r = b.run(
        &tar,
        &target("/dev/sda3".as_ref(), "/mnt/dest".as_ref()),
        Strategy::Chain,
        &nodes,
    );
    assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
    assert_eq!(std::fs::read(root.join("mnt/dest/owned")).unwrap(), data);
    let ok = legit_broadcast(&scratch.0, &agents, "/disk.img");
    assert!(ok.failures().is_empty(), "{ok:?}");
}

/// Before: without `--root`, a job (from anyone) overwrote any file the agent could open.
#[test]
fn without_a_root_a_dd_target_must_be_a_block_device() {
    let scratch = Scratch::new("sec-noroot");
    let token = TokenFile::in_dir(&scratch.0);
    let agents = vec![spawn_agent(
        Command::new(KAAGENT),
        free_port([127, 0, 0, 2]),
        &token,
    )];
    let victim = scratch.0.join("victim.conf");
    std::fs::write(&victim, b"precious").unwrap();
    let victim = victim.display().to_string();
    let data = random_bytes(100 << 10, 14);
    assert!(!legacy_attack(agents[0].addr, "dd", &victim, "/mnt", &data));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "the victim was overwritten"
    );
    let r_victim = {
        let data = random_bytes(100 << 10, 13);
        let image = scratch.0.join("image.raw");
        std::fs::write(&image, &data).unwrap();
        let (b, nodes) = backend(&agents, options());
        b.run(
            &dd_image(&image, "none", data.len() as u64),
            &target(victim.as_ref(), "/mnt".as_ref()),
            Strategy::Chain,
            &nodes,
        )
    };
    let f = r_victim.outcomes.failures();
    assert_eq!(f.len(), 1, "a plain file was accepted as a dd target");
    assert!(
        f[0].1.message.contains("not a block device"),
        "{:?}",
        f[0].1
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // A new file is refused as well, and so is a relative path.
    let fresh = scratch.0.join("fresh.img").display().to_string();
    assert!(
        !legit_broadcast(&scratch.0, &agents, &fresh)
            .failures()
            .is_empty()
    );
    assert!(!Path::new(&fresh).exists());
    assert!(
        !legit_broadcast(&scratch.0, &agents, "disk.img")
            .failures()
            .is_empty()
    );
    // The null device (a discard target for measurements) is fine.
    let ok = legit_broadcast(&scratch.0, &agents, "/dev/null");
    assert!(ok.failures().is_empty(), "{ok:?}");
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether the peer closes `conn` within `wait` (what it sends before is read and dropped).
fn closed_within(conn: &TcpStream, wait: Duration) -> bool {
    let mut conn = conn;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// Before: ten connections announcing 40 MiB frames (the old bound) and sending them made the agent
/// hold 400 MB; now a control frame is refused from its header (at most 64 KiB).
#[test]
fn oversized_frame_announcements_are_refused_without_allocation() {
    let scratch = Scratch::new("sec-frames");
    let agents = start_agents(1, &scratch.0);
    let pid = agents[0].child.id();
    let before = rss_kib(pid, "VmHWM:");
    let body = vec![0x5au8; 1 << 20];
    let mut conns = Vec::new();
    for _ in 0..10 {
        let mut c = TcpStream::connect(agents[0].addr).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&(40u32 << 20).to_be_bytes()).unwrap();
        conns.push(c);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        assert!(
            closed_within(c, Duration::from_secs(5)),
            "connection {i} announcing a 40 MiB frame was kept open"
        );
    }
    // Sending the bodies anyway goes nowhere (the connections are closed).
    for c in &mut conns {
        for _ in 0..40 {
            if c.write_all(&body).is_err() {
                break;
            }
        }
    }
    drop(conns);
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid, "VmHWM:");
    eprintln!("agent peak RSS: {before} KiB before, {after} KiB after 10 × 40 MiB announcements");
    assert!(
        after < before + 16 * 1024,
        "agent peak RSS grew from {before} KiB to {after} KiB"
    );
    let ok = legit_broadcast(&scratch.0, &agents, "/disk.img");
    assert!(ok.failures().is_empty(), "{ok:?}");
}

/// Before: a connection that sent nothing held a thread for 30 s, one byte every few seconds held
/// it forever, and nothing bounded how many did. Now the handshake has a deadline (whatever the
/// pace) and at most 8 run at once per address.
#[test]
fn idle_and_trickling_handshakes_are_cut_and_capped_per_peer() {
    use hal::broadcast::node_agent::MAX_HANDSHAKES_PER_PEER;
    let scratch = Scratch::new("sec-slow");
    let token = TokenFile::in_dir(&scratch.0);
    std::fs::create_dir_all(scratch.0.join("node-0")).unwrap();
    let mut cmd = Command::new(KAAGENT);
    cmd.arg("--root")
        .arg(scratch.0.join("node-0"))
        .arg("--handshake-timeout")
        .arg("5");
    let agents = vec![spawn_agent(cmd, free_port([127, 0, 0, 2]), &token)];
    let addr = agents[0].addr;

    // A frame announced, then one byte every 300 ms: the deadline is not stretched.
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle.write_all(&1000u32.to_be_bytes()).unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        if trickle.write_all(&[0]).is_err() || closed_within(&trickle, Duration::from_millis(300)) {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(closed, "a trickling handshake was never cut");
    assert!(
        took >= Duration::from_secs(4),
        "cut after {took:?}, before its deadline"
    );

    // Idle connections from one address: those beyond the cap are closed at once, the others
    // held until their deadline.
    std::thread::sleep(Duration::from_millis(300)); // the trickle's slot is released
    let extra = 4;
    let mut idle: Vec<TcpStream> = (0..MAX_HANDSHAKES_PER_PEER + extra)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let early = idle
        .iter_mut()
        .filter(|c| closed_within(c, Duration::from_millis(100)))
        .count();
    assert_eq!(
        early, extra,
        "connections beyond the cap of {MAX_HANDSHAKES_PER_PEER}"
    );
    for (i, c) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(c, Duration::from_secs(15)),
            "idle connection {i} kept past its deadline"
        );
    }
    // The holder of the token still deploys.
    let ok = legit_broadcast(&scratch.0, &agents, "/disk.img");
    assert!(ok.failures().is_empty(), "{ok:?}");
}
