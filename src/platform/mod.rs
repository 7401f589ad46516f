//! CPU and OS primitives the pure rooms and the poll loops use: cache-prefetch hints, the SIMD
//! signature compare, the time-stamp counter clock, the transparent-huge-page hint and the
//! signal flags.
//!
//! Nothing here knows DPDK, so the pure rooms may use the CPU hints ([`prefetch`](mod@prefetch),
//! [`simd`], [`hugepage_hint`]) without depending on the I/O rooms. This is the second and last
//! room allowed `unsafe` (with `dpdk`): `core::arch` intrinsics, `madvise` and signal registration
//! are `unsafe` to call, and each block here carries a `// SAFETY:` comment.
//!
//! - [`prefetch`](mod@prefetch): the safe cache-prefetch hints the packet path uses (`prefetcht0`;
//!   `prefetchw`, where the CPU has it, for a line it is about to write).
//! - [`simd`]: the SSE2 signature compare of the flow tables.
//! - [`hugepage_hint`]: `madvise(MADV_HUGEPAGE)` for the large per-worker tables.
//! - [`tsc`]: the time-stamp counter as the poll loops' clock.
//! - [`signal`]: SIGINT/SIGTERM as a stop flag, SIGHUP as a reload request.
//! - [`spsc`](mod@spsc): the bounded single-producer single-consumer ring of the workers' hand-off.

pub mod hugepage_hint;
pub mod prefetch;
pub mod signal;
pub mod simd;
pub mod spsc;
pub mod tsc;

pub use prefetch::{prefetch, prefetch_at, prefetch_index, prefetch_ptr, WriteHint};
pub use spsc::{spsc, SpscConsumer, SpscProducer};
pub use tsc::{TscClock, TscFrequency};
