//! The swarm's exchange between [`Swarm`]s in one process over loopback connections: complete
//! nodes keep serving what they keep, what reads as complete, and the seed reopening a node's link.

use super::*;
use crate::broadcast::deployer::Options;
use crate::broadcast::handshake::Opener;
use crate::broadcast::store::ChunkStore;
use crate::broadcast::swarm_node::{self, SEED_REOPEN_WAIT, SEED_REOPEN_WAIT_MAX, SEED_REOPENS};
use crate::broadcast::token::AgentToken;
use crate::broadcast::wire::{self, Hello, Reply};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;

/// Chunks of the test image, and their size.
const CHUNKS: u64 = 8;
const CHUNK: u32 = 4096;
/// Longest wait for an exchange that takes milliseconds when it works.
const PATIENCE: Duration = Duration::from_secs(20);

fn image() -> (Vec<u8>, Arc<Manifest>) {
    let data: Vec<u8> = (0..CHUNKS * u64::from(CHUNK) - 100)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    let manifest = Manifest::build(&data[..], CHUNK).expect("manifest");
    (data, Arc::new(manifest))
}

/// Every chunk of `data`, as the server's file serves them.
fn source(data: &[u8]) -> Arc<ChunkStore> {
    let source = ChunkStore::new(CHUNKS as usize, 1);
    for c in data.chunks(CHUNK as usize) {
        assert!(source.push(Arc::new(c.to_vec()), Duration::ZERO));
    }
    Arc::new(source)
}

/// The server's seed over every chunk of `data`.
fn seed(data: &[u8], manifest: &Arc<Manifest>) -> Swarm {
    Swarm::seed(Arc::clone(manifest), source(data), Duration::from_secs(3))
}

/// A node working on 4 chunks at a time and keeping 8 (the whole image) once written; its store.
fn node(manifest: &Arc<Manifest>, index: u64) -> (Swarm, Arc<ChunkStore>) {
    node_with(manifest, (4, CHUNKS, index, 0))
}

/// A node of `Swarm::node`'s `(span, keep, node, nodes)`; its store.
fn node_with(manifest: &Arc<Manifest>, knobs: (u64, u64, u64, u64)) -> (Swarm, Arc<ChunkStore>) {
    // No consumer: written chunks leave the store at once, so there is always room.
    let store = Arc::new(ChunkStore::new(2, 0));
    let swarm = Swarm::node(
        Arc::clone(manifest),
        Arc::clone(&store),
        knobs,
        Duration::from_secs(3),
        Arc::default(),
    );
    (swarm, store)
}

/// A link whose peer announced `view`.
fn seen(view: View) -> Link {
    Link {
        view: Some(view),
        ..Link::default()
    }
}

/// Both ends of a loopback connection.
/// Chunk `index` asked of link `link` now (the link's request and the node's).
fn ask(s: &mut State, link: u64, index: u64) {
    let now = Instant::now();
    s.links
        .get_mut(&link)
        .expect("a link")
        .asked
        .insert(index, now);
    s.requested.insert(index, now);
}

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (b, _) = l.accept().expect("accept");
    (a, b)
}

/// Runs a connection between `a` and `b` in scope `s` until `stop`.
fn link<'s>(s: &'s std::thread::Scope<'s, '_>, a: &'s Swarm, b: &'s Swarm, stop: &'s AtomicBool) {
    let (x, y) = pair();
    s.spawn(move || a.run_link(x, stop));
    s.spawn(move || b.run_link(y, stop));
}

/// Waits up to [`PATIENCE`] for `done`.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < PATIENCE, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Node B's two ring neighbours, A and C, finished from the seed first; B, whose seed link is
/// gone (as when it dropped it for a stall), is connected to them alone and must finish from the
/// chunks they keep. Before (d81711a) a complete node announced `Holding { low: total, bits: [] }`,
/// which B read as holding nothing: B never asked A or C anything and stayed at 0 of 8 chunks (in
/// the testbed: node 6 stopped at 60 of 64 and failed after "nothing received for 15000 ms").
#[test]
fn complete_neighbours_serve_the_chunks_they_keep() {
    let (data, manifest) = image();
    let seed = seed(&data, &manifest);
    let ((a, a_store), (b, b_store), (c, c_store)) =
        (node(&manifest, 0), node(&manifest, 1), node(&manifest, 2));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        link(s, &seed, &a, &stop);
        link(s, &seed, &c, &stop);
        wait_for("A and C from the seed", || a.complete() && c.complete());
        assert_eq!((a_store.have(), c_store.have()), (CHUNKS, CHUNKS));
        link(s, &a, &b, &stop);
        link(s, &c, &b, &stop);
        let outcome = Instant::now();
        while !b.complete() && outcome.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(10));
        }
        let have = b_store.have();
        // B announces a map of every chunk to the end: its complete neighbours may leave.
        wait_for("A and C see B complete", || {
            !b.complete() || (a.peers_complete() && c.peers_complete())
        });
        stop.store(true, Ordering::SeqCst);
        assert_eq!(have, CHUNKS, "B starved next to complete neighbours");
    });
}

