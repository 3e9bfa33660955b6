//! QEMU virtual machines of the lab: disks, NICs with the iPXE ROM, serial consoles and QMP.
