//! Choosing the accelerator: KVM only when `/dev/kvm` opens and QEMU's iPXE ROM runs to its end
//! under KVM (on some nested hosts SeaBIOS runs but iPXE hangs).

use super::Accel;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the KVM probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(12);
/// What SeaBIOS prints on its debug port once the iPXE ROM gave up and returned.
const ROM_DONE: &str = "No bootable device";

/// [`Accel::Kvm`] when `/dev/kvm` opens read-write and a KVM QEMU with the lab's CPU model
/// ([`super::KVM_CPU`]) network-boots through the iPXE ROM to SeaBIOS's "No bootable device"
/// within 12 s (QEMU's internal `-netdev user,restrict=on`: no traffic leaves QEMU); else
/// [`Accel::Tcg`].
pub fn probe_accel() -> Accel {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    if let Err(e) = opened {
        tracing::info!(error = %e, "/dev/kvm unusable: TCG");
        return Accel::Tcg;
    }
    match kvm_boot_works() {
        Ok(took) => {
            tracing::info!(?took, "KVM probe passed");
            Accel::Kvm
        }
        Err(why) => {
            tracing::info!(why, "KVM probe failed: TCG");
            Accel::Tcg
        }
    }
}

fn kvm_boot_works() -> Result<Duration, String> {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc",
            "-accel",
            "kvm",
            "-cpu",
            super::script::KVM_CPU,
            "-m",
            "64",
            "-nodefaults",
            "-display",
            "none",
            "-netdev",
            "user,id=n0,restrict=on,ipv6=on",
            "-device",
            "virtio-net-pci,netdev=n0,bootindex=1",
            "-chardev",
            "stdio,id=dbg",
            "-device",
            "isa-debugcon,iobase=0x402,chardev=dbg",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.contains(ROM_DONE) {
                let _ = tx.send(());
                break;
            }
        }
    });
    let done = rx.recv_timeout(PROBE_TIMEOUT);
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    match done {
        Ok(()) => Ok(start.elapsed()),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the iPXE ROM did not finish within {PROBE_TIMEOUT:?} {}",
            err.trim()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("QEMU exited: {}", err.trim())),
    }
}