/// What each announcement reads as: holding every chunk from its first to the end is complete
/// (whatever the map's start), a gap or a map ending before the image's end is not; the old
/// completion (`low` at or past the end) still is.
#[test]
fn a_map_of_every_chunk_to_the_end_reads_as_complete() {
    let map = |low: u64, bits: &[u8]| View::Map {
        low,
        bits: bits.to_vec(),
    };
    assert!(map(8, &[]).complete(8) && map(9, &[]).complete(8));
    assert!(map(0, &[0xff]).complete(8) && map(4, &[0x0f]).complete(8));
    assert!(
        map(4, &[0x0f, 0]).complete(8),
        "bits past the end are ignored"
    );
    assert!(!map(0, &[0x7f]).complete(8), "chunk 7 missing");
    assert!(!map(0, &[0xfe]).complete(8), "chunk 0 missing");
    assert!(!map(0, &[0xff]).complete(9), "map shorter than the image");
    assert!(View::All.complete(u64::MAX));
    // A peer's map far shorter than a huge image is refused without a scan.
    assert!(!map(0, &[0xff; 8192]).complete(u64::MAX));
}

/// The chunk holding up the writing is asked of a second peer only when it is old and a chunk asked
/// after it arrived first (its peer is slow); when every chunk arrives late together (our own link
/// is the slowest) it is not. Before, any base chunk older than 400 ms was asked again: a node on a
/// tenth of the others' rate, served by 4 peers at once, spent its link on duplicates (testbed,
/// 32 MiB at 20 Mbit/s: 16.1 s against the chain's 14.7 s).
#[test]
fn the_chunk_holding_up_the_writing_is_duplicated_only_behind_a_slow_peer() {
    let (_, manifest) = image();
    let (a, _store) = node(&manifest, 0);
    let ago = |ms| {
        Instant::now()
            .checked_sub(Duration::from_millis(ms))
            .expect("uptime")
    };
    let asked = ago(1000);
    let mut s = a.lock();
    assert!(!a.may_duplicate(&s, 0, asked), "nothing arrived yet");
    s.answered = Some(ago(2000));
    assert!(
        !a.may_duplicate(&s, 0, asked),
        "only chunks asked before it arrived"
    );
    s.answered = Some(ago(500));
    assert!(a.may_duplicate(&s, 0, asked), "a later chunk overtook it");
    assert!(
        !a.may_duplicate(&s, 1, asked),
        "not the chunk holding up the writing"
    );
    assert!(!a.may_duplicate(&s, 0, ago(100)), "asked too recently");
}

