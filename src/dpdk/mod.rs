//! The DPDK FFI room: generated bindings, EAL, ports, queues, mempools and mbufs.
//!
//! One of the two rooms allowed `unsafe` (with [`crate::platform`]); everything else is safe
//! Rust. The pieces:
//! - [`Eal`]: `rte_eal_init` once per process, from a [`Profile`] or raw arguments.
//! - [`Mempool`]: a pktmbuf pool; [`Mbuf`]: one owned packet buffer, freed on drop.
//! - [`Burst`]: up to [`BURST`](crate::wire::BURST) mbufs in a fixed array, for the hot loop.
//! - [`Port`]: configure/start/stop/close, [`RxQueue`]/[`TxQueue`] handles, link, MAC, counters.
//! - [`FlowRules`]: `rte_flow` rules steering each flow to its owner's queue (NIC steering).
//! - [`link`]: the burst gate and link watch that keep the data path out of a port whose link
//!   is down (a memif peer that went away) and bring a memif client back.
//! - [`DpdkThread`]: a pinned `std::thread` registered as a DPDK thread.
//! - [`Eal`] also provides the time-stamp counter frequency DPDK calibrated, for
//!   [`crate::platform::TscClock`].
//!
//! CPU and OS primitives that do not need DPDK (prefetch, SIMD, clock, signals) live in
//! [`crate::platform`], the only other room allowed `unsafe`.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment.

mod eal;
mod error;
mod flow;
pub mod link;
mod mbuf;
mod mempool;
mod port;
pub mod profile;
mod sys;
mod thread;

pub use eal::Eal;
pub use error::{strerror, DpdkError};
pub use flow::FlowRules;
pub use mbuf::{Burst, Mbuf};
pub use mempool::Mempool;
pub use port::{
    port_by_name, port_count, port_name, port_queue_limits, rss_wanted, LinkStatus, Port,
    PortConfig, PortId, PortInfo, PortStats, QueueId, RxQueue, TxOutcome, TxQueue,
};
pub use profile::{
    HugepageMode, HugepageStatus, MemoryPlan, Profile, ProfileError, TAP_RX_DESCRIPTORS,
};
pub use thread::{DpdkThread, Lcore};
