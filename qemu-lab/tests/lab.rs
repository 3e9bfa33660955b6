//! The lab's network and VMs for real (root, TCG): a namespace with a bridge and taps, `kabootd`
//! serving DHCP/TFTP/HTTP in it, two QEMU VMs PXE-booting a test kernel through QEMU's iPXE ROM,
//! their consoles and QMP; then teardown leaves no namespace and no QEMU. `.ci/run` installs
//! iproute2, qemu-system-x86, qemu-utils, ipxe-qemu, radvd, busybox-static and cpio; `kabootd` must be
//! built first (`cargo build -p hal --bin kabootd`).

#[path = "lab/guest.rs"]
mod guest;

use hal::testing::process::require;
use qemu_lab::net::{self, LabNet};
use qemu_lab::vm::{self, Accel, Vm, VmSpec};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 0);

/// The major version `qemu-system-x86_64 --version` prints ("QEMU emulator version 10.0.2 ...").
fn installed_qemu_major() -> u64 {
    let out = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .expect("qemu-system-x86_64 --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|word| *word != "version")
        .nth(1)
        .and_then(|version| version.split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no version in {text:?}"))
}

fn kabootd() -> PathBuf {
    let path = std::env::var_os("KABOOTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| guest::target_dir().join("debug/kabootd"));
    assert!(
        path.exists(),
        "{} is missing: cargo build -p hal --bin kabootd (or set KABOOTD)",
        path.display()
    );
    path
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kalab-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip_hex(ip: Ipv4Addr) -> String {
    ip.octets().iter().map(|o| format!("{o:02X}")).collect()
}

/// Writes the iPXE profiles of the nodes (deploy kernel = the test kernel) with hal's PxeWriter.
fn write_profiles(net: &LabNet, root: &Path, nodes: usize) {
    use hal::netboot::pxe::{PxeConfig, PxeMethod, PxeWriter};
    use hal::{BootProfile, NodeId, NodeInfo};
    std::fs::create_dir_all(root.join("ipxe.cfg")).unwrap();
    std::fs::copy(guest::kernel(), root.join("vmlinuz")).unwrap();
    std::fs::copy(guest::initramfs(), root.join("initrd.img")).unwrap();
    let server = net.server_ip().to_string();
    let method = PxeMethod::new("IPXE", root, None, "http", &server, "ipxe.cfg", "ip_hex").unwrap();
    let infos = (0..nodes)
        .map(|i| NodeInfo {
            name: format!("node-{}.lab", i + 1),
            address: net.node_ip(i).into(),
        })
        .collect();
    let writer = PxeWriter::new(PxeConfig::single(method, "userfiles"), infos);
    let profile = BootProfile::DeployKernel {
        kernel: "vmlinuz".into(),
        initrd: "initrd.img".into(),
        params: "console=ttyS0 panic=-1 quiet".into(),
    };
    let ids: Vec<NodeId> = (0..nodes as u32).map(NodeId).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt.block_on(hal::NetBoot::set_profile(&writer, &ids, &profile));
    assert!(out.failures().is_empty(), "{out:?}");
}

fn services_yaml(net: &LabNet, root: &Path, macs: &[String]) -> String {
    let mut hosts = String::new();
    for (i, mac) in macs.iter().enumerate() {
        let ip = net.node_ip(i);
        hosts.push_str(&format!(
            "    - {{mac: '{mac}', ip: {ip}, hostname: node-{}, ipxe: ipxe.cfg/{}}}\n",
            i + 1,
            ip_hex(ip)
        ));
    }
    format!(
        "dhcp:\n  interface: {}\n  server_ip: {}\n  domain: lab\n  boot: {{bios: undionly.kpxe}}\n  hosts:\n{hosts}\
         tftp:\n  root: {root}\nhttp:\n  listen: '0.0.0.0:80'\n  root: {root}\n",
        net.bridge(),
        net.server_ip(),
        root = root.display()
    )
}

fn count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Waits until every VM's console log holds `n` markers; returns the seconds each took.
fn wait_markers(vms: &[Vm], n: usize, timeout: Duration, diag: &dyn Fn() -> String) -> Vec<f64> {
    let start = Instant::now();
    let mut took = vec![None; vms.len()];
    while took.iter().any(Option::is_none) {
        for (i, vm) in vms.iter().enumerate() {
            if took[i].is_none() && count(&vm.console_log(), guest::MARKER) >= n {
                took[i] = Some(start.elapsed().as_secs_f64());
            }
        }
        if start.elapsed() > timeout {
            panic!("no marker #{n} after {timeout:?}: {took:?}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    took.into_iter().flatten().collect()
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if net::alive(pid) && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

#[test]
fn two_vms_pxe_boot_in_the_lab_namespace_and_teardown_leaves_nothing() {
    require("ip", "iproute2");
    require("qemu-system-x86_64", "qemu-system-x86");
    require("qemu-img", "qemu-utils");
    require("busybox", "busybox-static");
    require("cpio", "cpio");
    require("flock", "util-linux");
    require("radvd", "radvd");
    assert!(
        Path::new("/usr/lib/ipxe/qemu/efi-virtio.rom").exists(),
        "QEMU's iPXE ROM is missing: apt-get install -y ipxe-qemu"
    );
    let kabootd = kabootd();
    let probe = Instant::now();
    let accel = vm::probe_accel();
    eprintln!(
        "probe_accel: {accel:?} in {:?} (the test uses TCG)",
        probe.elapsed()
    );
    assert!(probe.elapsed() < Duration::from_secs(15));

    let scratch = Scratch::new("boot");
    let dir = scratch.0.clone();
    let net = LabNet::create("test", SUBNET, 2).expect("lab network");
    let ns = net.ns().to_string();
    assert!(net::list_namespaces().unwrap().contains(&ns));
    assert_eq!(net.server_ip(), Ipv4Addr::new(10, 250, 0, 1));
    assert_eq!(net.node_ip(1), Ipv4Addr::new(10, 250, 0, 12));
    assert_eq!(net.bmc_ip(1), Ipv4Addr::new(10, 250, 0, 202));
    let hosts = net
        .write_hosts(&[("node-1", net.node_ip(0)), ("node-1-bmc", net.bmc_ip(0))])
        .unwrap();
    assert!(hosts.starts_with("/etc/netns"));
    // Names resolve inside the namespace; the BMC address is local there.
    let out = net
        .command("getent")
        .args(["hosts", "node-1-bmc"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.250.0.201"),
        "{out:?}"
    );
    let out = net
        .command("ip")
        .args(["-4", "addr", "show", "dev", "br0"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        addrs.contains("10.250.0.1/24") && addrs.contains("10.250.0.202/32"),
        "{addrs}"
    );

    let root = dir.join("root");
    write_profiles(&net, &root, 2);
    let macs: Vec<String> = (0..2).map(vm::lab_mac).collect();
    let conf = dir.join("kabootd.yaml");
    std::fs::write(&conf, services_yaml(&net, &root, &macs)).unwrap();
    let log = dir.join("kabootd.log");
    let services = Reaped(
        net.command(&kabootd)
            .arg("-c")
            .arg(&conf)
            .env("RUST_LOG", "hal=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn kabootd"),
    );

    // Without router advertisements iPXE waits ~16 s for IPv6 at every boot.
    let _radvd = Reaped(net.spawn_router_advertiser(&dir).expect("radvd"));

    let vms: Vec<Vm> = (0..2)
        .map(|i| {
            let ext = if i == 0 { "raw" } else { "qcow2" };
            let spec = VmSpec {
                name: format!("node-{}", i + 1),
                mac: macs[i].clone(),
                tap: net.tap(i).to_string(),
                disk: dir.join(format!("disks/node-{}.{ext}", i + 1)),
                disk_size_mib: 64,
                memory_mib: 256,
                cpus: 1,
                accel: Accel::Tcg,
                dir: dir.join("vms"),
                firmware: vm::Firmware::Bios,
                nic_boot: vm::NicBoot::IpxeRom,
            };
            vm::create_disk(&spec.disk, spec.disk_size_mib).unwrap();
            let script = vm::write_start_script(&spec, &net).unwrap();
            assert_eq!(script, spec.vm_dir().join("start.sh"));
            Vm::new(spec)
        })
        .collect();
    let diag = || {
        let mut s = format!("kabootd:\n{}\n", tail(&log, 3000));
        for vm in &vms {
            s.push_str(&format!(
                "{} console:\n{}\nbios:\n{}\n",
                vm.spec().name,
                tail(&vm.console_log(), 2000),
                tail(&vm.spec().vm_dir().join("bios.log"), 1500)
            ));
        }
        s
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut pids = Vec::new();
    for vm in &vms {
        let started = Instant::now();
        pids.push(vm.start().unwrap_or_else(|e| panic!("{e}\n{}", diag())));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "start.sh did not return promptly"
        );
    }
    // start.sh is idempotent: a second run while QEMU runs keeps the same process.
    assert_eq!(vms[0].start().unwrap(), pids[0]);

    let took = wait_markers(&vms, 1, Duration::from_secs(240), &diag);
    eprintln!("TCG: marker after {took:?} s (both VMs started together)");

    // The serial console is interactive through console.sock.
    let mut console = std::os::unix::net::UnixStream::connect(vms[0].console_socket()).unwrap();
    console
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    console.write_all(b"\necho CONSOLE-$((6*7))\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while !seen.contains("CONSOLE-42") {
        assert!(
            Instant::now() < deadline,
            "no shell answer on console.sock: {seen:?}"
        );
        let mut buf = [0u8; 4096];
        match console.read(&mut buf) {
            Ok(0) => panic!("console closed: {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("console: {e}"),
        }
    }
    drop(console);

    // QMP: status, then quit node-2.
    let mut qmp = vms[1].qmp(Duration::from_secs(10)).unwrap();
    // QMP reports the version of the binary that runs the VM, whichever it is.
    assert_eq!(qmp.version()["qemu"]["major"], installed_qemu_major());
    assert_eq!(qmp.query_status().unwrap(), "running");
    qmp.quit().unwrap();
    assert!(
        net::wait_gone(&[pids[1]], Duration::from_secs(10)),
        "QEMU ignored quit"
    );
    assert!(!vms[1].is_running());

    // A reset PXE-boots again (every boot is a network boot).
    let mut qmp = vms[0].qmp(Duration::from_secs(10)).unwrap();
    qmp.system_reset().unwrap();
    drop(qmp);
    let again = wait_markers(&vms[..1], 2, Duration::from_secs(180), &diag);
    eprintln!("TCG: marker after reset in {again:?} s");
    assert_eq!(vms[0].pid(), Some(pids[0]));

    // node-1 still runs: dropping the lab kills it with the namespace.
    drop(services);
    drop(net);
    assert!(
        !net::list_namespaces().unwrap().contains(&ns),
        "namespace {ns} survived"
    );
    assert!(!Path::new("/etc/netns").join(&ns).exists());
    assert!(!net::alive(pids[0]), "QEMU {} survived the lab", pids[0]);
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "processes survived: {left:?}");
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_creators_only() {
    require("ip", "iproute2");
    let live = LabNet::create("live", SUBNET, 0).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let stale = format!("{}{dead_pid}-stale", net::NS_PREFIX);
    let ok = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(ok.success());
    let removed = net::cleanup_stale().unwrap();
    let names = net::list_namespaces().unwrap();
    let stale_left = names.contains(&stale);
    if stale_left {
        let _ = Command::new("ip").args(["netns", "del", &stale]).status();
    }
    assert!(removed.contains(&stale) && !stale_left, "{removed:?}");
    assert!(
        names.contains(&live.ns().to_string()),
        "the live lab was removed"
    );
    assert!(!removed.contains(&live.ns().to_string()));
}

/// Not a test on its own: the child of `sigterm_tears_the_lab_down`.
#[test]
#[ignore = "run by sigterm_tears_the_lab_down"]
fn signal_child() {
    if std::env::var_os("KALAB_SIGNAL_CHILD").is_none() {
        return;
    }
    let net = LabNet::create("sig", SUBNET, 1).unwrap();
    net::install_signal_cleanup().unwrap();
    let inside = Reaped(net.command("sleep").arg("1000").spawn().unwrap());
    let outside = Reaped(Command::new("sleep").arg("1001").spawn().unwrap());
    net::register_pid(outside.0.id());
    println!("READY {} {} {}", net.ns(), inside.0.id(), outside.0.id());
    std::thread::sleep(Duration::from_secs(60));
    panic!("no signal came");
}

#[test]
fn sigterm_tears_the_lab_down() {
    require("ip", "iproute2");
    let mut child = Reaped(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "signal_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KALAB_SIGNAL_CHILD", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let ready = loop {
        let line = lines.next().expect("child exited early").unwrap();
        // libtest prints `test signal_child ... ` on the same line.
        if let Some((_, rest)) = line.split_once("READY ") {
            break rest.to_string();
        }
    };
    let fields: Vec<&str> = ready.split(' ').collect();
    let (ns, inside, outside): (&str, u32, u32) = (
        fields[0],
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
    );
    assert!(net::list_namespaces().unwrap().contains(&ns.to_string()));
    assert!(net::signal(child.0.id(), "TERM"));
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status}");
    assert!(
        !net::list_namespaces().unwrap().contains(&ns.to_string()),
        "{ns} survived"
    );
    assert!(!net::alive(inside), "the namespace's sleep survived");
    assert!(!net::alive(outside), "the registered sleep survived");
}
