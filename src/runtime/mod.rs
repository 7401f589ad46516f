//! The runtime room: the threads that run, and the hub they share.
//!
//! Everything here is a loop that owns a thread until the stop flag is set, or the state those
//! loops exchange. The pure rooms decide (what to do with a frame, a neighbour, a probe result);
//! the runtime carries those decisions out on DPDK queues:
//!
//! - [`worker`]: a forwarding worker's poll loop (rx burst -> pipeline -> tx burst), pinned to a
//!   core, with its expiry pacing, idle back-off and burst transmit helpers.
//! - [`slowpath`]: the slow-path thread's loop around the pure [`crate::slowpath::SlowPath`]:
//!   exceptions, the kernel TAPs, neighbours, health changes, reloads.
//! - [`forward`]: the testpmd-like forward loop of ports-only mode (no pipeline), the baseline
//!   the worker is measured against.
//! - [`synthetic`]: data path availability, the slow path's synthetic connections run by every
//!   worker.
//! - [`hub`]: what the threads and the control surfaces share ([`Shared`]).
//!
//! Bring-up (loading the configuration, opening ports and TAPs, spawning these threads,
//! supervising and shutting down) lives above, in `appliance`; nothing here reaches up into it
//! or into the command line.

pub mod capture;
pub mod forward;
pub mod hub;
pub mod slowpath;
pub mod synthetic;
pub mod worker;

pub use hub::{
    ExceptionItem, FlowListing, FlowRequest, ReloadRequest, Shared, TargetMeta, WorkerRuntime,
    WorkerSlot, COUNTER_PUBLISH_INTERVAL, EXCEPTION_QUEUE_DEPTH, MAX_FLOWS_PER_REQUEST,
};
pub use slowpath::{SlowPathThread, SlowTx};
pub use worker::Worker;
