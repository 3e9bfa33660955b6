//! The host's own speed through each tool whose cost is not one `socat` hop's (an input of the
//! simulator's CPU bound, measured before each N like the hop speed): on a bed of hosts whose links
//! have tc at a rate the tools never reach (10 Gbit/s), kaagent's multicast, udpcast, the plain
//! `socat | tee` chain and kaagent's chain each move an image to a small and a large number of
//! receivers (default: as many as cores, and four times that). A tool's
//! speed is the bytes it delivers per second (receivers × image / time); the two counts give the
//! simulator a cost per image byte that grows linearly with the receivers (the sender's share, paid
//! once, and each receiver's: the bridge copies every datagram to every port, each receiver's stack
//! takes it alone; each chain node's `tee` adds two pipe copies to its hop; kaagent's hops, since
//! stop 15's cut-through forwarding, cost the host less per byte than the hop meter's `socat`
//! copies, and its chain's speed is the CPU bound of its chain, tree and unicast; since stop 18
//! kaagent's swarm too, whose exchange costs less per byte than `socat`'s hops).

use crate::harness::AgentProc;
use crate::netns::Testbed;
use crate::readings::{median_and_spread, meter_repeats, read_again, spread_field};
use crate::testbed::{last_written, make_image, run};
use crate::topology::Topology;
use crate::udpcast::udpcast_receive_buffer;
use hal::Strategy;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;

/// The columns [`ToolSpeeds::csv`] fills (`udpcast_rcvbuf`: the socket buffer, bytes, udpcast's
/// receivers have on the testbed and the meter's bed; `chain_*`: kaagent's chain, since stop 16;
/// `udpcast_alone_mbit`: udpcast to the small count on a bed of only those hosts, since stop 16:
/// udpcast's datagrams reach every host of a bed, receivers or not, and the difference from
/// `udpcast_small_mbit` is the cost of the idle hosts). Since stop 17 each speed is the median of
/// the meter's repeated readings; `swarm_*`: kaagent's swarm, since stop 18.
pub const CSV_HEADER: &str = "meter_mbit,meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit,udpcast_rcvbuf,chain_small_mbit,chain_large_mbit,udpcast_alone_mbit,swarm_small_mbit,swarm_large_mbit";

/// The columns [`ToolSpeeds::spread_csv`] fills (since stop 17): how many times each tool was
/// metered (since stop 19 up to twice the repeats asked, see [`read_again`]), and each speed's
/// readings' spread, `100 · (max − min) / median`.
pub const SPREAD_HEADER: &str = "meter_repeats,plain_small_spread_pct,plain_large_spread_pct,udpcast_small_spread_pct,udpcast_large_spread_pct,mcast_small_spread_pct,mcast_large_spread_pct,chain_small_spread_pct,chain_large_spread_pct,udpcast_alone_spread_pct,swarm_small_spread_pct,swarm_large_spread_pct";

/// One tool's readings, delivered bytes/s, at the small and the large receiver count.
type Pair = Option<(Vec<f64>, Vec<f64>)>;

/// Delivered bytes/s at the small and the large receiver count, per tool, every reading (`None`:
/// not measured).
pub struct ToolSpeeds {
    mbit: u32,
    small: usize,
    large: usize,
    repeats: usize,
    plain: Pair,
    udpcast: Pair,
    mcast: Pair,
    chain: Pair,
    udpcast_alone: Option<Vec<f64>>,
    swarm: Pair,
}

impl ToolSpeeds {
    /// The columns of [`CSV_HEADER`] (Mbit/s, the medians of the readings; empty where not
    /// measured).
    pub fn csv(&self) -> String {
        let [plain, udpcast, mcast, chain, alone, swarm] =
            self.columns(|r| format!("{:.0}", median_and_spread(r).0 * 8e-6));
        let rcvbuf = self
            .udpcast
            .as_ref()
            .map_or_else(String::new, |_| udpcast_receive_buffer().to_string());
        format!(
            "{},{},{},{plain},{udpcast},{mcast},{rcvbuf},{chain},{alone},{swarm}",
            self.mbit, self.small, self.large
        )
    }

    /// The columns of [`SPREAD_HEADER`] (empty where not measured).
    pub fn spread_csv(&self) -> String {
        let [plain, udpcast, mcast, chain, alone, swarm] =
            self.columns(|r| spread_field(median_and_spread(r).1));
        format!(
            "{},{plain},{udpcast},{mcast},{chain},{alone},{swarm}",
            self.repeats
        )
    }

