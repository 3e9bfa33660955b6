//! Forward error correction of the multicast strategy: on a lossy link (an in-process relay that
//! drops each datagram toward each receiver at random, and an nftables rule on the namespace
//! testbed), the
//! repairs sent with each block rebuild most losses without a request; a block that lost more than
//! `m` still completes through requests; forged, oversized and out-of-range repairs are dropped.

use crate::harness::{Scratch, file_hash, random_bytes};
use crate::netns::Testbed;
use crate::testbed::{last_written, make_image, options, run_with};
use hal::Strategy;
use hal::broadcast::mcast_fec::Fec;
use hal::broadcast::mcast_recv::McastReceiver;
use hal::broadcast::mcast_send::{McastOptions, McastResult, McastSender};
use hal::broadcast::mcast_wire::{self, MAX_DATAGRAM, PIECE_LEN};
use hal::broadcast::store::{ChunkSource, ChunkStore, FileSource};
use hal::broadcast::token::{AgentToken, DatagramKey};
use hal::broadcast::wire::{MulticastPlan, Tuning};
use hal::image::Manifest;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const JOB: &str = "job-fec";

/// What a loopback run gives.
struct Run {
    sent: McastResult,
    elapsed: Duration,
    /// Chunks found corrupted by the receivers (and asked for again).
    refetched: u64,
}

/// What an attacker of a loopback run knows: the receivers' addresses and the job.
struct Target<'a> {
    receivers: &'a [SocketAddr],
    manifest: &'a Manifest,
    token: &'a AgentToken,
    stop: &'a AtomicBool,
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// A small deterministic generator (xorshift64*), so that losses are random but repeatable.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The lossy link: forwards what the sender sends to the group to each receiver, dropping each
/// datagram toward each receiver with probability `loss`, until `stop`.
fn relay(socket: &UdpSocket, receivers: &[SocketAddr], loss: f64, stop: &AtomicBool) {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = [0u8; MAX_DATAGRAM + 1];
    while !stop.load(Ordering::SeqCst) {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        for r in receivers {
            if rng.unit() >= loss {
                let _ = socket.send_to(&buf[..n], r);
            }
        }
    }
}

