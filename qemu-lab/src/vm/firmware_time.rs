//! How long a firmware takes from power-on to its first network packet, measured on one throwaway VM
//! with the lab's CPU model and boot ROM (QEMU's user network with `restrict=on`: nothing leaves QEMU;
//! a `filter-dump` records the packets): the independent measurement that lets a prediction calibrated
//! on one firmware predict another (`kalab e2e --firmware uefi --sim-params <a BIOS run's>`).

use super::{Firmware, NicBoot, TCG_CPU};
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the first packet.
const LIMIT: Duration = Duration::from_secs(120);
/// A pcap file's global header: a longer file holds a packet.
const PCAP_HEADER: u64 = 24;

/// Power-on to the first packet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FirmwareTime {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Processor seconds QEMU used meanwhile.
    pub cpu: f64,
}

/// Why the measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareTimeError {
    /// QEMU could not start or exited.
    #[error("qemu-system-x86_64: {0}")]
    Qemu(String),
    /// No packet within the limit.
    #[error("no network packet within {0:?}")]
    Silent(Duration),
    /// The work directory could not be prepared.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Boots `firmware` with `nic` (TCG) in `dir` (created; left with the packet dump) until its first packet.
pub fn measure(
    firmware: Firmware,
    nic: NicBoot,
    dir: &Path,
) -> Result<FirmwareTime, FirmwareTimeError> {
    let io = |what: &str| {
        let what = format!("{what} {}", dir.display());
        move |e| FirmwareTimeError::Io(what, e)
    };
    std::fs::create_dir_all(dir).map_err(io("creating"))?;
    if firmware == Firmware::Uefi {
        std::fs::copy(super::OVMF_VARS, dir.join(super::VARS_FILE))
            .map_err(io("copying OVMF_VARS to"))?;
    }
    let pcap = dir.join("first-packet.pcap");
    let _ = std::fs::remove_file(&pcap);
    let mut args: Vec<String> = [
        // Named as `kalab e2e` looks for the lab's QEMUs ([`crate::quiet`]).
        "-name",
        "kalab-fwtime,process=kalab-fwtime",
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-cpu",
        TCG_CPU,
        "-smp",
        "1",
        "-m",
        "512",
        "-nodefaults",
        "-display",
        "none",
        "-netdev",
        "user,id=n0,restrict=on",
        "-object",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!(
        "filter-dump,id=f0,netdev=n0,file={}",
        pcap.display().to_string().replace(',', ",,")
    ));
    args.push("-device".into());
    args.push(format!(
        "virtio-net-pci,netdev=n0,bootindex=1{}",
        super::firmware::nic_rom_option(nic)
    ));
    args.extend(super::firmware::firmware_args(firmware, nic, dir));
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FirmwareTimeError::Qemu(e.to_string()))?;
    let result = loop {
        let size = std::fs::metadata(&pcap).map_or(0, |m| m.len());
        if size > PCAP_HEADER {
            let seconds = start.elapsed().as_secs_f64();
            let cpu = crate::timeline::pid_cpu_seconds(child.id()).unwrap_or(0.0);
            break Ok(FirmwareTime { seconds, cpu });
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(FirmwareTimeError::Qemu(format!("exited with {status}")));
        }
        if start.elapsed() > LIMIT {
            break Err(FirmwareTimeError::Silent(LIMIT));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}