    /// Every tool's readings' spread (% of their median; NaN where not measured).
    fn spreads(&self) -> Vec<f64> {
        let pairs = [
            &self.plain,
            &self.udpcast,
            &self.mcast,
            &self.chain,
            &self.swarm,
        ];
        pairs
            .into_iter()
            .flatten()
            .flat_map(|(s, l)| [median_and_spread(s).1, median_and_spread(l).1])
            .chain(
                self.udpcast_alone
                    .as_deref()
                    .map(|a| median_and_spread(a).1),
            )
            .collect()
    }

    /// Each tool's readings as CSV fields through `field`: plain, udpcast, multicast and chain as
    /// `small,large` (`,` where not measured), then udpcast alone (empty where not measured), then
    /// the swarm as a pair.
    fn columns(&self, field: impl Fn(&[f64]) -> String) -> [String; 6] {
        let pair = |p: &Pair| {
            p.as_ref().map_or_else(
                || ",".to_string(),
                |(s, l)| format!("{},{}", field(s), field(l)),
            )
        };
        [
            pair(&self.plain),
            pair(&self.udpcast),
            pair(&self.mcast),
            pair(&self.chain),
            self.udpcast_alone
                .as_deref()
                .map_or_else(String::new, &field),
            pair(&self.swarm),
        ]
    }
}

/// One reading of each wanted tool (delivered bytes/s at the small and the large count).
struct OnePass {
    plain: Option<(f64, f64)>,
    udpcast: Option<(f64, f64)>,
    mcast: Option<(f64, f64)>,
    chain: Option<(f64, f64)>,
    udpcast_alone: Option<f64>,
    swarm: Option<(f64, f64)>,
}

/// An idle bed (no tc) with agents, and the image the tools move.
pub struct ToolMeter {
    bed: Testbed,
    agents: Vec<AgentProc>,
    image: PathBuf,
    want: String,
    mib: u64,
    mbit: u32,
    small: usize,
    large: usize,
    plain: bool,
    udpcast: bool,
    mcast: bool,
    chain: bool,
    swarm: bool,
    /// A bed of only the small count's hosts, and its image, for udpcast alone.
    alone: Option<(Testbed, PathBuf, String)>,
    /// Readings of each tool per [`ToolMeter::measure`].
    repeats: usize,
}

impl ToolMeter {
    /// A bed for `KABCAST_METER_RECEIVERS` (`small,large`; default: cores, and four times cores or
    /// `reach` if more) receivers and a `KABCAST_METER_MIB` (default 64) image; measures the tools
    /// `wanted` says (`plain`, `udpcast`, `multicast`, `chain`, `swarm`), each
    /// `KABCAST_METER_REPEAT` times (default 3; see [`ToolMeter::measure`]).
    pub fn new(cores: usize, reach: usize, wanted: impl Fn(&str) -> bool) -> ToolMeter {
        ToolMeter::with(
            meter_counts(cores, reach),
            meter_mib(),
            meter_mbit(),
            wanted,
        )
        .repeating(meter_repeats())
    }

    /// A bed for `small` and `large` receivers, links limited to `mbit` (0: none), and a `mib` MiB
    /// image; each tool read once (see [`ToolMeter::repeating`]).
    pub fn with(
        (small, large): (usize, usize),
        mib: u64,
        mbit: u32,
        wanted: impl Fn(&str) -> bool,
    ) -> ToolMeter {
        let bed = Testbed::build(large, mbit, &[], Topology::Flat);
        let (image, want) = make_image(&bed, mib);
        let (mcast, chain, swarm) = (wanted("multicast"), wanted("chain"), wanted("swarm"));
        let alone = wanted("udpcast").then(|| {
            let bed = Testbed::build(small, mbit, &[], Topology::Flat);
            let (image, want) = make_image(&bed, mib);
            (bed, image, want)
        });
        let agents = if mcast || chain || swarm {
            bed.start_agents()
        } else {
            Vec::new()
        };
        ToolMeter {
            bed,
            agents,
            image,
            want,
            mib,
            mbit,
            small,
            large,
            plain: wanted("plain"),
            udpcast: wanted("udpcast"),
            mcast,
            chain,
            swarm,
            alone,
            repeats: 1,
        }
    }

    /// The same meter reading each tool `repeats` times (at least once).
    pub fn repeating(mut self, repeats: usize) -> ToolMeter {
        self.repeats = repeats.max(1);
        self
    }

