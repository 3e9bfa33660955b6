//! Native IPMI-over-LAN power control (RMCP+, `ipmitool -I lanplus` compatible).
