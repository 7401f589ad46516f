//! The per-packet pipeline: classify, look up, decide, rewrite; drop reasons and counters.
//!
//! Pure and I/O-free (docs/architecture.md §2, rule 1): it works on
//! [`PacketBuf`](crate::wire::PacketBuf) frames, an immutable [`View`] (configuration snapshot,
//! neighbour map, port table) and a time `now` in seconds; a DPDK worker drives it with mbufs,
//! tests with `VecBuf`s.
//!
//! - [`reason`]: [`DropReason`] and [`Exception`], one enum each, one counter and one name per
//!   kind (the `reasons!` macro).
//! - [`counters`]: [`WorkerCounters`], plain per-worker integers.
//! - [`classify`]: Ethernet/802.1Q/IPv4/L4 parsing into a [`classify::Meta`] or an early verdict;
//!   [`classify6`]: the same for IPv6 frames (extension-header walk, ICMPv6 and Neighbour
//!   Discovery), into a [`classify6::Meta6`].
//! - [`neighbours`]: [`NeighbourMap`], the published ip -> MAC map next hops are resolved in.
//! - [`route`]: next hops toward members (cached per member) and clients.
//! - [`rewrite`]: NAT, reverse NAT, floating IP by MAC rewrite, IPIP and GUE, TTL, MTU;
//!   [`rewrite6`]: NAT66, its reverse, MAC rewrite, IPv6-in-IPv6 and GUE over IPv6, hop limit,
//!   MTU (Packet Too Big).
//! - [`pipeline`]: [`Pipeline`], the burst loop and the decisions below (docs/design.md
//!   §3.3–3.8); [`established`]: its loop for plain ACKs of known flows, run first;
//!   [`pipeline6`]: the same decisions for IPv6 frames (their own flow table).
//! - [`expiry`]: the idle sweep and the RST pair of `enable_tcp_reset`; [`expiry6`]: the RST
//!   pair of an IPv6 flow.
//! - [`snat`]: outbound SNAT of members' connections and their replies (docs/design.md §3.5.6).
//! - [`synthetic`]: the synthetic connection of data path availability (`VipAvailability`).
//! - [`icmp_error`]: ICMP errors about a flow, sent on to its member or client (docs/design.md
//!   §4.4); [`icmp_error6`]: the quote of an ICMPv6 error and the rewrites that deliver it.
//!
//! # A burst (VPP `lb` node style)
//!
//! 1. classify every frame; exceptions and malformed frames get their verdict at once; for the
//!    rest, build the flow key, hash it (the per-worker table hash, not the distribution hash)
//!    and prefetch its home slot at once;
//! 2. look the whole burst up (the lookup prefetches each candidate slot, or the free slot a new
//!    flow will take, before comparing any key);
//! 3. per packet: known flow → refresh/track and rewrite; miss → rule lookup, NAT reply
//!    (stateless, any worker), new flow (Maglev over eligible members with the rule's seeded
//!    distribution hash), recently expired, or `missing_flow`; then rewrite and pick the next hop.
//!
//! Nothing on this path allocates, locks, makes a syscall, logs or panics; counters are plain
//! integers. Memory is allocated in [`Pipeline::new`] (flow table, recently-expired record,
//! scratch) and, between bursts, when a snapshot with more rules/members than ever arrives (counter
//! and next-hop cache vectors grow).
//!
//! # Decisions (docs/design.md §3.3–3.8)
//!
//! - New flow: TCP SYN (without ACK) or any UDP packet (or any packet of another protocol to an
//!   HA-ports rule); member = `Snapshot::choose(rule, dst_port, flow_hash(hash_seed, distribution,
//!   5-tuple))`. None → `no_healthy_backend` (with `no_healthy_backends = "all"` the snapshot already
//!   counts every non-admin-down member as eligible).
//! - Non-SYN TCP miss: recently expired here → `idle_expired`; else `missing_flow = "rehash"` creates
//!   the flow from the hash (established connections survive a MUX restart or an ECMP move), or
//!   `"drop"` → `no_flow`.
//! - Known flow: refreshed and tracked (`flow::track`). TCP keeps its member even when the member is
//!   no longer eligible (probe down, admin down, all down). A UDP flow whose member is no longer
//!   eligible moves to a newly chosen eligible member on its next packet, or is dropped
//!   (`no_healthy_backend`) when there is none. A flow whose member left the configuration is
//!   re-chosen (TCP and UDP). A flow whose rule disappeared is dropped (`no_rule`). A SYN on a
//!   closed or closing TCP entry (a new connection reusing the 5-tuple) keeps the member only
//!   while it is eligible, else it is re-chosen like a new flow.
//! - Table full (bucket of established flows): forwarded to the hashed member without state,
//!   counted `flow_table_full` (an event, not a drop); the table evicts half-open/untrusted
//!   entries first.
//! - A flow found expired on lookup (before the sweep reached it) is removed, recorded as recently
//!   expired and its RSTs (if due) are queued for the next [`Pipeline::expire`]; the packet is then
//!   handled as a miss (a late non-SYN packet is `idle_expired`).
//! - Packets from a member that are not NAT replies: translated by the outbound rule that covers
//!   the member for the packet's protocol (see [`snat`]); `no_outbound_rule` when no rule covers
//!   it but the configuration has outbound rules, else `no_rule`.
//!
//! # What keeps the burst cheap
//!
//! - Plain IPv4 TCP without options or VLAN tag, the common case, is classified in one pass
//!   straight into the burst's `Meta` array; everything else takes the general path.
//! - Each packet's flow key is hashed and its home slot prefetched as it is classified, and no
//!   slot is read before the whole burst is classified: the classification of the later packets
//!   overlaps the first slots' memory latency (see [`crate::flow::FlowTable`]).
//! - The burst's leading plain ACKs of known, checked flows (most of the traffic) are decided first
//!   by [`established`], a loop without the general path's other cases; the general decision takes
//!   the burst from the first packet the lane does not take, so a flow's packets keep their order.
//! - The NAT rewrite of a known flow has an inlined fast path over fixed-size header views; the
//!   next hop is borrowed from a per-member cache (it carries the egress MTU), not copied.
//! - While nothing was inserted in a burst, burst hits need no second key compare; a burst
//!   lookup miss is looked up again only when an insert of the burst may have stored its key
//!   (a 64-bit mask of the inserted keys' hash bits, so a burst of SYNs probes the table once each).
//! - Verdicts are counted where they are decided, in plain per-worker integers.
//!
//! How to measure it: the criterion bench `pipeline` (established flows at several table sizes,
//! and the new-flow path) gives time per packet; `examples/pipeline_ir` runs the same workload
//! for instruction counts under callgrind, which stay repeatable on a loaded machine. Results and
//! their history are in benches/README.md.
//!
//! Memory: a flow-table slot is 68 bytes (a 64-byte line + 4 of signature) and the table rounds
//! `flow_capacity` up to a power of two; size it with headroom (buckets stay mostly
//! overflow-free up to about 70 % load).
//!
//! IPv6 frames: the burst loop above is IPv4's; frames it leaves `unsupported` (neither IPv4 nor
//! ARP) are decided after it by [`pipeline6`], one at a time, against a per-worker IPv6 flow table
//! of a quarter of `flow_capacity` (132 bytes a flow).
//!
//! # Outbound SNAT
//!
//! In [`snat`]: each worker holds its own translations and allocates from its own part of each
//! member's block, so a reply's destination port names the worker that owns it (docs/design.md
//! §3.5.6, §6.2).

