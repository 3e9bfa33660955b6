//! Network boot services against real clients, inside network namespaces created and removed by each
//! test (root needed; `.ci/run` installs busybox-static, tftp-hpa, curl, qemu-system-x86, ipxe-qemu).

#[path = "netboot/conformance.rs"]
mod conformance;
#[path = "netboot/dhcp_attacks.rs"]
mod dhcp_attacks;
#[path = "netboot/http_attacks.rs"]
mod http_attacks;
#[path = "netboot/ns.rs"]
mod ns;
#[path = "netboot/qemu.rs"]
mod qemu;
#[path = "netboot/tftp_attacks.rs"]
mod tftp_attacks;

use ns::{Net, SERVER_IP, require};
use std::fs;

const NODE_MAC: &str = "52:54:00:12:34:56";

fn udhcpc_script(net: &Net) -> String {
    let script = net.dir.join("udhcpc.sh");
    let out = net.dir.join("lease.env");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip boot_file=$boot_file siaddr=$siaddr hostname=$hostname\" >> {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Runs busybox udhcpc once on the client side with `mac`; returns the `bound` line of the script.
fn udhcpc(net: &Net, mac: &str) -> String {
    net.exec_ok(
        &net.client,
        &["ip", "link", "set", "dev", &net.client_if, "address", mac],
    );
    let script = udhcpc_script(net);
    let _ = fs::remove_file(net.dir.join("lease.env"));
    let out = net.exec(
        &net.client,
        &[
            "busybox",
            "udhcpc",
            "-i",
            &net.client_if,
            "-f",
            "-q",
            "-n",
            "-t",
            "4",
            "-T",
            "1",
            "-s",
            &script,
            "-V",
            "PXEClient:Arch:00000:UNDI:002001",
        ],
    );
    let lease = fs::read_to_string(net.dir.join("lease.env")).unwrap_or_default();
    assert!(
        !lease.is_empty(),
        "udhcpc got no lease: {}{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        net.log("dhcp")
    );
    lease
}

fn dhcp_yaml(net: &Net, lease_file: &str) -> String {
    format!(
        "dhcp:\n  interface: {}\n  server_ip: {SERVER_IP}\n  lease_file: {lease_file}\n  domain: lab\n  \
         boot: {{bios: pxelinux.0, ipxe: http://{SERVER_IP}/boot.ipxe}}\n  pool: {{start: 10.77.0.100, end: 10.77.0.120}}\n  \
         hosts:\n    - {{mac: '{NODE_MAC}', ip: 10.77.0.11, hostname: node-1, boot: grub/grubpxe.0}}\n",
        net.server_if
    )
}

#[test]
fn udhcpc_gets_reservation_and_boot_file_and_leases_survive_restart() {
    require("busybox", "busybox-static");
    let mut net = Net::new("dhcp");
    let leases = net.dir.join("dhcp.leases").display().to_string();
    let yaml = dhcp_yaml(&net, &leases);
    let server = net.start_kabootd(&yaml, "dhcp");

    let reserved = udhcpc(&net, NODE_MAC);
    assert!(reserved.contains("ip=10.77.0.11 "), "{reserved}");
    assert!(reserved.contains("boot_file=grub/grubpxe.0 "), "{reserved}");
    assert!(
        reserved.contains(&format!("siaddr={SERVER_IP} ")),
        "{reserved}"
    );
    assert!(reserved.contains("hostname=node-1"), "{reserved}");

    let first = udhcpc(&net, "02:00:00:00:00:01");
    assert!(
        first.contains("ip=10.77.0.100 ") && first.contains("boot_file=pxelinux.0 "),
        "{first}"
    );

    net.stop(server);
    let journal = fs::read_to_string(&leases).unwrap();
    assert!(
        journal.contains("02:00:00:00:00:01") && journal.contains(NODE_MAC),
        "{journal}"
    );
    net.start_kabootd(&yaml, "dhcp");
    let second = udhcpc(&net, "02:00:00:00:00:02");
    assert!(
        second.contains("ip=10.77.0.101 "),
        "the restarted server reused a leased address: {second}"
    );
    let again = udhcpc(&net, "02:00:00:00:00:01");
    assert!(
        again.contains("ip=10.77.0.100 "),
        "lease lost across restart: {again}"
    );
}

fn tree(net: &Net) -> std::path::PathBuf {
    let root = net.dir.join("root");
    fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
    fs::write(net.dir.join("secret"), "secret").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("kernel"), &big).unwrap();
    fs::write(root.join("pxelinux.cfg/0A4D000B"), "DEFAULT local\n").unwrap();
    std::os::unix::fs::symlink(net.dir.join("secret"), root.join("escape")).unwrap();
    root
}

