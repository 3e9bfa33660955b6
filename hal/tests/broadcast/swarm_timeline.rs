//! Where kaagent's swarm and the simulator's ring model part (ignored; a diagnosis run on the
//! testbed): each node's timeline (first and last verified chunk, written) and the bytes each host
//! and the server sent on its link, several runs, to set beside `kasim`'s ring model of the same
//! swarm (`simulator::bcast::ring_swarm`, its per-node end times and bytes moved). Another
//! strategy's timelines with `KABCAST_STRATEGY` (a `kacast` strategy name).

use crate::measure::env_or;
use crate::netns::Testbed;
use crate::testbed::{make_image, run};
use crate::topology::Topology;
use std::process::Command;

/// Bytes sent on `dev` so far (in namespace `ns`, or the test's own with `None`); 0 if unreadable.
fn tx_bytes(ns: Option<&str>, dev: &str) -> u64 {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    let out = c.args(["-j", "-s", "link", "show", "dev", dev]).output();
    let text = out.map_or_else(
        |_| String::new(),
        |o| String::from_utf8_lossy(&o.stdout).into_owned(),
    );
    tx_field(&text).unwrap_or(0)
}

/// The `"tx":{"bytes":N` of `ip -j -s link`'s output.
fn tx_field(json: &str) -> Option<u64> {
    let at = json.find("\"tx\":{\"bytes\":")? + "\"tx\":{\"bytes\":".len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Prints, for `KABCAST_REPEAT` swarm runs (default 3) to `KABCAST_NODES` receivers (default 16;
/// `KABCAST_MBIT`, default 200; `KABCAST_MIB`, default 64; `KABCAST_TOPOLOGY`), each node's
/// timeline in seconds and the MiB each host and the server sent (`KABCAST_LOG=hal::broadcast::swarm=trace`:
/// the seed's served chunks too).
#[test]
#[ignore = "diagnosis: kaagent's swarm node by node, against the ring model"]
fn swarm_timelines() {
    let mbit: u32 = env_or("KABCAST_MBIT", 200);
    let mib: u64 = env_or("KABCAST_MIB", 64);
    let repeat: usize = env_or("KABCAST_REPEAT", 3);
    let n: usize = env_or("KABCAST_NODES", 16);
    let name = std::env::var("KABCAST_STRATEGY").unwrap_or_else(|_| "swarm".into());
    let strategy = hal::broadcast::cast::parse_strategy(&name).expect("a strategy");
    crate::harness::trace();
    let tb = Testbed::build(n, mbit, &[], Topology::from_env(mbit));
    let (image, want) = make_image(&tb, mib);
    let agents = tb.start_agents();
    let sent = |tb: &Testbed| -> Vec<u64> {
        let mut v: Vec<u64> = (0..n)
            .map(|i| tx_bytes(Some(&tb.hosts[i]), &tb.host_ifs[i]))
            .collect();
        v.push(tx_bytes(None, &tb.server_if));
        v
    };
    let secs = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    for k in 0..repeat {
        let before = sent(&tb);
        let r = run(&tb, &agents, n, &image, &want, strategy);
        assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
        let after = sent(&tb);
        let mib_sent: Vec<f64> = after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.saturating_sub(*b) as f64 / (1u64 << 20) as f64)
            .collect();
        let t0 = r
            .timeline
            .iter()
            .zip(&r.written_at)
            .find_map(|((_, line), (_, at))| line.written?.checked_sub((*at)?))
            .map_or(0.0, |d| d.as_secs_f64());
        println!("run {k}: {:.3} s", crate::testbed::last_written(&r));
        println!("node,first_chunk_s,last_chunk_s,written_s,sent_mib");
        for (i, (_, line)) in r.timeline.iter().enumerate() {
            println!(
                "{i},{:.3},{:.3},{:.3},{:.1}",
                secs(line.first_byte) - t0,
                secs(line.last_byte) - t0,
                secs(line.written) - t0,
                mib_sent.get(i).copied().unwrap_or(f64::NAN)
            );
        }
        let total: f64 = mib_sent.iter().sum();
        println!(
            "server sent {:.1} MiB; all sent {total:.1} MiB ({:.2} images)",
            mib_sent.last().copied().unwrap_or(f64::NAN),
            total / mib as f64
        );
    }
}

#[test]
fn the_tx_counter_is_read_from_ip_json() {
    let json = r#"[{"ifname":"x","stats64":{"rx":{"bytes":5,"packets":1},"tx":{"bytes":123456,"packets":9}}}]"#;
    assert_eq!(tx_field(json), Some(123_456));
    assert_eq!(tx_field("[]"), None);
}
