//! Agent memory stays bounded whatever the image size: an image streamed to /dev/null through a
//! 3-node chain on loopback, peak RSS (VmHWM) of every agent read from /proc (ignored: run by
//! `scripts/kaagent-rss.sh`, KABCAST_GIB sets the size, 4 by default).

use crate::harness::{
    KAAGENT, Scratch, TokenFile, backend, dd_image, free_port, spawn_agent, target,
};
use hal::Strategy;
use hal::broadcast::deployer::Options;
use std::process::Command;
use std::time::Instant;

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "measurement: run by scripts/kaagent-rss.sh"]
fn measure_agent_peak_rss() {
    let gib: u64 = std::env::var("KABCAST_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let scratch = Scratch::new("rss");
    // A sparse file: the content does not matter for memory, only the size.
    let image = scratch.0.join("image.raw");
    let f = std::fs::File::create(&image).expect("image");
    f.set_len(gib << 30).expect("size the image");
    let token = TokenFile::in_dir(&scratch.0);
    let agents: Vec<_> = (0..3)
        .map(|i| spawn_agent(Command::new(KAAGENT), free_port([127, 0, 0, 2 + i]), &token))
        .collect();
    let (b, nodes) = backend(&agents, Options::default());
    b.manifest(&image.display().to_string()).expect("manifest");
    let t = Instant::now();
    let r = b.run(
        &dd_image(&image, "none", gib << 30),
        &target("/dev/null".as_ref(), "/mnt".as_ref()),
        Strategy::Chain,
        &nodes,
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
    for (i, a) in agents.iter().enumerate() {
        println!(
            "agent {i}: peak RSS {} MiB ({gib} GiB image to /dev/null, 3-node chain, {secs:.1} s)",
            peak_rss_kib(a.child.id()) / 1024
        );
    }
    let window = Options::default();
    let bound_mib = u64::from(window.tuning.window) * u64::from(window.chunk_size) / (1 << 20) + 64;
    for a in &agents {
        assert!(
            peak_rss_kib(a.child.id()) / 1024 < bound_mib,
            "RSS beyond the window + 64 MiB"
        );
    }
}
