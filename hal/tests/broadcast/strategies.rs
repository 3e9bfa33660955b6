//! Every strategy delivers verified images on loopback: dd and tar, all compressions, corruption
//! re-fetched, a killed receiver routed around by the fault-tolerant chain.

use crate::harness::*;
use hal::broadcast::deployer::Options;
use hal::{ErrorKind, ImageKind, Strategy};
use std::io::Write;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn options() -> Options {
    let mut o = Options {
        chunk_size: 256 << 10,
        ..Options::default()
    };
    // Generous: a loaded CI machine must not look like a stalled node.
    o.tuning.stall_timeout_ms = 3000;
    o.tuning.upstream_timeout_ms = 10_000;
    o.report_timeout = Duration::from_secs(20);
    o
}

fn check_all_dd(root: &std::path::Path, n: usize, want: &str) {
    for i in 0..n {
        let got = file_hash(&root.join(format!("node-{i}/disk.img")));
        assert_eq!(got, want, "node {i} wrote other data");
    }
}

#[test]
fn every_strategy_delivers_verified_dd_images() {
    let scratch = Scratch::new("strategies");
    let data = random_bytes(8 * MIB + 12345, 1);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let want = blake3::hash(&data).to_hex().to_string();
    let agents = start_agents(5, &scratch.0);
    let (b, nodes) = backend(&agents, options());
    for strategy in [
        Strategy::Chain,
        Strategy::Tree { arity: 2 },
        Strategy::FaultTolerantChain,
        Strategy::Unicast,
    ] {
        for i in 0..5 {
            let _ = std::fs::remove_file(scratch.0.join(format!("node-{i}/disk.img")));
        }
        let t = Instant::now();
        let report = b.run(
            &dd_image(&image, "none", data.len() as u64),
            &target("/disk.img".as_ref(), "/mnt".as_ref()),
            strategy,
            &nodes,
        );
        assert!(
            report.outcomes.failures().is_empty(),
            "{strategy}: {:?}",
            report.outcomes
        );
        check_all_dd(&scratch.0, 5, &want);
        eprintln!(
            "{strategy}: 5 nodes, {} MiB in {:?}",
            data.len() / MIB,
            t.elapsed()
        );
    }
}

#[test]
fn compressed_tar_and_dd_images_in_every_format() {
    let scratch = Scratch::new("formats");
    let mut tar = tar::Builder::new(Vec::new());
    let payload = random_bytes(3 * MIB, 2);
    let mut h = tar::Header::new_gnu();
    h.set_size(payload.len() as u64);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, "boot/vmlinuz", &payload[..])
        .unwrap();
    let archive = tar.into_inner().unwrap();
    let agents = start_agents(3, &scratch.0);
    let (b, nodes) = backend(&agents, options());
    for comp in ["gzip", "bzip2", "xz", "zstd"] {
        let packed = match comp {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&archive).unwrap();
                e.finish().unwrap()
            }
            "bzip2" => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(&archive).unwrap();
                e.finish().unwrap()
            }
            "xz" => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(&archive).unwrap();
                e.finish().unwrap()
            }
            _ => zstd::stream::encode_all(&archive[..], 1).unwrap(),
        };
        let path = scratch.0.join(format!("image.{comp}"));
        std::fs::write(&path, &packed).unwrap();
        for kind in [ImageKind::Tar, ImageKind::Dd] {
            let mut spec = dd_image(&path, comp, packed.len() as u64);
            spec.kind = kind;
            let report = b.run(
                &spec,
                &target("/dev-sda3".as_ref(), "/mnt/dest".as_ref()),
                Strategy::Chain,
                &nodes,
            );
            assert!(
                report.outcomes.failures().is_empty(),
                "{comp} {kind:?}: {:?}",
                report.outcomes
            );
            for i in 0..3 {
                let node = scratch.0.join(format!("node-{i}"));
                let got = match kind {
                    ImageKind::Tar => std::fs::read(node.join("mnt/dest/boot/vmlinuz")).unwrap(),
                    _ => std::fs::read(node.join("dev-sda3")).unwrap(),
                };
                let want: &[u8] = if kind == ImageKind::Tar {
                    &payload
                } else {
                    &archive
                };
                assert!(got == want, "{comp} {kind:?} node {i}");
            }
        }
    }
}

