//! vipmux: a DPDK-accelerated L4 load-balancer MUX appliance.
//!
//! The crate is laid out as the architecture: pure packet logic (`wire`, `config`, `balance`,
//! `flow`, `dataplane`) that works on byte buffers and never sees DPDK; the two rooms allowed
//! `unsafe` (`dpdk`, the FFI to DPDK, and `platform`, CPU and OS primitives such as prefetch and
//! the time-stamp counter); the threads that run (`runtime`: workers' poll loops, the slow-path
//! thread and the hub they share); and the appliance around them (`slowpath`, `appliance`,
//! `control`, `pktgen`, `cli`). `tests/architecture.rs` checks these boundaries.

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod appliance;
pub mod balance;
pub mod bgp;
pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
#[allow(unsafe_code)]
pub mod dpdk;
pub mod flow;
pub mod pktgen;
#[allow(unsafe_code)]
pub mod platform;
pub mod runtime;
pub mod slowpath;
pub mod wire;