    /// Each wanted tool at both receiver counts, [`ToolMeter::repeating`] times, pass after pass
    /// (every tool once per pass: a slow spell of the machine falls on every tool alike; every
    /// receiver's data checked), and again while some tool's readings are unsettled, up to twice
    /// that ([`read_again`]).
    pub fn measure(&self) -> ToolSpeeds {
        let mut all = ToolSpeeds {
            mbit: self.mbit,
            small: self.small,
            large: self.large,
            repeats: self.repeats,
            plain: None,
            udpcast: None,
            mcast: None,
            chain: None,
            udpcast_alone: None,
            swarm: None,
        };
        let add = |to: &mut Pair, one: Option<(f64, f64)>| {
            if let Some((s, l)) = one {
                let (vs, vl) = to.get_or_insert_with(Default::default);
                vs.push(s);
                vl.push(l);
            }
        };
        let mut passes = 0;
        while read_again(passes, self.repeats, &all.spreads()) {
            passes += 1;
            let one = self.measure_once();
            add(&mut all.plain, one.plain);
            add(&mut all.udpcast, one.udpcast);
            add(&mut all.mcast, one.mcast);
            add(&mut all.chain, one.chain);
            add(&mut all.swarm, one.swarm);
            if let Some(v) = one.udpcast_alone {
                all.udpcast_alone.get_or_insert_with(Vec::new).push(v);
            }
        }
        all.repeats = passes;
        all
    }

    /// Each wanted tool at both receiver counts, one run each.
    fn measure_once(&self) -> OnePass {
        let bytes = (self.mib * MIB) as f64;
        let speed = |k: usize, seconds: f64| k as f64 * bytes / seconds;
        let both = |one: &dyn Fn(usize) -> f64| {
            let (s, l) = (self.small, self.large);
            (speed(s, one(s)), speed(l, one(l)))
        };
        let plain = self.plain.then(|| {
            both(&|k| {
                let t = self.bed.plain_chain(&self.image, k).as_secs_f64();
                self.check(k, "plain.img");
                t
            })
        });
        let udpcast = self.udpcast.then(|| {
            both(&|k| match self.bed.udpcast(&self.image, k) {
                Some(t) => {
                    self.check(k, "udpcast.img");
                    t.as_secs_f64()
                }
                None => f64::NAN,
            })
        });
        let kaagent = |strategy: Strategy| {
            both(&|k| {
                let r = run(
                    &self.bed,
                    &self.agents,
                    k,
                    &self.image,
                    &self.want,
                    strategy,
                );
                assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
                last_written(&r)
            })
        };
        let udpcast_alone = self.alone.as_ref().map(|(bed, image, want)| {
            let k = self.small;
            let t = bed.udpcast(image, k).map_or(f64::NAN, |t| t.as_secs_f64());
            let whole = (0..k).all(|i| {
                let path = bed.host_dir(i).join("udpcast.img");
                let same = crate::harness::file_hash(&path) == *want;
                let _ = std::fs::remove_file(path);
                same
            });
            if whole { speed(k, t) } else { f64::NAN }
        });
        let mcast = self.mcast.then(|| kaagent(Strategy::Multicast));
        let chain = self.chain.then(|| kaagent(Strategy::Chain));
        let swarm = self.swarm.then(|| kaagent(Strategy::Swarm));
        OnePass {
            plain,
            udpcast,
            mcast,
            chain,
            udpcast_alone,
            swarm,
        }
    }