#[test]
fn a_corrupted_chunk_is_detected_refetched_and_written_correctly() {
    let scratch = Scratch::new("corrupt");
    let data = random_bytes(4 * MIB, 3);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let agents = start_agents(3, &scratch.0);
    let mut o = options();
    // Every sender (the server and each node) corrupts the first transmission of chunk 5.
    o.tuning.corrupt_chunk = Some(5);
    let (b, nodes) = backend(&agents, o);
    let report = b.run(
        &dd_image(&image, "none", data.len() as u64),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &nodes,
    );
    assert!(
        report.outcomes.failures().is_empty(),
        "{:?}",
        report.outcomes
    );
    // Each of the 3 links carried chunk 5 corrupted once: 3 detections, 3 re-fetches.
    assert_eq!(report.refetched, 3);
    check_all_dd(&scratch.0, 3, blake3::hash(&data).to_hex().as_ref());
}

#[test]
fn a_bad_image_or_target_fails_only_its_nodes() {
    let scratch = Scratch::new("bad");
    let data = random_bytes(MIB, 4);
    let image = scratch.0.join("image.gz");
    std::fs::write(&image, &data).unwrap(); // not gzip: every node fails to decompress
    let agents = start_agents(2, &scratch.0);
    let (b, nodes) = backend(&agents, options());
    let report = b.run(
        &dd_image(&image, "gzip", data.len() as u64),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &nodes,
    );
    for (n, o) in report.outcomes.iter() {
        assert_eq!(o.as_ref().unwrap_err().kind, ErrorKind::Integrity, "{n}");
    }
    // A node without an agent address is a configuration error, the others go on.
    let mut with_ghost = nodes.clone();
    with_ghost.push(hal::NodeId(99));
    let report = b.run(
        &dd_image(&image, "none", data.len() as u64),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &with_ghost,
    );
    assert_eq!(report.outcomes.ok_nodes(), nodes);
    assert_eq!(report.outcomes.failures()[0].1.kind, ErrorKind::Config);
}

