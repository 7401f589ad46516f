//! `vipmux pktgen`: a DPDK traffic generator for throughput tests.
//!
//! It builds frames for N flows toward the frontends of a vipmux configuration (SYNs, data
//! segments, a mix, or a SYN flood from random sources, optionally with established traffic
//! mixed in and reported apart), sends them in bursts of 32 from a pinned
//! DPDK thread at the highest or a set rate, receives what comes back on the same port, checks
//! every returned frame against the rewrite the configuration prescribes (NAT, floating IP, IPIP,
//! GUE), answers ARP for the network's neighbours, and reports rates, loss, mismatches by kind and
//! the spread over members. With `--direction outbound` it plays an outbound rule's members
//! opening connections to the outside instead, and checks the SNAT ([`outbound`]).
//!
//! With `--family 6` the flows are IPv6 ([`flows::client6_of`], [`frames6`]) toward the IPv6
//! frontends; the checker answers Neighbour Solicitations and checks NAT66, floating IP and IPv6
//! encapsulation, the hop limit and the checksum over the IPv6 pseudo-header.
//!
//! The pure parts (flows, frames, the checker, pacing, the report) work on byte slices and are
//! tested without DPDK; [`engine`] is the DPDK loop.

pub mod check;
pub mod engine;
pub mod flows;
pub mod frames;
pub mod frames6;
pub mod outbound;
pub mod pace;
pub mod report;

pub use check::{
    neighbour_mac, neighbour_mac6, Checker, Class, ClassCounts, Expect, MismatchKind, Mismatches,
    Outcome,
};
pub use engine::{run, Options, TemplateChoice};
pub use flows::{Family, FlowSet, VipTarget};
pub use outbound::{OutboundCheck, OutboundFlows};
pub use report::Summary;

use serde::Serialize;

/// What the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// TCP SYNs only (each flow's SYN, repeated).
    Syn,
    /// ACK|PSH data segments of established flows.
    Established,
    /// Every flow opens with a SYN, then seven rounds of data segments, repeated.
    Mix,
    /// SYNs from a random source address (198.19.0.0/16) and port per packet; with
    /// `--established-share P`, P % of the frames are data segments of the established flows.
    Synflood,
}

/// Which way the generated traffic crosses vipmux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TrafficDirection {
    /// Clients toward the load-balancing (or named inbound NAT) rules' frontends.
    #[default]
    Inbound,
    /// An outbound rule's members toward remote hosts (198.18.0.0/16): SNAT to the rule's
    /// frontend IP and a port of each member's block.
    Outbound,
}
