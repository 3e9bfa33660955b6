//! `kalab`: bring a QEMU lab up, run an end-to-end deployment on it, tear it down.

fn main() {}
