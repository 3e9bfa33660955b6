//! udpcast on the namespace testbed: `udp-sender` in the server's namespace, `udp-receiver` in each
//! host's, defaults but a known receiver count and a receive buffer that holds the sender's window,
//! every wait bounded and every process killed by its group on the way out.
//!
//! The receive buffer: on the testbed's veth links `udp-sender` runs in full-duplex mode (slices of
//! 112 blocks, at most two of them unacknowledged, so a receiver's socket may have to hold 224
//! datagrams). The kernel's default buffer (`net.core.rmem_default`, 212,992 bytes) holds 92 of
//! them (2,315 bytes each with the kernel's overhead): whenever a receiver was off the processor for
//! more than 92 datagrams' time (1.1 ms at 1 Gbit/s), the rest of the window was dropped at its
//! socket (`UdpRcvbufErrors`; no tbf dropped anything) and sent again to every receiver, 9–35% of
//! the blocks at 1 Gbit/s. udpcast's documentation advises raising the buffer when receivers drop;
//! kaagent's multicast receivers take 32 MiB.

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

/// The receive buffer each `udp-receiver` asks for (`--rcvbuf`), bytes, unless
/// `KABCAST_UDPCAST_RCVBUF` says otherwise (0: udpcast's default, no `--rcvbuf`).
const RECEIVE_BUFFER: u64 = 4 << 20;

/// What one udpcast run measured.
#[derive(Clone, Copy, Debug)]
pub struct UdpcastRun {
    /// From the start of the transfer to the sender's exit.
    pub time: Duration,
    /// Blocks the sender sent again (its own statistics' last `re-xmits=`; `None` if it printed none).
    pub retransmitted: Option<u64>,
}

/// The `--rcvbuf` the receivers get: `KABCAST_UDPCAST_RCVBUF` or [`RECEIVE_BUFFER`]; 0: none.
fn requested_receive_buffer() -> u64 {
    std::env::var("KABCAST_UDPCAST_RCVBUF")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(RECEIVE_BUFFER)
}