/// Node 1 of a 4-node job asks the seed for chunks 1 and 5, in order, and for another's chunk
/// only once it has held up the writing for [`DUPLICATE_AFTER`] longer than twice the seed's time,
/// or its owner is marked slow, or no peer will hold it again; of a peer, for any it holds.
#[test]
fn a_node_asks_the_seed_for_its_stripe() {
    let (_, manifest) = image();
    let (a, _store) = node_with(&manifest, (CHUNKS, CHUNKS, 1, 4));
    let mut s = a.lock();
    s.links.insert(0, seen(View::All));
    s.links.insert(
        1,
        seen(View::Map {
            low: 0,
            bits: vec![0xff],
        }),
    );
    assert_eq!(a.pick(&s, 0), Some(1), "the seed: the stripe's first");
    ask(&mut s, 0, 1);
    assert_eq!(a.pick(&s, 0), Some(5), "then its next");
    ask(&mut s, 0, 5);
    assert_eq!(a.pick(&s, 0), None, "nothing of others' stripes");
    assert!(
        a.pick(&s, 1).is_some_and(|i| i != 1 && i != 5),
        "a peer: any it holds"
    );
    let ago = |d: Duration| Instant::now().checked_sub(d).expect("uptime");
    s.base_since = ago(DUPLICATE_AFTER * 2);
    assert_eq!(
        a.pick(&s, 0),
        Some(0),
        "chunk 0 held up the writing: of the seed too"
    );
    s.seed_took = DUPLICATE_AFTER * 2;
    assert_eq!(
        a.pick(&s, 0),
        None,
        "not before the seed's own answer time more"
    );
    s.seed_took = Duration::ZERO;
    s.links
        .get_mut(&0)
        .expect("seed")
        .asked
        .insert(5, ago(DUPLICATE_AFTER * 3));
    assert_eq!(
        a.pick(&s, 0),
        None,
        "nor while a request to the seed waits longer"
    );
    s.base_since = ago(DUPLICATE_AFTER * 8);
    assert_eq!(a.pick(&s, 0), Some(0), "held up longer than twice that");
    // Node 2's stripe held us up once: the rest of it may be asked of the seed as our own.
    s.links.get_mut(&0).expect("seed").asked.clear();
    s.requested.clear();
    s.base_since = Instant::now();
    s.slow.insert(2);
    assert_eq!(
        a.pick(&s, 0),
        Some(1),
        "its own stripe and node 2's, in order"
    );
    ask(&mut s, 0, 1);
    assert_eq!(a.pick(&s, 0), Some(2));
    // The peer's map starts at chunk 4: chunks 0 to 3 it will not hold again, so of the seed.
    s.slow.clear();
    s.links.get_mut(&1).expect("peer").view = Some(View::Map {
        low: 4,
        bits: vec![0x0f],
    });
    assert_eq!(a.pick(&s, 0), Some(0), "no peer will hold chunk 0 again");
    // Chunk 0 asked of a peer that has not answered, nothing asked after it: once it has held up
    // the writing longer than twice the seed's time, of the seed too (the peer is slow).
    s.links.get_mut(&1).expect("peer").view = Some(View::Map {
        low: 0,
        bits: vec![0xff],
    });
    s.links.get_mut(&0).expect("seed").asked.clear();
    s.links
        .get_mut(&1)
        .expect("peer")
        .asked
        .insert(0, Instant::now());
    s.requested = BTreeMap::from([(0, Instant::now())]);
    s.answered = None;
    s.base_since = Instant::now();
    assert_ne!(a.pick(&s, 0), Some(0), "not yet held up");
    s.base_since = ago(DUPLICATE_AFTER * 2);
    assert_eq!(a.pick(&s, 0), Some(0), "held up behind a slow peer");
    // Without the job's size (an older server's plan), any chunk, by the node's tie-break.
    let (old, _store) = node_with(&manifest, (CHUNKS, CHUNKS, 1, 0));
    let mut o = old.lock();
    o.links.insert(0, seen(View::All));
    let first = (0..CHUNKS).min_by_key(|&i| (spread(1, i), i));
    assert_eq!(old.pick(&o, 0), first);
}

/// A striped node whose only link is the seed's (its peers gone) still gets every chunk: another
/// stripe's chunk once it holds up the writing, then the rest of that stripe.
#[test]
fn a_striped_node_alone_with_the_seed_completes() {
    let (data, manifest) = image();
    let seed = seed(&data, &manifest);
    let (a, store) = node_with(&manifest, (4, CHUNKS, 0, 4));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        link(s, &seed, &a, &stop);
        wait_for("the striped node alone", || a.complete());
    });
    assert_eq!(store.have(), CHUNKS);
    // Each other owner's chunk held it up once; then it asked for their stripes as its own.
    assert_eq!(a.lock().slow, BTreeSet::from([1, 2, 3]));
}

/// A complete node's announcement is the map of the chunks it keeps, which it serves; keeping
/// nothing, it is the old "past the end" form. Before (d81711a) it was always `low: total` with no
/// bits.
#[test]
fn a_complete_node_announces_what_it_keeps() {
    let (data, manifest) = image();
    let seed = seed(&data, &manifest);
    let (a, _store) = node(&manifest, 0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        link(s, &seed, &a, &stop);
        wait_for("A from the seed", || a.complete());
        stop.store(true, Ordering::SeqCst);
    });
    let announced = a.announcement(&a.lock());
    assert_eq!(
        announced,
        PeerMsg::Holding {
            low: 0,
            bits: vec![0xff]
        }
    );
    for i in 0..CHUNKS {
        assert!(a.chunk(i).is_some(), "chunk {i} kept and served");
    }
    let (keeps_none, _store) = node_with(&manifest, (4, 0, 0, 0));
    keeps_none.lock().base = CHUNKS;
    assert_eq!(
        keeps_none.announcement(&keeps_none.lock()),
        PeerMsg::Holding {
            low: CHUNKS,
            bits: Vec::new()
        }
    );
}

/// Sets the flag when dropped (a failed assertion then still ends the threads of its scope).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Accepts the seed's next swarm connection on `listener` as a node's agent does (nonce, sealed
/// hello, reply), waiting until `until`; `None` if none came.
fn accept_seed(listener: &TcpListener, token: &AgentToken, until: Instant) -> Option<TcpStream> {
    listener.set_nonblocking(true).expect("nonblocking");
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut opener = Opener::challenge(&mut conn).expect("nonce");
    let hello: Hello = opener
        .recv(&mut conn, wire::MAX_CONTROL_FRAME, token)
        .expect("sealed hello");
    assert!(matches!(hello, Hello::Peer { .. }), "{hello:?}");
    wire::send(&mut conn, &Reply::Data { have: 0 }).expect("reply");
    Some(conn)
}

