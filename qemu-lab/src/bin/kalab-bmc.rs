//! `kalab-bmc`: one lab BMC, an IPMI-over-LAN server driving one QEMU VM.

fn main() {}
