//! The multicast strategy: verified images on the namespace testbed (with and without losses), and
//! on loopback, datagrams of anyone without the broadcast's token dropped unused.

use crate::harness::{Scratch, random_bytes};
use crate::netns::Testbed;
use crate::testbed::{make_image, options, run, run_with};
use hal::Strategy;
use hal::broadcast::mcast_recv::McastReceiver;
use hal::broadcast::mcast_send::{McastOptions, McastSender};
use hal::broadcast::mcast_wire::{self, PIECE_LEN, PieceRange};
use hal::broadcast::store::{ChunkSource, ChunkStore, FileSource};
use hal::broadcast::token::{AgentToken, DatagramKey};
use hal::broadcast::wire::{MulticastPlan, Tuning};
use hal::image::Manifest;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[test]
fn multicast_delivers_verified_images_on_the_testbed() {
    let tb = Testbed::new(4, 200);
    let (image, want) = make_image(&tb, 16);
    let agents = tb.start_agents();
    let r = run(&tb, &agents, 4, &image, &want, Strategy::Multicast);
    assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
}

/// Every receiver loses one data datagram in 30 (the test hook drops them on arrival): their
/// negative acknowledgements get the lost pieces sent again, and every image is still right.
#[test]
fn multicast_repairs_the_losses_of_the_receivers() {
    let tb = Testbed::new(3, 200);
    let (image, want) = make_image(&tb, 16);
    let agents = tb.start_agents();
    let mut options = options();
    options.tuning.drop_one_in = Some(30);
    let r = run_with(&tb, &agents, 3, &image, &want, Strategy::Multicast, options);
    assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
    assert!(r.repaired > 0, "losses but no repair");
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// While a sender and a receiver move an image over loopback (unicast stands in for the group),
/// someone without the token sends the receiver forged pieces of every chunk and a forged "sender
/// finished", and sends the sender forged storms of repair requests and a forged "I hold everything".
/// All are dropped: the image arrives intact, no chunk was ever corrupted by a forged piece, and
/// the storms cost no resends. (Before, at f72496d, there was no multicast; a sender or receiver
/// that did not check each datagram's MAC would corrupt chunks, resend the whole window on every
/// forged request, and stop early on the forged "finished" or "hold everything".)
#[test]
fn forged_datagrams_and_nak_storms_are_dropped() {
    let scratch = Scratch::new("mcast-forged");
    let data = random_bytes((2 << 20) + 12345, 21);
    let path = scratch.0.join("image.raw");
    std::fs::write(&path, &data).expect("image");
    let chunk_size = 64 << 10;
    let manifest = Arc::new(Manifest::build(&data[..], chunk_size).expect("manifest"));
    let total = manifest.chunk_count();
    let receiver_socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sender_socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (raddr, saddr) = (
        receiver_socket.local_addr().expect("addr"),
        sender_socket.local_addr().expect("addr"),
    );
    let token = AgentToken::generate().expect("token");
    let job = "job-forged";
    let plan = MulticastPlan {
        group: v4(raddr),
        sender: saddr,
        node: 0,
        status_ms: 10,
        fec: None,
    };
    let tuning = Tuning {
        stall_timeout_ms: 10_000,
        connect_timeout_ms: 3000,
        upstream_timeout_ms: 10_000,
        window: 8,
        socket_buffer: 0,
        corrupt_chunk: None,
        pace: None,
        cut_through: true,
        drop_one_in: None,
    };
    let store = Arc::new(ChunkStore::new(8, 1));
    let file = std::fs::File::open(&path).expect("open image");
    let sender = McastSender {
        socket: sender_socket,
        options: McastOptions {
            group: v4(raddr),
            max_rate: 40 << 20,
            ttl: 1,
            fec: None,
        },
        job: job.into(),
        token: token.clone(),
        manifest: Arc::clone(&manifest),
        source: Arc::new(FileSource::new(file, Arc::clone(&manifest))),
        receivers: vec![true],
        window: 8,
        status_every: Duration::from_millis(10),
        stall: Duration::from_secs(10),
    };
    let refetched = Arc::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let (sent, received, out) = std::thread::scope(|s| {
        let sending = s.spawn(move || sender.run());
        let receiving = s.spawn(|| {
            McastReceiver {
                plan: &plan,
                socket: receiver_socket,
                job,
                manifest: &manifest,
                store: &store,
                tuning: &tuning,
                token: &token,
                refetched: Arc::clone(&refetched),
            }
            .run()
        });
        s.spawn(|| forge(&stop, job, &manifest, raddr, saddr));
        let mut out = Vec::new();
        for i in 0..total {
            let chunk = loop {
                match store.get(i, Duration::from_secs(1)) {
                    Ok(Some(c)) => break c,
                    Ok(None) => continue,
                    Err(e) => panic!("chunk {i}: {e}"),
                }
            };
            out.extend_from_slice(&chunk);
            store.release(0, i + 1);
        }
        let received = receiving.join().expect("receiver");
        let sent = sending.join().expect("sender");
        stop.store(true, Ordering::SeqCst);
        (sent, received, out)
    });
    received.expect("received");
    assert!(out == data, "the image arrived changed");
    assert_eq!(
        refetched.load(Ordering::SeqCst),
        0,
        "a forged piece got into a chunk"
    );
    assert!(sent.lost.is_empty(), "{:?}", sent.lost);
    // Loopback loses little; the forged storms asked for every piece again and again.
    let pieces = data.len().div_ceil(PIECE_LEN) as u64;
    assert!(
        sent.repaired < pieces / 2,
        "{} pieces sent again (the image has {pieces})",
        sent.repaired
    );
}

/// Sends forged datagrams (another token, this job's tag) until `stop`.
fn forge(
    stop: &AtomicBool,
    job: &str,
    manifest: &Manifest,
    receiver: SocketAddr,
    sender: SocketAddr,
) {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return;
    };
    let forger = DatagramKey::new(&AgentToken::generate().expect("token")).expect("key");
    let tag = mcast_wire::job_tag(job);
    let total = manifest.chunk_count() as u32;
    let pieces = (manifest.chunk_size as usize).div_ceil(PIECE_LEN) as u16;
    let storm: Vec<PieceRange> = (0..total.min(64))
        .map(|chunk| PieceRange {
            chunk,
            first: 0,
            count: pieces,
        })
        .collect();
    let mut round = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let chunk = round % total.max(1);
        round += 1;
        for piece in 0..pieces {
            let d = mcast_wire::data(&forger, &tag, chunk, piece, &[0xAA; PIECE_LEN]);
            let _ = socket.send_to(&d, receiver);
        }
        let finished = mcast_wire::heartbeat(&forger, &tag, total, (total, 0), true);
        let _ = socket.send_to(&finished, receiver);
        let nak = mcast_wire::status(&forger, &tag, 0, 0, &storm);
        let all = mcast_wire::status(&forger, &tag, 0, u64::from(total), &[]);
        for _ in 0..50 {
            let _ = socket.send_to(&nak, sender);
        }
        let _ = socket.send_to(&all, sender);
        std::thread::sleep(Duration::from_millis(5));
    }
}
