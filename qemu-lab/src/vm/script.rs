//! The QEMU command line of a lab VM and its `start.sh`, which starts QEMU daemonized inside the
//! lab namespace and returns at once when this VM's QEMU already runs.

use super::{Accel, VmSpec};

/// Quotes `s` for a POSIX shell (single quotes).
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The CPU model under KVM: the host's, without `arch-capabilities` (nested KVM on AMD hosts
/// refuses MSR 0x10a and QEMU 7.2 aborts with plain `-cpu host`).
pub const KVM_CPU: &str = "host,arch-capabilities=off";
/// The CPU model under TCG: every feature TCG emulates; RDRAND among them seeds the guests' random
/// generator at once (with `qemu64` the deploy kernel's init waited on entropy for dropbear's host
/// keys: 2.5 s instead of 1.4 s from init to ready, and 7.6 instead of 7.1 processor seconds per boot).
pub const TCG_CPU: &str = "max";

/// Doubles commas, QEMU's escape inside `-drive`/`-chardev` option values.
fn qemu_escape(path: &std::path::Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// The `qemu-system-x86_64` arguments (without the program) of `spec`: PXE first through QEMU's
/// own iPXE ROM (never an explicit `romfile=`: Debian's QEMU 7.2 then shows no boot entry), then
/// the virtio disk; the firmware's arguments ([`super::Firmware`], [`super::NicBoot`]); serial console on `console.sock` logged to `console.log`; QMP on `qmp.sock`;
/// SeaBIOS debug output in `bios.log`; no display, no default devices; daemonized with a pidfile.
pub fn qemu_args(spec: &VmSpec) -> Vec<String> {
    let dir = spec.vm_dir();
    let p = |name: &str| qemu_escape(&dir.join(name));
    let (accel, cpu) = match spec.accel {
        Accel::Tcg => ("tcg", TCG_CPU),
        Accel::Kvm => ("kvm", KVM_CPU),
    };
    let format = super::disk::DiskFormat::of(&spec.disk).as_str();
    let firmware = super::firmware::firmware_args(spec.firmware, spec.nic_boot, &dir);
    let rom = super::firmware::nic_rom_option(spec.nic_boot);
    let mut args: Vec<String> = [
        "-name",
        &format!("{},process=kalab-{}", spec.name, spec.name),
        "-machine",
        "pc",
        "-accel",
        accel,
        "-cpu",
        cpu,
        "-smp",
        &spec.cpus.to_string(),
        "-m",
        &spec.memory_mib.to_string(),
        "-nodefaults",
        "-display",
        "none",
        "-netdev",
        &format!("tap,id=net0,ifname={},script=no,downscript=no", spec.tap),
        "-device",
        &format!(
            "virtio-net-pci,netdev=net0,mac={},bootindex=1{rom}",
            spec.mac
        ),
        "-drive",
        &format!(
            "file={},if=none,id=disk0,format={format},cache=unsafe,discard=unmap",
            qemu_escape(&spec.disk)
        ),
        "-device",
        "virtio-blk-pci,drive=disk0,bootindex=2",
        "-chardev",
        &format!(
            "socket,id=console0,path={},server=on,wait=off,logfile={},logappend=on",
            p("console.sock"),
            p("console.log")
        ),
        "-serial",
        "chardev:console0",
        "-qmp",
        &format!("unix:{},server=on,wait=off", p("qmp.sock")),
        "-chardev",
        &format!("file,id=bios0,path={}", p("bios.log")),
        "-device",
        "isa-debugcon,iobase=0x402,chardev=bios0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(firmware);
    args.extend([
        "-daemonize".to_string(),
        "-pidfile".to_string(),
        dir.join("qemu.pid").display().to_string(),
    ]);
    args
}

/// The text of `start.sh` for `spec` in namespace `ns`. Runs serialised by `flock` on
/// `start.lock`; exits 0 at once when the pidfile names a live QEMU of this VM; otherwise removes
/// stale sockets and starts QEMU, returning once it is daemonized (QEMU's errors on stderr). With
/// `KALAB_START_PAUSED` set, QEMU starts with its processors stopped (`-S`) until QMP `cont` (the BMC
/// sets the boot order of a boot override first).
pub fn start_script(spec: &VmSpec, ns: &str) -> String {
    let dir = sh_quote(&spec.vm_dir().display().to_string());
    let mut args = String::new();
    let mut it = qemu_args(spec).into_iter().peekable();
    while let Some(arg) = it.next() {
        args.push_str(" \\\n  ");
        args.push_str(&sh_quote(&arg));
        if arg.starts_with('-')
            && let Some(value) = it.next_if(|v| !v.starts_with('-'))
        {
            args.push(' ');
            args.push_str(&sh_quote(&value));
        }
    }
    format!(
        r#"#!/bin/sh
# Starts lab VM {name} (QEMU daemonized in namespace {ns}); written by qemu_lab::vm.
# Idempotent: returns 0 at once while this VM's QEMU runs.
set -eu
dir={dir}
pidfile="$dir/qemu.pid"
exec 9>"$dir/start.lock"
flock -w 60 9
if [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qxF -- "$pidfile"; then
    exit 0
  fi
fi
rm -f "$pidfile" "$dir/console.sock" "$dir/qmp.sock"
{vars}ip netns exec {ns_q} qemu-system-x86_64 ${{KALAB_START_PAUSED:+-S}}{args} 9>&-
"#,
        name = spec.name,
        ns_q = sh_quote(ns),
        vars = match spec.firmware {
            super::Firmware::Bios => String::new(),
            super::Firmware::Uefi => format!(
                "[ -s \"$dir/{vars}\" ] || cp {template} \"$dir/{vars}\"\n",
                vars = super::firmware::VARS_FILE,
                template = sh_quote(super::firmware::OVMF_VARS),
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> VmSpec {
        VmSpec {
            name: "node-1".into(),
            mac: "52:54:00:1a:00:00".into(),
            tap: "tap0".into(),
            disk: PathBuf::from("/lab/disks/a,b.qcow2"),
            disk_size_mib: 64,
            memory_mib: 256,
            cpus: 2,
            accel: Accel::Tcg,
            dir: PathBuf::from("/lab dir/vms"),
            firmware: super::super::Firmware::Bios,
            nic_boot: super::super::NicBoot::IpxeRom,
        }
    }

    #[test]
    fn sh_quote_survives_the_shell() {
        for s in ["plain/path", "with space", "it's", "$HOME `x` \"q\"", ""] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", sh_quote(s))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }

    #[test]
    fn args_boot_the_network_first_with_qemus_own_rom() {
        let args = qemu_args(&spec()).join(" ");
        assert!(args.contains("virtio-net-pci,netdev=net0,mac=52:54:00:1a:00:00,bootindex=1"));
        assert!(args.contains("virtio-blk-pci,drive=disk0,bootindex=2"));
        assert!(args.contains("file=/lab/disks/a,,b.qcow2,if=none,id=disk0,format=qcow2"));
        assert!(args.contains("-accel tcg -cpu max -smp 2 -m 256 -nodefaults"));
        assert!(args.contains("path=/lab dir/vms/node-1/console.sock,server=on,wait=off"));
        assert!(args.contains("logfile=/lab dir/vms/node-1/console.log,logappend=on"));
        assert!(args.contains("-qmp unix:/lab dir/vms/node-1/qmp.sock,server=on,wait=off"));
        assert!(args.ends_with("-daemonize -pidfile /lab dir/vms/node-1/qemu.pid"));
        assert!(!args.contains("romfile"));
    }

    #[test]
    fn uefi_vms_boot_ovmf_with_their_own_variables_and_no_rom() {
        let mut uefi = spec();
        uefi.firmware = super::super::Firmware::Uefi;
        uefi.nic_boot = super::super::NicBoot::UefiPxe;
        let args = qemu_args(&uefi).join(" ");
        assert!(args.contains("mac=52:54:00:1a:00:00,bootindex=1,romfile= "));
        assert!(args.contains("if=pflash,format=raw,unit=1,file=/lab dir/vms/node-1/OVMF_VARS.fd"));
        assert!(args.ends_with("-daemonize -pidfile /lab dir/vms/node-1/qemu.pid"));
        let text = start_script(&uefi, "kalab-1-x");
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &text])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(text.contains(
            "[ -s \"$dir/OVMF_VARS.fd\" ] || cp /usr/share/OVMF/OVMF_VARS_4M.fd \"$dir/OVMF_VARS.fd\"\nip netns exec"
        ));
        assert!(!start_script(&spec(), "kalab-1-x").contains("OVMF"));
    }

    #[test]
    fn the_script_parses_and_runs_qemu_in_the_namespace() {
        let text = start_script(&spec(), "kalab-1-x");
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &text])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("dir='/lab dir/vms/node-1'\n"));
        assert!(text.contains(
            "ip netns exec kalab-1-x qemu-system-x86_64 ${KALAB_START_PAUSED:+-S} \\\n  -name "
        ));
        assert!(text.contains("\\\n  -pidfile '/lab dir/vms/node-1/qemu.pid' 9>&-\n"));
    }
}