#[test]
fn tftp_hpa_and_curl_fetch_files_and_traversal_is_refused() {
    require("tftp", "tftp-hpa");
    require("curl", "curl");
    let mut net = Net::new("tftp");
    net.client_address("10.77.0.11/24");
    let root = tree(&net);
    let yaml = format!(
        "tftp:\n  interface: {}\n  root: {}\n",
        net.server_if,
        root.display()
    );
    net.start_kabootd(&yaml, "dhcp");
    let out = net.dir.join("out").display().to_string();

    net.exec_ok(
        &net.client,
        &[
            "tftp",
            "-m",
            "binary",
            SERVER_IP,
            "-c",
            "get",
            "pxelinux.cfg/0A4D000B",
            &out,
        ],
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "DEFAULT local\n");

    let curl = net.exec_ok(
        &net.client,
        &[
            "curl",
            "-sS",
            "--tftp-blksize",
            "1468",
            "-o",
            &out,
            "-w",
            "%{size_download}",
            &format!("tftp://{SERVER_IP}/kernel"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "3000000");
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(root.join("kernel")).unwrap()
    );
    let log = net.log("dhcp");
    assert!(
        log.contains("blksize=1468"),
        "blksize not negotiated:\n{log}"
    );

    for evil in [
        "../secret",
        "/../secret",
        "escape",
        "pxelinux.cfg/../../secret",
    ] {
        let r = net.exec(
            &net.client,
            &["tftp", "-m", "binary", SERVER_IP, "-c", "get", evil, &out],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(text.contains("Error code 2"), "{evil}: {text}");
    }
}

#[test]
fn curl_fetches_the_http_tree_with_range_and_etag() {
    require("curl", "curl");
    let mut net = Net::new("http");
    net.client_address("10.77.0.11/24");
    let root = tree(&net);
    let yaml = format!(
        "http:\n  listen: '0.0.0.0:80'\n  root: {}\n",
        root.display()
    );
    net.start_kabootd(&yaml, "http");
    let url = format!("http://{SERVER_IP}/kernel");
    let out = net.dir.join("range").display().to_string();
    let r = net.exec_ok(
        &net.client,
        &[
            "curl",
            "-sS",
            "-r",
            "1000-1999",
            "-o",
            &out,
            "-w",
            "%{http_code}",
            &url,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "206");
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(root.join("kernel")).unwrap()[1000..2000]
    );

    let head = net.exec_ok(&net.client, &["curl", "-sSI", &url]);
    let head = String::from_utf8_lossy(&head.stdout).to_string();
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("etag header")
        .trim()
        .to_string();
    let r = net.exec_ok(
        &net.client,
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("If-None-Match: {etag}"),
            &url,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "304");
    for evil in ["/../secret", "/%2e%2e/secret", "/escape"] {
        let r = net.exec_ok(
            &net.client,
            &[
                "curl",
                "-sS",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://{SERVER_IP}{evil}"),
            ],
        );
        assert_eq!(String::from_utf8_lossy(&r.stdout), "403", "{evil}");
    }
}

/// The whole chain: PxeWriter writes the node's iPXE profile, our DHCP hands the node's iPXE ROM that
/// profile (by TFTP), the profile loads kernel and initramfs over HTTP, the VM prints the marker.
///
/// TCG only (CI has no KVM). QEMU picks the iPXE ROM of `ipxe-qemu` itself: with an explicit
/// `romfile=` path, Debian's QEMU 7.2 does not expose it as an option ROM and SeaBIOS finds no
/// network boot entry. iPXE waits about 15 s for an IPv6 router advertisement before it loads the
/// profile, so the run takes about 25 s.
#[test]
fn qemu_ipxe_rom_boots_through_our_dhcp_tftp_http() {
    use hal::netboot::pxe::{PxeConfig, PxeMethod, PxeWriter};
    use hal::{BootProfile, NodeId, NodeInfo};
    require("qemu-system-x86_64", "qemu-system-x86");
    require("busybox", "busybox-static");
    require("cpio", "cpio");
    let rom = "/usr/lib/ipxe/qemu/efi-virtio.rom";
    assert!(
        std::path::Path::new(rom).exists(),
        "{rom} is missing: apt-get install -y ipxe-qemu"
    );
    let (kernel, initrd) = (qemu::kernel(), qemu::initramfs());

    let mut net = Net::new("qemu");
    let root = net.dir.join("root");
    fs::create_dir_all(root.join("ipxe.cfg")).unwrap();
    fs::copy(&kernel, root.join("vmlinuz")).unwrap();
    fs::copy(&initrd, root.join("initrd.img")).unwrap();
    let method =
        PxeMethod::new("IPXE", &root, None, "http", SERVER_IP, "ipxe.cfg", "ip_hex").unwrap();
    let node = NodeInfo {
        name: "node-1.lab".into(),
        address: "10.77.0.11".parse().unwrap(),
    };
    let writer = PxeWriter::new(PxeConfig::single(method, "userfiles"), vec![node]);
    let profile = BootProfile::DeployKernel {
        kernel: "vmlinuz".into(),
        initrd: "initrd.img".into(),
        params: "console=ttyS0 panic=-1 quiet".into(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt.block_on(hal::NetBoot::set_profile(&writer, &[NodeId(0)], &profile));
    assert!(out.failures().is_empty(), "{out:?}");

    // The VM's tap lives in the server namespace, which has no link to the client side here.
    let tap = format!("{}t", net.server_if);
    net.exec_ok(&net.server, &["ip", "tuntap", "add", &tap, "mode", "tap"]);
    net.exec_ok(
        &net.server,
        &[
            "ip",
            "addr",
            "del",
            &format!("{SERVER_IP}/24"),
            "dev",
            &net.server_if,
        ],
    );
    net.exec_ok(
        &net.server,
        &["ip", "addr", "add", &format!("{SERVER_IP}/24"), "dev", &tap],
    );
    net.exec_ok(&net.server, &["ip", "link", "set", &tap, "up"]);
    let yaml = format!(
        "dhcp:\n  interface: {tap}\n  server_ip: {SERVER_IP}\n  boot: {{bios: undionly.kpxe}}\n  \
         hosts:\n    - {{mac: '{NODE_MAC}', ip: 10.77.0.11, hostname: node-1, ipxe: ipxe.cfg/0A4D000B}}\n\
         tftp:\n  root: {root}\nhttp:\n  listen: '0.0.0.0:80'\n  root: {root}\n",
        root = root.display()
    );
    net.start_kabootd(&yaml, "boot");

    let serial = net.dir.join("serial.log");
    let bios = net.dir.join("bios.log");
    let qemu = net.spawn(
        &[
            "qemu-system-x86_64",
            "-machine",
            "accel=tcg",
            "-m",
            "384",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            &format!("file:{}", serial.display()),
            "-chardev",
            &format!("file,id=dbg,path={}", bios.display()),
            "-device",
            "isa-debugcon,iobase=0x402,chardev=dbg",
            "-boot",
            "n",
            "-netdev",
            &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={NODE_MAC}"),
        ],
        "qemu",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = fs::read_to_string(&serial).unwrap_or_default();
        if text.contains(qemu::MARKER) || net.exited(qemu) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    text = fs::read_to_string(&serial).unwrap_or(text);
    assert!(
        text.contains(qemu::MARKER),
        "no marker on the serial console.\nserial:\n{}\nservices:\n{}\nqemu:\n{}\nseabios:\n{}",
        tail(&text, 3000),
        net.log("boot"),
        net.log("qemu"),
        tail(&fs::read_to_string(&bios).unwrap_or_default(), 2000)
    );
}

/// The last `n` bytes of `text` (or a little more, to stay on a character boundary).
fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    &text[start..]
}