    /// Checks and removes `file` of the first `k` hosts.
    fn check(&self, k: usize, file: &str) {
        let paths: Vec<PathBuf> = (0..k).map(|i| self.bed.host_dir(i).join(file)).collect();
        let hashes = crate::harness::file_hashes(&paths);
        for (i, (path, got)) in paths.iter().zip(hashes).enumerate() {
            assert_eq!(got, self.want, "{file} host {i}");
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The meter's counts bracket a row's N: four times the cores up to there, N itself past it; the
/// variable overrides both, and nonsense in it is ignored.
#[test]
fn the_meter_brackets_the_rows_receiver_count() {
    assert_eq!(counts_for(None, 2, 4), (2, 8));
    assert_eq!(counts_for(None, 2, 8), (2, 8));
    assert_eq!(counts_for(None, 2, 16), (2, 16));
    assert_eq!(
        counts_for(None, 2, 1000),
        (2, 64),
        "a bed of 64 hosts at most"
    );
    assert_eq!(counts_for(Some("3,12"), 2, 16), (3, 12));
    assert_eq!(counts_for(Some("12,3"), 2, 16), (2, 16));
    assert_eq!(counts_for(Some("x"), 2, 4), (2, 8));
}

/// Every tool reaches every receiver with the image's bytes at both counts, each read as many
/// times as asked, and the columns say how fast (the median of the readings) and how far the
/// readings spread (the harness of `scripts/bcast-testbed.sh`; root, socat and udpcast needed).
#[test]
fn the_tool_meter_measures_every_tool_at_both_receiver_counts() {
    let meter = ToolMeter::with((1, 3), 4, 0, |_| true).repeating(3);
    let speeds = meter.measure();
    let csv = speeds.csv();
    let fields: Vec<&str> = csv.split(',').collect();
    assert_eq!(fields.len(), CSV_HEADER.split(',').count(), "{csv}");
    assert_eq!(&fields[..3], &["0", "1", "3"], "{csv}");
    for (name, v) in CSV_HEADER.split(',').zip(&fields).skip(3) {
        let value: f64 = v.parse().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value > 0.0, "{name} = {v}: {csv}");
    }
    // Three readings of every speed (up to six where some tool's spread wider than
    // `UNSETTLED_SPREAD_PCT`); the column is their median.
    let passes = speeds.repeats;
    assert!((3..=6).contains(&passes), "{passes} passes");
    for (name, readings) in [
        ("plain", &speeds.plain),
        ("udpcast", &speeds.udpcast),
        ("mcast", &speeds.mcast),
        ("chain", &speeds.chain),
        ("swarm", &speeds.swarm),
    ] {
        let (small, large) = readings.as_ref().expect(name);
        assert_eq!((small.len(), large.len()), (passes, passes), "{name}");
    }
    let plain_small = &speeds.plain.as_ref().expect("plain").0;
    assert_eq!(
        fields[3],
        format!("{:.0}", median_and_spread(plain_small).0 * 8e-6)
    );
    assert_eq!(speeds.udpcast_alone.as_ref().map(Vec::len), Some(passes));
    let spreads = speeds.spread_csv();
    let fields: Vec<&str> = spreads.split(',').collect();
    assert_eq!(fields.len(), SPREAD_HEADER.split(',').count(), "{spreads}");
    assert_eq!(fields[0], passes.to_string(), "{spreads}");
    for (name, v) in SPREAD_HEADER.split(',').zip(&fields).skip(1) {
        let value: f64 = v.parse().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value >= 0.0, "{name} = {v}: {spreads}");
    }
    let none = ToolMeter::with((1, 2), 1, 0, |_| false).measure();
    assert_eq!(
        none.csv(),
        "0,1,2,,,,,,,,,,,,",
        "nothing wanted, nothing measured"
    );
    assert_eq!(
        none.spread_csv(),
        "1,,,,,,,,,,,",
        "one pass, nothing measured"
    );
}

/// The meter's receiver counts for a row of `reach` receivers: `KABCAST_METER_RECEIVERS`
/// (`small,large`) if set, else the cores and four times the cores, the large count raised to
/// `reach` past it (since stop 19: a row's N is bracketed by the meter, not extrapolated to; the
/// tools' cost per receiver grows past four times the cores, 48 `socat`/`tee` processes at 16).
pub fn meter_counts(cores: usize, reach: usize) -> (usize, usize) {
    counts_for(
        std::env::var("KABCAST_METER_RECEIVERS").ok().as_deref(),
        cores,
        reach,
    )
}

/// [`meter_counts`] given the variable's value (`None`: unset).
fn counts_for(asked: Option<&str>, cores: usize, reach: usize) -> (usize, usize) {
    let counts: Vec<usize> = asked
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default();
    match counts[..] {
        [s, l] if s >= 1 && l > s && l <= 64 => (s, l),
        _ => (cores.max(1), (4 * cores.max(1)).max(reach.min(64))),
    }
}

/// The meter's image, MiB: `KABCAST_METER_MIB` (1 to 1024; default 64).
fn meter_mib() -> u64 {
    std::env::var("KABCAST_METER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|m| (1..=1024).contains(m))
        .unwrap_or(64)
}

/// `KABCAST_METER_MBIT`: tc on the meter bed's links (0: none) at a rate the tools never reach
/// (default 10 Gbit/s), so that the qdisc work every datagram copy pays on the testbed is in the
/// measurement (TCP's 64 KiB GSO frames pay it once per frame, datagrams each).
fn meter_mbit() -> u32 {
    std::env::var("KABCAST_METER_MBIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
