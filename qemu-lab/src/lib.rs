//! The QEMU lab: a virtual cluster of QEMU VMs, each with a BMC, in a network namespace, deployed by the
//! real `kadeploy3d` through real DHCP, TFTP/HTTP, IPMI, SSH and the broadcast engine.

pub mod bmc;
pub mod boot;
pub mod calibrate;
pub mod device;
pub mod e2e;
pub mod e2e_power;
pub mod host_speed;
pub mod images;
pub mod lab;
pub mod net;
pub mod pdu;
pub mod qmp;
pub mod quiet;
pub mod redfish;
pub mod site_config;
pub mod timeline;
pub mod tools;
pub mod user_env;
pub mod vm;
