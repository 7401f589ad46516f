//! vipmux: a DPDK-accelerated L4 load-balancer MUX appliance.
//!
//! The crate is laid out as the architecture: pure packet logic (`wire`, `balance`, `flow`,
//! `dataplane`) that works on byte buffers and never sees DPDK, the one `unsafe` FFI room
//! (`dpdk`), the threads that run (`runtime`: workers' poll loops, the slow-path thread and the
//! hub they share), and the appliance around them (`slowpath`, `appliance`, `control`, `pktgen`,
//! `cli`).

pub mod appliance;
pub mod balance;
pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod dpdk;
pub mod flow;
pub mod pktgen;
pub mod runtime;
pub mod slowpath;
pub mod wire;
