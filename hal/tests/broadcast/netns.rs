//! The broadcast testbed: one network namespace per host, veth links to bridges in a switch
//! namespace (one bridge, or a core and leaf bridges joined by rate-limited uplinks: [`Topology`]),
//! every link direction rate-limited with `tc` (tbf), the server's link in the test's own namespace;
//! agents, `socat` and udpcast baselines run inside the host namespaces and write to tmpfs.
//! Everything is uniquely named and removed on drop (also on panic). Needs root and iproute2.

use crate::harness::{AgentProc, KAAGENT, Scratch, TokenFile, spawn_agent};
use crate::topology::{Topology, topology_order};
use hal::testing::process::{require, require_root, run};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// What needs root here.
const ROOT: &str = "the broadcast testbed (network namespaces, tc)";

/// A testbed of `hosts` namespaces behind one bridge (or leaf bridges), links limited to `mbit` Mbit/s.
pub struct Testbed {
    /// Host namespaces, in order.
    pub hosts: Vec<String>,
    /// How the hosts are wired.
    pub topology: Topology,
    switch: String,
    /// The server's interface (in the test's namespace).
    pub server_if: String,
    subnet: (u8, u8),
    /// Scratch tmpfs directory (per-host subdirectories `host-<i>`).
    pub scratch: Scratch,
    /// Each host's interface.
    pub host_ifs: Vec<String>,
}

impl Testbed {
    /// Creates the namespaces, links, bridge and rate limits (none when `mbit` is 0).
    pub fn new(hosts: usize, mbit: u32) -> Testbed {
        Testbed::with_slow_hosts(hosts, mbit, &[])
    }

    /// As [`Testbed::new`], host `i`'s link limited to `slow_mbit` (both ways) for each `(i, slow_mbit)`.
    pub fn with_slow_hosts(hosts: usize, mbit: u32, slow: &[(usize, u32)]) -> Testbed {
        Testbed::build(hosts, mbit, slow, Topology::Flat)
    }

