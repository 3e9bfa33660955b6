//! Choosing the accelerator: KVM only when `/dev/kvm` opens and a short KVM run of QEMU works.

use super::Accel;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// [`Accel::Kvm`] when `/dev/kvm` opens read-write and `qemu-system-x86_64 -accel kvm` with the
/// lab's KVM CPU model ([`super::KVM_CPU`]) runs SeaBIOS for a second and reports `running` on its monitor, all within five seconds; else
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
    match kvm_run_works() {
        Ok(()) => Accel::Kvm,
        Err(why) => {
            tracing::info!(why, "KVM probe failed: TCG");
            Accel::Tcg
        }
    }
}

fn kvm_run_works() -> Result<(), String> {
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
            "-monitor",
            "stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    std::thread::sleep(Duration::from_secs(1));
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means QEMU already exited; its status says why.
        let _ = stdin.write_all(b"info status\nquit\n");
    }
    let deadline = Instant::now() + Duration::from_secs(4);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("QEMU did not quit within 5 s".into());
            }
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if status.success() && out.contains("VM status: running") {
        Ok(())
    } else {
        Err(format!("{status}: {}", err.trim()))
    }
}