/// Kills agent `victim` once it has written half the image; returns the report.
fn kill_halfway(
    strategy: Strategy,
    n: usize,
    victim: usize,
) -> (hal::broadcast::deployer::BroadcastReport, Scratch, String) {
    let scratch = Scratch::new(&format!("kill-{}", strategy.name()));
    let data = random_bytes(16 * MIB, 5);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let mut agents = start_agents(n, &scratch.0);
    let mut o = options();
    o.tuning.pace = Some(8 * MIB as u64); // about 2 s: time to kill in the middle
    let (b, nodes) = backend(&agents, o);
    let spec = dd_image(&image, "none", data.len() as u64);
    let report = std::thread::scope(|s| {
        let h = s.spawn(|| {
            b.run(
                &spec,
                &target("/disk.img".as_ref(), "/mnt".as_ref()),
                strategy,
                &nodes,
            )
        });
        let out = scratch.0.join(format!("node-{victim}/disk.img"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < data.len() as u64 / 2 {
            assert!(Instant::now() < deadline, "victim never got halfway");
            std::thread::sleep(Duration::from_millis(10));
        }
        agents[victim].kill();
        h.join().unwrap()
    });
    (report, scratch, blake3::hash(&data).to_hex().to_string())
}

#[test]
fn fault_tolerant_chain_routes_around_a_killed_receiver() {
    let (report, scratch, want) = kill_halfway(Strategy::FaultTolerantChain, 5, 2);
    for (n, o) in report.outcomes.iter() {
        if n.0 == 2 {
            assert_eq!(o.as_ref().unwrap_err().kind, ErrorKind::Unreachable);
        } else {
            assert!(o.is_ok(), "{n}: {o:?}");
            assert_eq!(
                file_hash(&scratch.0.join(format!("node-{}/disk.img", n.0))),
                want
            );
        }
    }
    assert!(
        !report.lost.is_empty(),
        "the predecessor reports its lost successor"
    );
}

#[test]
fn plain_chain_cuts_off_the_successors_of_a_killed_receiver() {
    let (report, _scratch, _) = kill_halfway(Strategy::Chain, 4, 1);
    let ok = report.outcomes.ok_nodes();
    assert_eq!(ok, vec![hal::NodeId(0)], "{:?}", report.outcomes);
}

/// A fault-tolerant chain of `mib` MiB to 4 nodes, paced at 8 MiB/s with a 1.5 s stall timeout, whose
/// node `victim` is stopped (SIGSTOP: its connections stay open but nothing moves, as when its power is
/// cut) once it holds `1 / part` of the image. Checks that every other node wrote the image; returns the
/// report and how long the broadcast went on after the stop.
fn stop_a_node_mid_transfer(
    name: &str,
    mib: usize,
    mut o: Options,
    victim: usize,
    part: u64,
) -> (hal::broadcast::deployer::BroadcastReport, Duration) {
    let scratch = Scratch::new(name);
    let data = random_bytes(mib * MIB, 6);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let agents = start_agents(4, &scratch.0);
    o.tuning.pace = Some(8 * MIB as u64);
    o.tuning.stall_timeout_ms = 1500;
    let (b, nodes) = backend(&agents, o);
    let spec = dd_image(&image, "none", data.len() as u64);
    let (report, stopped_for) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            b.run(
                &spec,
                &target("/disk.img".as_ref(), "/mnt".as_ref()),
                Strategy::FaultTolerantChain,
                &nodes,
            )
        });
        let out = scratch.0.join(format!("node-{victim}/disk.img"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < data.len() as u64 / part {
            assert!(Instant::now() < deadline, "the victim never got 1/{part}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = agents[victim].child.id().to_string();
        let signal = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(signal("-STOP"));
        let stopped = Instant::now();
        let report = h.join().unwrap();
        let took = stopped.elapsed();
        // Let the agent go on so that its process is reaped with the others.
        signal("-CONT");
        (report, took)
    });
    let want = blake3::hash(&data).to_hex().to_string();
    for (n, o) in report.outcomes.iter() {
        if n.index() != victim {
            assert!(o.is_ok(), "{n}: {o:?}");
            assert_eq!(
                file_hash(&scratch.0.join(format!("node-{}/disk.img", n.0))),
                want
            );
        }
    }
    (report, stopped_for)
}

#[test]
fn fault_tolerant_chain_routes_around_a_stalled_receiver() {
    let mut o = options();
    o.report_timeout = Duration::from_secs(4);
    let victim = 1;
    let (report, _) = stop_a_node_mid_transfer("stall", 16, o, victim, 2);
    let failures = report.outcomes.failures();
    let e = failures.iter().find(|(n, _)| n.index() == victim);
    assert_eq!(
        e.map(|(_, e)| e.kind),
        Some(ErrorKind::Timeout),
        "{failures:?}"
    );
    assert!(
        report
            .lost
            .iter()
            .any(|(_, _, why)| why.contains("stall") || why.contains("send")),
        "{:?}",
        report.lost
    );
}

/// A node that stops mid-job (power cut: its connections stay open, nothing moves) is timed out by
/// its stopped heartbeat, not after the report timeout: the others' broadcast does not wait for it.
#[test]
fn a_node_stopped_mid_job_is_timed_out_by_its_heartbeat() {
    let mut o = options();
    o.report_timeout = Duration::from_secs(120);
    o.heartbeat_timeout = Duration::from_secs(2);
    // 32 MiB at 8 MiB/s: a quarter takes a second, the agents' heartbeats come every half second.
    let victim = 2;
    let (report, stopped_for) = stop_a_node_mid_transfer("heartbeat", 32, o, victim, 4);
    eprintln!("the broadcast ended {stopped_for:?} after the victim stopped");
    // Far from the 120 s report timeout: the 2 s heartbeat timeout, with the others' transfer.
    assert!(stopped_for < Duration::from_secs(60), "{stopped_for:?}");
    let failures = report.outcomes.failures();
    let e = failures
        .iter()
        .find(|(n, _)| n.index() == victim)
        .map(|(_, e)| e);
    assert_eq!(e.map(|e| e.kind), Some(ErrorKind::Timeout), "{failures:?}");
    assert!(
        e.is_some_and(|e| e.message.contains("no heartbeat for 2.0 s")),
        "{failures:?}"
    );
}

#[test]
fn the_hal_broadcast_trait_drives_the_agents() {
    use hal::Broadcast;
    let scratch = Scratch::new("trait");
    let data = random_bytes(2 * MIB, 8);
    let image = scratch.0.join("image.raw");
    std::fs::write(&image, &data).unwrap();
    let agents = start_agents(2, &scratch.0);
    let (b, nodes) = backend(&agents, options());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = dd_image(&image, "none", data.len() as u64);
    let outcomes = rt.block_on(b.broadcast(
        &spec,
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        Strategy::FaultTolerantChain,
        &nodes,
    ));
    assert_eq!(outcomes.ok_nodes(), nodes);
    check_all_dd(&scratch.0, 2, blake3::hash(&data).to_hex().as_ref());
}
