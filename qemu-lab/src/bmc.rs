//! The lab BMC: an IPMI-over-LAN (RMCP+) server that powers one QEMU VM on, off and through cycles.