/// Sends `data` to `n` receivers over loopback through the lossy relay, with forward error
/// correction `fec`, while `attack` (if any) runs; checks every receiver's image.
fn lossy_loopback(
    data: &[u8],
    fec: Option<Fec>,
    loss: f64,
    n: usize,
    attack: Option<&(dyn Fn(&Target<'_>) + Sync)>,
) -> Run {
    let scratch = Scratch::new("mcast-fec");
    let path = scratch.0.join("image.raw");
    std::fs::write(&path, data).expect("image");
    let manifest = Arc::new(Manifest::build(data, 256 << 10).expect("manifest"));
    let total = manifest.chunk_count();
    let bind = || UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (sender_socket, relay_socket) = (bind(), bind());
    let receiver_sockets: Vec<UdpSocket> = (0..n).map(|_| bind()).collect();
    let receiver_addrs: Vec<SocketAddr> = receiver_sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let group = v4(relay_socket.local_addr().expect("addr"));
    let saddr = sender_socket.local_addr().expect("addr");
    let token = AgentToken::generate().expect("token");
    let tuning = Tuning {
        stall_timeout_ms: 20_000,
        connect_timeout_ms: 3000,
        upstream_timeout_ms: 20_000,
        window: 8,
        socket_buffer: 0,
        corrupt_chunk: None,
        pace: None,
        cut_through: true,
        drop_one_in: None,
    };
    let sender = McastSender {
        socket: sender_socket,
        options: McastOptions {
            group,
            max_rate: 12 << 20,
            ttl: 1,
            fec,
        },
        job: JOB.into(),
        token: token.clone(),
        manifest: Arc::clone(&manifest),
        source: Arc::new(FileSource::new(
            std::fs::File::open(&path).expect("open image"),
            Arc::clone(&manifest),
        )),
        receivers: vec![true; n],
        window: 8,
        status_every: Duration::from_millis(10),
        stall: Duration::from_secs(20),
    };
    let refetched = Arc::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let sent = std::thread::scope(|s| {
        s.spawn(|| relay(&relay_socket, &receiver_addrs, loss, &stop));
        if let Some(attack) = attack {
            let target = Target {
                receivers: &receiver_addrs,
                manifest: &manifest,
                token: &token,
                stop: &stop,
            };
            s.spawn(move || attack(&target));
        }
        let sending = s.spawn(move || sender.run());
        let receiving: Vec<_> = receiver_sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let (manifest, tuning, token, refetched) = (&manifest, &tuning, &token, &refetched);
                s.spawn(move || {
                    let store = ChunkStore::new(8, 1);
                    let plan = MulticastPlan {
                        group,
                        sender: saddr,
                        node: i as u32,
                        status_ms: 10,
                        fec,
                    };
                    std::thread::scope(|r| {
                        let got = r.spawn(|| {
                            McastReceiver {
                                plan: &plan,
                                socket,
                                job: JOB,
                                manifest,
                                store: &store,
                                tuning,
                                token,
                                refetched: Arc::clone(refetched),
                            }
                            .run()
                        });
                        let mut out = Vec::new();
                        for c in 0..total {
                            let chunk = loop {
                                match store.get(c, Duration::from_secs(1)) {
                                    Ok(Some(chunk)) => break chunk,
                                    Ok(None) => continue,
                                    Err(e) => panic!("receiver {i}, chunk {c}: {e}"),
                                }
                            };
                            out.extend_from_slice(&chunk);
                            store.release(0, c + 1);
                        }
                        got.join().expect("receiver").expect("received");
                        out
                    })
                })
            })
            .collect();
        for (i, r) in receiving.into_iter().enumerate() {
            let out = r.join().expect("receiver thread");
            assert!(out == data, "receiver {i}: the image arrived changed");
        }
        let sent = sending.join().expect("sender");
        stop.store(true, Ordering::SeqCst);
        sent
    });
    Run {
        sent,
        elapsed: start.elapsed(),
        refetched: refetched.load(Ordering::SeqCst),
    }
}

/// Four receivers each losing 5% of the datagrams at random: without forward error correction every
/// loss is asked for and sent again; with 16/4 the repairs rebuild nearly all of them, so far fewer
/// pieces are requested (the request rounds' count), for 25% more datagrams on the wire.
#[test]
fn fec_rebuilds_most_losses_without_requests() {
    let data = random_bytes(6 << 20, 41);
    let plain = lossy_loopback(&data, None, 0.05, 4, None);
    let fec = lossy_loopback(&data, Some(Fec::new(16, 4).expect("fec")), 0.05, 4, None);
    eprintln!(
        "loopback, 4 receivers, 5% loss, 6 MiB: no FEC {:.2} s, {} pieces sent again; FEC 16/4 {:.2} s, {} sent again, {} repair pieces",
        plain.elapsed.as_secs_f64(),
        plain.sent.repaired,
        fec.elapsed.as_secs_f64(),
        fec.sent.repaired,
        fec.sent.fec_sent
    );
    assert_eq!(plain.sent.fec_sent, 0);
    let pieces = data.len().div_ceil(PIECE_LEN) as u64;
    assert!(
        plain.sent.repaired > pieces / 20,
        "5% loss to 4 receivers, only {} of {pieces} pieces sent again",
        plain.sent.repaired
    );
    assert!(
        fec.sent.fec_sent >= pieces / 4,
        "{} repairs for {pieces} pieces",
        fec.sent.fec_sent
    );
    assert!(
        fec.sent.repaired * 5 < plain.sent.repaired,
        "with FEC {} pieces sent again, without {}",
        fec.sent.repaired,
        plain.sent.repaired
    );
    assert_eq!(plain.refetched + fec.refetched, 0);
}

