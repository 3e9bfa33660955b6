//! udpcast on the namespace testbed: `udp-sender` in the server's namespace, `udp-receiver` in each
//! host's, defaults but a known receiver count, every wait bounded and every process killed by its
//! group on the way out.

use crate::netns::{Killer, Testbed};
use crate::testbed::make_image;
use hal::testing::process::{require, require_root};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The UDP port base of the runs (udpcast uses it and the next port).
const PORT: &str = "9100";

/// How long a udpcast run may take before it counts as not finishing.
const RUN_LIMIT: Duration = Duration::from_secs(120);

impl Testbed {
    /// udpcast moving `image` to the first `n` hosts (outputs in `<host>/udpcast.img`); its time
    /// from the start of the transfer (the sender's "Starting transfer") to the sender's exit, once
    /// every receiver acknowledged the last slice. Left out: the rendezvous (udp-sender checks its
    /// receiver count only after 2 s without a new receiver) and the receivers' linger (they exit
    /// 0.5 s after the end). `None` if the sender or a receiver did not finish within
    /// [`RUN_LIMIT`] (their process groups are then killed).
    pub fn udpcast(&self, image: &Path, n: usize) -> Option<Duration> {
        require("udp-sender", "udpcast");
        require_root("udpcast on the testbed");
        let mut receivers: Vec<Killer> = (0..n)
            .map(|i| {
                let out = self.host_dir(i).join("udpcast.img");
                let mut c = self.command(i, "udp-receiver");
                c.args(["--nokbd", "--portbase", PORT, "--interface"])
                    .arg(&self.host_ifs[i])
                    .arg("--file")
                    .arg(&out)
                    .stderr(Stdio::null());
                spawn_quiet(c)
            })
            .collect();
        for i in 0..n {
            wait_udp_bound(&self.hosts[i], PORT);
        }
        let start = Instant::now();
        let mut sender = Command::new("udp-sender");
        sender
            .args([
                "--nokbd",
                "--portbase",
                PORT,
                "--interface",
                &self.server_if,
            ])
            .args(["--min-receivers", &n.to_string(), "--max-wait", "30"])
            .arg("--file")
            .arg(image);
        sender.stderr(Stdio::piped());
        let mut sender = spawn_quiet(sender);
        let started = sender.0.stderr.take().map(transfer_start);
        let deadline = start + RUN_LIMIT;
        let mut sender_end = None;
        for p in std::iter::once(&mut sender).chain(receivers.iter_mut()) {
            loop {
                match p.0.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    _ => return None,
                }
            }
            sender_end.get_or_insert_with(Instant::now);
        }
        let end = sender_end?;
        let started = started.and_then(|h| h.join().ok().flatten())?;
        Some(end.saturating_duration_since(started))
    }
}

/// Reads udp-sender's standard error until it ends (a thread); returns when the transfer started.
fn transfer_start(
    mut stderr: std::process::ChildStderr,
) -> std::thread::JoinHandle<Option<Instant>> {
    std::thread::spawn(move || {
        use std::io::Read;
        const MARK: &[u8] = b"Starting transfer";
        let (mut tail, mut buf, mut at) = (Vec::new(), [0u8; 4096], None);
        loop {
            let got = match stderr.read(&mut buf) {
                Ok(0) | Err(_) => return at,
                Ok(k) => k,
            };
            if at.is_none() {
                tail.extend_from_slice(&buf[..got]);
                if tail.windows(MARK.len()).any(|w| w == MARK) {
                    at = Some(Instant::now());
                }
                // Keep only what may hold the start of the mark.
                let keep = tail.len().saturating_sub(MARK.len());
                tail.drain(..keep);
            }
        }
    })
}

/// Starts `c` in its own process group (so that [`Killer`] ends it whole), output discarded unless
/// piped already.
fn spawn_quiet(mut c: Command) -> Killer {
    c.stdin(Stdio::null()).stdout(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    Killer(c.spawn().expect("start a udpcast process"))
}

/// Waits (at most 10 s) until a UDP socket is bound to `port` in namespace `ns`.
fn wait_udp_bound(ns: &str, port: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-Hlun"])
            .arg(format!("sport = :{port}"))
            .output();
        if out.map(|o| !o.stdout.is_empty()).unwrap_or(false) {
            return;
        }
        assert!(Instant::now() < deadline, "no udp-receiver bound in {ns}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// udpcast's receivers find the sender and every copy is whole. Before this test (commit `578c7cc`)
/// the testbed gave its interfaces no broadcast address: `udp-receiver` sent its hello to 0.0.0.0,
/// the sender never heard of any receiver and the run never finished.
#[test]
fn udpcast_receivers_find_the_sender_on_the_testbed() {
    let tb = Testbed::new(2, 200);
    let (image, want) = make_image(&tb, 4);
    let t = tb.udpcast(&image, 2).expect("udpcast finished");
    for i in 0..2 {
        let got = crate::harness::file_hash(&tb.host_dir(i).join("udpcast.img"));
        assert_eq!(got, want, "host {i}");
    }
    eprintln!(
        "udpcast, 4 MiB to 2 hosts at 200 Mbit/s: {:.3} s",
        t.as_secs_f64()
    );
}
