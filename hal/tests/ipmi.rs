//! IPMI tests: the native client and ipmitool against the lab BMC.