    /// As [`Testbed::with_slow_hosts`], wired as `topology`.
    pub fn build(hosts: usize, mbit: u32, slow: &[(usize, u32)], topology: Topology) -> Testbed {
        require("ip", "iproute2");
        require("tc", "iproute2");
        require_root(ROOT);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let id = format!("{:x}{seq}", pid % 0xfffff);
        let subnet = (
            200 + (pid % 50) as u8,
            (seq * 17 + pid / 50 % 200) as u8 % 250,
        );
        let mut tb = Testbed {
            switch: format!("kbsw{id}"),
            server_if: format!("kbs{id}"),
            hosts: Vec::new(),
            topology,
            subnet,
            scratch: Scratch::new(&format!("testbed-{id}")),
            host_ifs: Vec::new(),
        };
        run(&["ip", "netns", "add", &tb.switch]);
        run(&[
            "ip", "-n", &tb.switch, "link", "add", "br0", "type", "bridge",
        ]);
        run(&["ip", "-n", &tb.switch, "link", "set", "br0", "up"]);
        // A switch does not run iptables: where `br_netfilter` is loaded it would filter every
        // bridged frame (a large share of the testbed's CPU). The setting is the switch namespace's
        // own; without the module the keys do not exist, which is fine.
        let _ = Command::new("ip")
            .args(["netns", "exec", &tb.switch, "sysctl", "-qw"])
            .args([
                "net.bridge.bridge-nf-call-iptables=0",
                "net.bridge.bridge-nf-call-ip6tables=0",
                "net.bridge.bridge-nf-call-arptables=0",
            ])
            .stderr(Stdio::null())
            .status();
        for (leaf, uplink_mbit) in topology.leaves() {
            tb.add_leaf(&id, leaf, uplink_mbit);
        }
        // The server: a veth from our namespace to the core bridge.
        let peer = format!("kbp{id}");
        run(&[
            "ip",
            "link",
            "add",
            &tb.server_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &tb.switch,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", tb.server_ip()),
            // With a broadcast address: udpcast's receivers send their hello to it.
            "brd",
            "+",
            "dev",
            &tb.server_if,
        ]);
        run(&["ip", "link", "set", &tb.server_if, "up"]);
        tb.limit(None, &tb.server_if.clone(), mbit);
        tb.attach("br0", &peer, mbit);
        for i in 0..hosts {
            let ns = format!("kbh{id}-{i}");
            run(&["ip", "netns", "add", &ns]);
            tb.hosts.push(ns.clone());
            let (inner, outer) = (format!("kbi{id}-{i}"), format!("kbo{id}-{i}"));
            run(&[
                "ip", "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", &outer,
                "netns", &tb.switch,
            ]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", tb.host_ip(i)),
                "brd",
                "+",
                "dev",
                &inner,
            ]);
            run(&["ip", "-n", &ns, "link", "set", &inner, "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let rate = slow.iter().find(|(h, _)| *h == i).map_or(mbit, |(_, r)| *r);
            tb.limit(Some(&ns), &inner, rate);
            tb.attach(&format!("br{}", topology.switch_of(i)), &outer, rate);
            tb.host_ifs.push(inner);
            std::fs::create_dir_all(tb.host_dir(i)).expect("host dir");
        }
        tb
    }

    /// Leaf bridge `br<leaf>` and its uplink to the core `br0`: a veth pair limited to
    /// `uplink_mbit` in each direction (each end's egress).
    fn add_leaf(&self, id: &str, leaf: u32, uplink_mbit: u32) {
        let bridge = format!("br{leaf}");
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "add",
            &bridge,
            "type",
            "bridge",
        ]);
        run(&["ip", "-n", &self.switch, "link", "set", &bridge, "up"]);
        let (core_end, leaf_end) = (format!("kbuc{id}-{leaf}"), format!("kbul{id}-{leaf}"));
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "add",
            &core_end,
            "type",
            "veth",
            "peer",
            "name",
            &leaf_end,
        ]);
        self.attach("br0", &core_end, uplink_mbit);
        self.attach(&bridge, &leaf_end, uplink_mbit);
    }

    /// The switch host `i` hangs off (0: the server's).
    pub fn switch_of(&self, i: usize) -> u32 {
        self.topology.switch_of(i)
    }

    /// Adds `ifname` (in the switch namespace) to `bridge`, rate-limited on its egress.
    fn attach(&self, bridge: &str, ifname: &str, mbit: u32) {
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            ifname,
            "master",
            bridge,
        ]);
        run(&["ip", "-n", &self.switch, "link", "set", ifname, "up"]);
        self.limit(Some(&self.switch.clone()), ifname, mbit);
    }

    /// Token-bucket limit on the egress of `ifname`; none when `mbit` is 0.
    fn limit(&self, ns: Option<&str>, ifname: &str, mbit: u32) {
        if mbit == 0 {
            return;
        }
        let rate = format!("{mbit}mbit");
        // Burst: 1 ms of traffic, and at least 128 KiB so that a 64 KiB TSO/GSO super-frame passes
        // whole, as through a NIC that segments in hardware. A smaller bucket makes tbf cut every
        // such frame into 1514-byte packets in software, and the per-packet cost (bridge, veth,
        // qdisc, timers) then makes the testbed CPU-bound far below its link rate. Queue up to 20 ms.
        let burst = format!(
            "{}",
            (u64::from(mbit) * 1_000_000 / 8 / 1000).max(128 * 1024)
        );
        let mut args = vec!["tc"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        args.extend([
            "qdisc", "add", "dev", ifname, "root", "tbf", "rate", &rate, "burst", &burst,
            "latency", "20ms",
        ]);
        run(&args);
    }

    /// TCP segments retransmitted so far by all hosts (their namespaces' `TcpRetransSegs`).
    pub fn retransmits(&self) -> u64 {
        self.hosts
            .iter()
            .filter_map(|ns| {
                let out = Command::new("ip")
                    .args(["netns", "exec", ns, "nstat", "-az", "TcpRetransSegs"])
                    .output()
                    .ok()?;
                String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
                    l.strip_prefix("TcpRetransSegs")?
                        .split_whitespace()
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
            })
            .sum()
    }

    /// The server's address.
    pub fn server_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, 1)
    }

    /// Host `i`'s address.
    pub fn host_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, 10 + i as u8)
    }

    /// Host `i`'s tmpfs directory.
    pub fn host_dir(&self, i: usize) -> PathBuf {
        self.scratch.0.join(format!("host-{i}"))
    }

    /// A command run inside host `i`'s namespace.
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[i], program]);
        c
    }

    /// Random loss of `percent` % of the UDP datagrams arriving at every host, each host on its own
    /// (an nftables `numgen random` rule in the host's namespace, after its link: the datagram used
    /// the link's rate; TCP is untouched). 0 removes the rule. Needs nftables (`nft`).
    pub fn set_loss(&self, percent: f64) {
        require("nft", "nftables");
        let per_10k = (percent * 100.0).round().clamp(0.0, 10_000.0) as u32;
        for (ns, inner) in self.hosts.iter().zip(&self.host_ifs) {
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", ns, "nft", "delete", "table", "ip", "kbloss",
                ])
                .stderr(Stdio::null())
                .status();
            // Each datagram lost on its own, as on a wire: the host's switch port cuts a sender's
            // segmentation-offload runs into datagrams (as a NIC would) before the loss rule.
            let outer = inner.replacen("kbi", "kbo", 1);
            let segs = if per_10k == 0 { "65535" } else { "1" };
            run(&[
                "ip",
                "-n",
                &self.switch,
                "link",
                "set",
                "dev",
                &outer,
                "gso_max_segs",
                segs,
            ]);
            if per_10k == 0 {
                continue;
            }
            let below = format!("{per_10k}");
            let nft = |args: &[&str]| {
                let mut c = vec!["ip", "netns", "exec", ns, "nft"];
                c.extend_from_slice(args);
                run(&c);
            };
            nft(&["add", "table", "ip", "kbloss"]);
            nft(&[
                "add",
                "chain",
                "ip",
                "kbloss",
                "pre",
                "{ type filter hook prerouting priority -300 ; }",
            ]);
            nft(&[
                "add", "rule", "ip", "kbloss", "pre", "meta", "l4proto", "udp", "numgen", "random",
                "mod", "10000", "<", &below, "drop",
            ]);
        }
    }

    /// Starts an agent in every host, writing under its host directory.
    pub fn start_agents(&self) -> Vec<AgentProc> {
        let token = TokenFile::in_dir(&self.scratch.0);
        (0..self.hosts.len())
            .map(|i| {
                let mut c = self.command(i, KAAGENT);
                c.arg("--root").arg(self.host_dir(i));
                spawn_agent(c, SocketAddr::from((self.host_ip(i), 25301)), &token)
            })
            .collect()
    }

    /// The practical limit of the testbed: a plain `socat | tee` chain of the first `n` hosts in
    /// topology order (no verification, no framing) moving `image`; returns its time (the last
    /// host's end), outputs in `<host>/plain.img`.
    pub fn plain_chain(&self, image: &Path, n: usize) -> Duration {
        self.plain_chain_ends(image, n)
            .into_iter()
            .max()
            .unwrap_or_default()
    }

    /// [`Testbed::plain_chain`], each host's end (its pipeline exited: everything written), in
    /// topology order, since the source started.
    pub fn plain_chain_ends(&self, image: &Path, n: usize) -> Vec<Duration> {
        require("socat", "socat");
        require_root(ROOT);
        let port = 25400;
        let order = topology_order(&self.topology, n);
        let mut procs: Vec<Killer> = Vec::new();
        for (k, &i) in order.iter().enumerate().rev() {
            let out = self.host_dir(i).join("plain.img");
            let script = if let Some(&next) = order.get(k + 1) {
                format!(
                    "socat -u TCP-LISTEN:{port},reuseaddr,rcvbuf=4194304 STDOUT | tee {} | socat -u STDIN TCP:{}:{port},sndbuf=4194304",
                    out.display(),
                    self.host_ip(next)
                )
            } else {
                format!(
                    "socat -u TCP-LISTEN:{port},reuseaddr,rcvbuf=4194304 CREATE:{}",
                    out.display()
                )
            };
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.hosts[i], "sh", "-c", &script])
                .stderr(Stdio::null());
            // The pipeline's shell runs in its own process group so that it can be killed whole.
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            procs.push(Killer(c.spawn().expect("start socat")));
            wait_listening(&self.hosts[i], port);
        }
        let start = Instant::now();
        let status = Command::new("socat")
            .args([
                "-u",
                &format!("FILE:{}", image.display()),
                &format!(
                    "TCP:{}:{port},sndbuf=4194304",
                    self.host_ip(order.first().copied().unwrap_or(0))
                ),
            ])
            .status()
            .expect("run socat");
        assert!(status.success(), "socat source failed");
        // Each host's end as it comes (polled every half millisecond; `procs` is in reverse order).
        let mut ends: Vec<Option<Duration>> = vec![None; procs.len()];
        while ends.iter().any(Option::is_none) {
            for (end, p) in ends.iter_mut().zip(procs.iter_mut().rev()) {
                if end.is_none() && !matches!(p.0.try_wait(), Ok(None)) {
                    *end = Some(start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        ends.into_iter().flatten().collect()
    }
}

impl Testbed {
    /// The host's own speed: `image` copied by `socat` from the server to each of the first `m`
    /// hosts at once (one hop each, outputs in `<host>/hop.img`, removed); returns the time of the
    /// slowest copy.
    pub fn parallel_hops(&self, image: &Path, m: usize) -> Duration {
        require("socat", "socat");
        let port = 25401;
        let mut sinks: Vec<Killer> = (0..m)
            .map(|i| {
                let out = self.host_dir(i).join("hop.img");
                let mut c = self.command(i, "socat");
                c.args(["-u", &format!("TCP-LISTEN:{port},reuseaddr,rcvbuf=4194304")])
                    .arg(format!("CREATE:{}", out.display()))
                    .stderr(Stdio::null());
                std::os::unix::process::CommandExt::process_group(&mut c, 0);
                let k = Killer(c.spawn().expect("start socat"));
                wait_listening(&self.hosts[i], port);
                k
            })
            .collect();
        let start = Instant::now();
        let mut sources: Vec<Killer> = (0..m)
            .map(|i| {
                let mut c = Command::new("socat");
                c.args(["-u", &format!("FILE:{}", image.display())])
                    .arg(format!("TCP:{}:{port},sndbuf=4194304", self.host_ip(i)));
                std::os::unix::process::CommandExt::process_group(&mut c, 0);
                Killer(c.spawn().expect("start socat"))
            })
            .collect();
        for p in sources.iter_mut().chain(sinks.iter_mut()) {
            let status = p.0.wait().expect("wait for socat");
            assert!(status.success(), "socat failed: {status}");
        }
        let t = start.elapsed();
        for i in 0..m {
            let _ = std::fs::remove_file(self.host_dir(i).join("hop.img"));
        }
        t
    }
}

/// Waits until something listens on `port` in namespace `ns`.
fn wait_listening(ns: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "ss",
                "-Hltn",
                &format!("sport = :{port}"),
            ])
            .output();
        if out.map(|o| !o.stdout.is_empty()).unwrap_or(false) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} in {ns}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a started process group (by its PID) on drop.
pub struct Killer(pub Child);

impl Drop for Killer {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.server_if])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
    }
}
