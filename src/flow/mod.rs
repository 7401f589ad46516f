//! The per-worker flow table, TCP tracking, idle expiry and the recently-expired record.
//!
//! - [`key`]: [`FlowKey`] (IPv4 5-tuple) and its fast table hash; [`key6`]: [`FlowKey6`], the
//!   IPv6 5-tuple, hashed the same way.
//! - [`entry`]: [`FlowEntry`] (32 bytes: rewrite target, TCP state, RST numbers, timers) and the
//!   documented per-state timeouts; [`entry6`]: [`FlowEntry6`], the same with an IPv6 member.
//! - [`tcp`]: [`track`] / [`track_udp`], the state machine driven mostly by client packets.
//! - [`table`]: [`FlowTable`], fixed-capacity 16-way set-associative buckets, lossy insert with
//!   Ananta's trusted/untrusted eviction, amortised expiry; [`FlowTable6`] is the same table over
//!   IPv6 keys and entries (two cache lines a slot; the IPv4 layout is unchanged).
//! - [`snat`]: [`SnatTable`], one worker's outbound SNAT translations and port allocator.
//! - [`recent`]: [`RecentlyExpired`], a compact time-bounded record of expired keys
//!   (docs/design.md §3.7).
//!
//! Time is always a parameter (`now`, u32 seconds of the worker's coarse clock): nothing here reads
//! a clock, allocates after construction, or panics on packet input.

pub mod entry;
pub mod entry6;
pub mod key;
pub mod key6;
pub mod recent;
pub mod snat;
pub mod table;
pub mod tcp;

pub use entry::{FlowEntry, FlowFlags, FlowState, FlowSums};
pub use entry6::FlowEntry6;
pub use key::{FlowKey, HoldsKey, TableKey, DEFAULT_TABLE_SEED, PROTO_TCP, PROTO_UDP};
pub use key6::FlowKey6;
pub use recent::RecentlyExpired;
pub use snat::{NewTranslation, SnatError, SnatTable, Translation};
pub use table::{FlowTable, FlowTable6, InsertResult, SetTable, SlotId, TableEntry};
pub use tcp::{is_plain_ack, seq_after, tcp_flags, track, track_general, track_udp, Direction};
