//! The slow-path control thread: exception path, ARP/neighbours, probes, ICMP, fragments, reload.

pub mod probe;
