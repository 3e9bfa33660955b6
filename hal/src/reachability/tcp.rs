//! Reachability by TCP connection probes to the nodes' addresses.