/// Asks the seed for chunk `index` on `conn` and checks what comes back.
fn fetch(conn: &mut TcpStream, manifest: &Manifest, index: u64) {
    swarm_wire::write(conn, &PeerMsg::Request(index)).expect("request");
    match swarm_wire::read(conn, CHUNK).expect("chunk") {
        PeerMsg::Chunk(i, data) => {
            assert_eq!(i, index);
            manifest.verify_chunk(i, &data).expect("a verified chunk");
        }
        other => panic!("{other:?}"),
    }
}

/// The seed runs in a thread of `s` for the node at `addr`; a message on the receiver when it
/// returned.
fn run_seed<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    (data, manifest): (&[u8], &Arc<Manifest>),
    (addr, token, stop): (SocketAddr, &'s AgentToken, &'s AtomicBool),
) -> mpsc::Receiver<()> {
    let (source, manifest) = (source(data), Arc::clone(manifest));
    let (tx, rx) = mpsc::channel();
    s.spawn(move || {
        let tuning = Options::default().tuning;
        swarm_node::seed("job", token, manifest, source, &[addr], &tuning, stop);
        let _ = tx.send(());
    });
    rx
}

/// A node drops the seed's link with chunks missing (as it does when the seed stalls): the seed
/// opens it again, and, once the node announced holding everything, leaves it without reopening.
/// Before (d81711a) the seed connected once: a link dropped for a stall stayed gone, and a node whose
/// ring neighbours were complete had nobody left to ask (no second connection came here).
#[test]
fn the_seed_reopens_a_link_its_node_dropped_with_chunks_missing() {
    let (data, manifest) = image();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = AgentToken::generate().expect("token");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let returned = run_seed(s, (&data, &manifest), (addr, &token, &stop));
        let _stop = StopOnDrop(&stop);
        let until = || Instant::now() + PATIENCE;
        let mut first = accept_seed(&listener, &token, until()).expect("the seed's link");
        assert_eq!(
            swarm_wire::read(&mut first, CHUNK).expect("msg"),
            PeerMsg::All
        );
        let none = PeerMsg::Holding {
            low: 0,
            bits: vec![0],
        };
        swarm_wire::write(&mut first, &none).expect("holding");
        fetch(&mut first, &manifest, 0);
        first.shutdown(std::net::Shutdown::Both).expect("drop");
        let mut second = accept_seed(&listener, &token, until()).expect("the link reopened");
        assert_eq!(
            swarm_wire::read(&mut second, CHUNK).expect("msg"),
            PeerMsg::All
        );
        fetch(&mut second, &manifest, 1);
        let all = PeerMsg::Holding {
            low: 0,
            bits: vec![0xff],
        };
        swarm_wire::write(&mut second, &all).expect("holding");
        second.shutdown(std::net::Shutdown::Both).expect("close");
        // Complete: the seed returns by itself, and connected no third time.
        returned.recv_timeout(PATIENCE).expect("the seed returned");
        assert!(accept_seed(&listener, &token, Instant::now()).is_none());
    });
}

/// A hostile or broken node that takes the seed's link and closes it at once, again and again: the
/// seed opens it [`SEED_REOPENS`] more times, each after a growing wait (no spinning), then gives
/// up by itself.
#[test]
fn the_seed_reopens_a_dropped_link_a_bounded_number_of_times() {
    let (data, manifest) = image();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = AgentToken::generate().expect("token");
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let waits: Duration = (0..SEED_REOPENS)
        .map(|k| (SEED_REOPEN_WAIT * 2u32.pow(k)).min(SEED_REOPEN_WAIT_MAX))
        .sum();
    std::thread::scope(|s| {
        let returned = run_seed(s, (&data, &manifest), (addr, &token, &stop));
        let _stop = StopOnDrop(&stop);
        let mut links = 0;
        let until = Instant::now() + waits + PATIENCE;
        while returned.try_recv().is_err() {
            assert!(
                Instant::now() < until,
                "the seed went on after {links} links"
            );
            if let Some(c) = accept_seed(&listener, &token, Instant::now() + PATIENCE / 20) {
                links += 1;
                c.shutdown(std::net::Shutdown::Both).expect("drop");
            }
        }
        assert!(accept_seed(&listener, &token, Instant::now()).is_none());
        assert_eq!(links, 1 + SEED_REOPENS);
        assert!(t0.elapsed() >= waits, "{:?} < {waits:?}", t0.elapsed());
    });
}