/// With one repair per block of 8 and 20% loss most blocks lose more than the repair can make up:
/// the receivers ask for the rest (only as many as the repairs they hold cannot rebuild), and
/// every image is complete and right.
#[test]
fn blocks_with_more_losses_than_repairs_complete_through_requests() {
    let data = random_bytes((2 << 20) + 4321, 43);
    let r = lossy_loopback(&data, Some(Fec::new(8, 1).expect("fec")), 0.2, 2, None);
    assert!(r.sent.fec_sent > 0, "no repair sent");
    assert!(
        r.sent.repaired > 0,
        "losses beyond the code, but no request"
    );
    assert_eq!(r.refetched, 0);
}

/// While a sender moves an image with forward error correction over a lossy link, someone sends
/// the receivers repairs for every block: forged ones (another token: garbage that would corrupt
/// every rebuilt block), and ones sealed with the job's token but naming blocks past the chunk's
/// end, chunks past the image's end, or of the wrong length, and oversized datagrams.
/// All are dropped: every image arrives, and no chunk was ever rebuilt wrong (none re-fetched).
/// Before (at 578c7cc) there was no forward error correction; a receiver that took a repair without
/// checking its MAC, block, index and length would rebuild blocks from garbage or index out of its
/// buffers.
#[test]
fn forged_and_oversized_repairs_are_dropped() {
    let data = random_bytes((3 << 20) + 777, 47);
    let fec = Fec::new(16, 2).expect("fec");
    let attack = |t: &Target<'_>| {
        let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
            return;
        };
        let forger = DatagramKey::new(&AgentToken::generate().expect("token")).expect("key");
        let insider = DatagramKey::new(t.token).expect("key");
        let tag = mcast_wire::job_tag(JOB);
        let total = t.manifest.chunk_count() as u32;
        let pieces = (t.manifest.chunk_size as usize).div_ceil(PIECE_LEN);
        let blocks = fec.blocks(pieces);
        let codes = (blocks * usize::from(fec.m)) as u16;
        let mut round = 0u32;
        while !t.stop.load(Ordering::SeqCst) {
            let chunk = round % total.max(1);
            round += 1;
            let mut datagrams = Vec::new();
            for code in 0..codes {
                datagrams.push(mcast_wire::repair(
                    &forger,
                    &tag,
                    chunk,
                    code,
                    &[0x5A; PIECE_LEN],
                ));
            }
            // Sealed with the job's key, but out of range or of the wrong size.
            datagrams.push(mcast_wire::repair(
                &insider,
                &tag,
                chunk,
                codes,
                &[1; PIECE_LEN],
            ));
            datagrams.push(mcast_wire::repair(
                &insider,
                &tag,
                chunk,
                u16::MAX,
                &[2; PIECE_LEN],
            ));
            datagrams.push(mcast_wire::repair(&insider, &tag, chunk, 0, &[3; 100]));
            datagrams.push(mcast_wire::repair(
                &insider,
                &tag,
                u32::MAX,
                0,
                &[4; PIECE_LEN],
            ));
            datagrams.push(mcast_wire::repair(
                &insider,
                &tag,
                total,
                0,
                &[5; PIECE_LEN],
            ));
            let mut oversized = mcast_wire::repair(&insider, &tag, chunk, 0, &[6; PIECE_LEN]);
            oversized.extend_from_slice(&[7; 64]);
            datagrams.push(oversized);
            for d in &datagrams {
                for r in t.receivers {
                    let _ = socket.send_to(d, r);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let r = lossy_loopback(&data, Some(fec), 0.05, 2, Some(&attack));
    assert_eq!(r.refetched, 0, "a forged or out-of-range repair was used");
    assert!(r.sent.fec_sent > 0);
}

/// The namespace testbed with 5% loss toward each of 3 hosts (nftables): kaagent's multicast with
/// forward error correction 16/4 delivers verified images with fewer pieces sent again on request
/// than without.
#[test]
fn multicast_fec_on_a_lossy_testbed() {
    let tb = Testbed::new(3, 200);
    tb.set_loss(5.0);
    let (image, want) = make_image(&tb, 16);
    let agents = tb.start_agents();
    let mut repaired = Vec::new();
    for fec in [None, Some(Fec::new(16, 4).expect("fec"))] {
        let mut o = options();
        o.multicast.fec = fec;
        let r = run_with(&tb, &agents, 3, &image, &want, Strategy::Multicast, o);
        assert!(
            r.outcomes.failures().is_empty(),
            "{fec:?}: {:?}",
            r.outcomes
        );
        eprintln!(
            "testbed 200 Mbit/s, 16 MiB, 3 hosts, 5% loss, FEC {fec:?}: {:.2} s, {} pieces sent again",
            last_written(&r),
            r.repaired
        );
        repaired.push(r.repaired);
    }
    assert!(repaired[0] > 0, "5% loss but nothing sent again");
    assert!(
        repaired[1] * 3 < repaired[0],
        "sent again: without FEC {}, with {}",
        repaired[0],
        repaired[1]
    );
}

/// The measurements of forward error correction on the testbed; run by hand (env: KABCAST_MBIT,
/// KABCAST_MIB, KABCAST_NODES (one N), KABCAST_LOSSES (percent), KABCAST_FECS (`off` or k/m),
/// KABCAST_UDPCAST=1 to time udpcast (udp-sender/udp-receiver, defaults) at each loss too):
///
/// `cargo test --release -p hal --test broadcast -- --ignored --exact fec::measure_fec --nocapture`
///
/// Prints `mbit,mib,n,loss_pct,fec,seconds,resent,fec_sent,load1`.
#[test]
#[ignore = "measurement: run by hand"]
fn measure_fec() {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mbit: u32 = env("KABCAST_MBIT", "200").parse().expect("KABCAST_MBIT");
    let mib: u64 = env("KABCAST_MIB", "64").parse().expect("KABCAST_MIB");
    let n: usize = env("KABCAST_NODES", "4").parse().expect("KABCAST_NODES");
    let losses: Vec<f64> = env("KABCAST_LOSSES", "0,1,5")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let fecs: Vec<Option<Fec>> = env("KABCAST_FECS", "off,32/2,16/4")
        .split(',')
        .map(|s| (s.trim() != "off").then(|| Fec::parse(s).expect("k/m")))
        .collect();
    let tb = Testbed::new(n, mbit);
    let (image, want) = make_image(&tb, mib);
    let agents = tb.start_agents();
    println!("mbit,mib,n,loss_pct,fec,seconds,resent,fec_sent,load1");
    let udpcast = std::env::var("KABCAST_UDPCAST").is_ok_and(|v| v == "1");
    let load1 = || {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        load.split_whitespace().next().unwrap_or("?").to_string()
    };
    for &loss in &losses {
        tb.set_loss(loss);
        if udpcast {
            let t = tb.udpcast(&image, n).map_or(f64::NAN, |t| t.as_secs_f64());
            for i in 0..n {
                let out = tb.host_dir(i).join("udpcast.img");
                if t.is_finite() {
                    assert_eq!(file_hash(&out), want, "udpcast host {i}");
                }
                let _ = std::fs::remove_file(out);
            }
            println!("{mbit},{mib},{n},{loss},udpcast,{t:.3},,,{}", load1());
        }
        for fec in &fecs {
            let mut o = options();
            o.multicast.fec = *fec;
            let r = run_with(&tb, &agents, n, &image, &want, Strategy::Multicast, o);
            assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
            println!(
                "{mbit},{mib},{n},{loss},{},{:.3},{},{},{}",
                fec.map_or("off".to_string(), |f| f.to_string()),
                last_written(&r),
                r.repaired,
                r.fec_sent,
                load1()
            );
        }
    }
}