/// A `net.core` setting, bytes (`None` if unreadable).
fn net_core(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The socket buffer each `udp-receiver` of [`Testbed::udpcast`] ends up with, bytes: the kernel
/// caps `SO_RCVBUF` at `net.core.rmem_max` and doubles it; without `--rcvbuf`, `rmem_default`.
pub fn udpcast_receive_buffer() -> u64 {
    match requested_receive_buffer() {
        0 => net_core("rmem_default").unwrap_or(212_992),
        asked => 2 * asked.min(net_core("rmem_max").unwrap_or(212_992)),
    }
}

impl Testbed {
    /// udpcast moving `image` to the first `n` hosts (outputs in `<host>/udpcast.img`); its time
    /// from the start of the transfer (the sender's "Starting transfer") to the sender's exit, once
    /// every receiver acknowledged the last slice. Left out: the rendezvous (udp-sender checks its
    /// receiver count each time its wait for a message times out, every 0.1 s here) and the receivers' linger (they exit
    /// 0.5 s after the end). `None` if the sender or a receiver did not finish within
    /// [`RUN_LIMIT`] (their process groups are then killed).
    pub fn udpcast(&self, image: &Path, n: usize) -> Option<Duration> {
        self.udpcast_run(image, n).map(|r| r.time)
    }

    /// [`Testbed::udpcast`], with the sender's retransmissions.
    pub fn udpcast_run(&self, image: &Path, n: usize) -> Option<UdpcastRun> {
        require("udp-sender", "udpcast");
        require_root("udpcast on the testbed");
        let rcvbuf = requested_receive_buffer();
        let mut receivers: Vec<Killer> = (0..n)
            .map(|i| {
                let out = self.host_dir(i).join("udpcast.img");
                let mut c = self.command(i, "udp-receiver");
                c.args(["--nokbd", "--portbase", PORT, "--interface"])
                    .arg(&self.host_ifs[i])
                    .arg("--file")
                    .arg(&out)
                    .stderr(Stdio::null());
                if rcvbuf > 0 {
                    c.arg("--rcvbuf").arg(rcvbuf.to_string());
                }
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
            // The rendezvous checks its receiver count when its wait for a message times out: 2 s
            // by default, 0.1 s with hellos repeated every 100 ms (hellos are repeated during the
            // transfer only in streaming mode, which these runs do not use). Not in the measured
            // time either way; it shortens each run's wall time by about 1.9 s.
            .args(["--rexmit-hello-interval", "100"])
            .arg("--file")
            .arg(image);
        sender.stderr(Stdio::piped());
        let mut sender = spawn_quiet(sender);
        let progress = sender.0.stderr.take().map(read_progress);
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
        let (started, retransmitted) = progress.and_then(|h| h.join().ok())?;
        eprintln!("udpcast to {n} receivers: {retransmitted:?} blocks sent again");
        Some(UdpcastRun {
            time: end.saturating_duration_since(started?),
            retransmitted,
        })
    }
}

/// Reads udp-sender's standard error until it ends (a thread); returns when the transfer started
/// and the last retransmission count its statistics showed (`re-xmits=0001234`).
fn read_progress(
    mut stderr: std::process::ChildStderr,
) -> std::thread::JoinHandle<(Option<Instant>, Option<u64>)> {
    std::thread::spawn(move || {
        use std::io::Read;
        const MARK: &[u8] = b"Starting transfer";
        // The statistics line ends in `\r`; one is under 100 bytes: a bounded tail holds it.
        const TAIL: usize = 512;
        let (mut tail, mut buf) = (Vec::new(), [0u8; 4096]);
        let (mut at, mut retransmitted) = (None, None);
        loop {
            let got = match stderr.read(&mut buf) {
                Ok(0) | Err(_) => return (at, retransmitted),
                Ok(k) => k,
            };
            tail.extend_from_slice(&buf[..got]);
            if at.is_none() && tail.windows(MARK.len()).any(|w| w == MARK) {
                at = Some(Instant::now());
            }
            if let Some(count) = last_retransmissions(&tail) {
                retransmitted = Some(count);
            }
            let keep = tail.len().saturating_sub(TAIL);
            tail.drain(..keep);
        }
    })
}

/// The count after the last complete `re-xmits=` in `text` (digits followed by something else).
fn last_retransmissions(text: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"re-xmits=";
    let mut found = None;
    let mut from = 0;
    while let Some(p) = text[from..].windows(KEY.len()).position(|w| w == KEY) {
        let digits_at = from + p + KEY.len();
        let rest = &text[digits_at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // Complete only if something follows the digits (the read may end inside the number).
        if len > 0 && len < rest.len() && len <= 19 {
            found = std::str::from_utf8(&rest[..len]).ok()?.parse().ok();
        }
        from = digits_at;
    }
    found
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

/// Datagrams udp-sender may have unacknowledged on the testbed: full-duplex mode (veth reports full
/// duplex), two slices of 112 blocks, and their acknowledgement requests.
const WINDOW_DATAGRAMS: u64 = 2 * 112 + 2;

/// Bytes the kernel charges a receiving socket for one of udpcast's datagrams (1,472 bytes of UDP
/// payload): 92 fit the 212,992-byte default buffer (measured).
const DATAGRAM_TRUESIZE: u64 = 2_315;

/// With a receive buffer that holds the sender's whole window, nothing is dropped at the receivers'
/// sockets and nothing is sent again at 1 Gbit/s. Before (the kernel's default buffer, 92 of the
/// window's 224 datagrams), a receiver off the processor for over 1.1 ms lost the rest of the window:
/// 2 receivers at 1 Gbit/s had 9–35% of the blocks sent again (2026-12-05, 5 runs).
#[test]
fn udpcast_receivers_hold_the_senders_window_and_nothing_is_sent_again() {
    let buffer = udpcast_receive_buffer();
    assert!(
        buffer >= WINDOW_DATAGRAMS * DATAGRAM_TRUESIZE,
        "the receivers' buffer ({buffer} bytes) cannot hold udpcast's window: raise net.core.rmem_max"
    );
    let tb = Testbed::new(2, 1000);
    let (image, want) = make_image(&tb, 64);
    let r = tb.udpcast_run(&image, 2).expect("udpcast finished");
    for i in 0..2 {
        let got = crate::harness::file_hash(&tb.host_dir(i).join("udpcast.img"));
        assert_eq!(got, want, "host {i}");
    }
    assert_eq!(r.retransmitted, Some(0), "{r:?}");
    eprintln!(
        "udpcast, 64 MiB to 2 hosts at 1 Gbit/s, {buffer}-byte receive buffers: {:.3} s",
        r.time.as_secs_f64()
    );
}

#[test]
fn the_senders_last_retransmission_count_is_read_from_its_statistics() {
    let text = b"bytes= 46 475 520  re-xmits=0006673 ( 20.9%) slice=0112 -   0\rbytes= 79 416 064  re-xmits=0009878 ( 18.1%)";
    assert_eq!(last_retransmissions(text), Some(9878));
    // A count cut by the end of a read is not taken.
    assert_eq!(
        last_retransmissions(b"re-xmits=0000012 (x)\rre-xmits=00001"),
        Some(12)
    );
    assert_eq!(last_retransmissions(b"no statistics"), None);
}