mod admission;
pub mod capture;
pub mod classify;
pub mod classify6;
pub mod counters;
pub mod encap;
pub mod established;
pub mod expiry;
pub mod expiry6;
pub mod icmp_error;
pub mod icmp_error6;
pub mod neighbours;
pub mod owner;
pub mod owner6;
pub mod pipeline;
pub mod pipeline6;
pub mod reason;
pub mod recheck;
pub mod rewrite;
pub mod rewrite6;
pub mod route;
pub mod snat;
pub mod synthetic;

pub use counters::{MemberCounters, RuleCounters, RuleIdleCounters, SnatCounters, WorkerCounters};
pub use neighbours::{IfIndex, NeighbourMap};
pub use pipeline::Pipeline;
pub use reason::{DropReason, Exception};

use crate::balance::Snapshot;
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// What the rewrite needs of one egress port (its MAC, own address and MTU), indexed by interface
/// index (= the snapshot's interface order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPort {
    /// The port's MAC address.
    pub mac: MacAddr,
    /// The appliance's own address on the port.
    pub addr: Ipv4Addr,
    /// IP MTU of the port.
    pub mtu: u16,
}

/// What the pipeline reads for one burst: all immutable, published by the slow path.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The configuration snapshot.
    pub snapshot: &'a Snapshot,
    /// The neighbour map (IPv4 → MAC).
    pub neighbours: &'a NeighbourMap,
    /// The ports, indexed like `snapshot.interfaces`.
    pub ports: &'a [EgressPort],
}

/// The fate of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on `port`.
    Forward {
        /// Egress port index.
        port: usize,
    },
    /// Hand the (untouched) frame to the slow path.
    ToSlowPath(Exception),
    /// Drop (counted under the reason).
    Drop(DropReason),
}

/// Sizes of a pipeline's memory, all allocated in [`Pipeline::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Flow table capacity (rounded up to a power of two).
    pub flow_capacity: usize,
    /// Recently-expired record capacity (about twice the expirations expected in one window;
    /// the window is the snapshot's longest idle timeout).
    pub recent_capacity: usize,
    /// IPv6 flow table capacity (rounded up to a power of two); `None`: a quarter of
    /// `flow_capacity`, at least 1024.
    pub flow_capacity6: Option<usize>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 20,
            recent_capacity: 1 << 18,
            flow_capacity6: None,
        }
    }
}
