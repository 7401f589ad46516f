//! The only `unsafe` room: generated DPDK bindings, EAL, ports, queues, mempools and mbufs.
//!
//! Everything above this module is safe Rust. The pieces:
//! - [`Eal`]: `rte_eal_init` once per process, from a [`Profile`] or raw arguments.
//! - [`Mempool`]: a pktmbuf pool; [`Mbuf`]: one owned packet buffer, freed on drop.
//! - [`Burst`]: up to [`BURST`](crate::wire::BURST) mbufs in a fixed array, for the hot loop.
//! - [`Port`]: configure/start/stop/close, [`RxQueue`]/[`TxQueue`] handles, link, MAC, counters.
//! - [`DpdkThread`]: a pinned `std::thread` registered as a DPDK thread.
//! - [`signal`]: SIGINT/SIGTERM as a stop flag.
//! - [`prefetch`](mod@prefetch): the safe cache-prefetch hint the packet path uses (`rte_prefetch0`).
//! - [`simd`]: the SSE2 signature compare of the flow tables.
//! - [`hugepage_hint`]: `madvise(MADV_HUGEPAGE)` for the large per-worker tables.
//! - [`tsc`]: the time-stamp counter as the poll loops' clock.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment.

mod eal;
mod error;
pub mod hugepage_hint;
mod mbuf;
mod mempool;
mod port;
pub mod prefetch;
pub mod profile;
pub mod signal;
pub mod simd;
mod sys;
mod thread;
pub mod tsc;

pub use eal::Eal;
pub use error::{strerror, DpdkError};
pub use mbuf::{Burst, Mbuf};
pub use mempool::Mempool;
pub use port::{
    port_by_name, port_count, port_name, port_queue_limits, rss_wanted, LinkStatus, Port,
    PortConfig, PortId, PortInfo, PortStats, QueueId, RxQueue, TxOutcome, TxQueue,
};
pub use prefetch::{prefetch, prefetch_at, prefetch_index};
pub use profile::{HugepageMode, HugepageStatus, MemoryPlan, Profile, ProfileError};
pub use thread::{DpdkThread, Lcore};
pub use tsc::TscClock;
