//! Why a packet left the fast path: [`DropReason`] (the data path did not forward it, or counted an
//! event while still handling it) and [`Exception`] (it was handed to the slow path), and the
//! crate-internal `reasons!` macro every counted list of kinds in the crate is declared with
//! (these two, the slow path's drops, the traffic generator's mismatches).
//!
//! One list, one counter and one snake_case name per kind, in the style of VPP's
//! `foreach_lb_error`: `ALL` lists the kinds in counter order, `index` is a kind's position there
//! and `name` its metric label.

/// Declares a counted enum of kinds: the enum (with its per-variant docs), `ALL` (every kind in
/// counter order), `COUNT`, `name()` (the snake_case label written beside each variant) and
/// `index()` (the kind's position in `ALL`).
///
/// A variant may carry fields (`TooBig { mtu: u16 = 0 }`): the value after `=` is the one the
/// variant has in `ALL`; `name` and `index` ignore the fields.
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vdoc:meta])*
                $v:ident $({
                    $( $(#[$fdoc:meta])* $f:ident : $ft:ty = $fx:expr ),* $(,)?
                })? => $label:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vdoc])* $v $({ $( $(#[$fdoc])* $f: $ft, )* })?, )*
        }

        impl $name {
            /// Every kind, in counter order (`index` is a kind's position here).
            pub const ALL: [$name; Self::COUNT] = [$( $name::$v $({ $( $f: $fx, )* })?, )*];
            /// Number of kinds (length of a counter array indexed by `index`).
            pub const COUNT: usize = [$($label),*].len();

            /// The snake_case name used as counter / metric label.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$v { .. } => $label, )*
                }
            }

            /// Index of this kind's counter (its position in `ALL`).
            #[inline(always)]
            pub const fn index(self) -> usize {
                /// The variants' positions.
                #[allow(dead_code)]
                enum Position {
                    $( $v, )*
                }
                match self {
                    $( $name::$v { .. } => Position::$v as usize, )*
                }
            }
        }
    };
}
pub(crate) use reasons;

reasons! {
    /// Why a packet was dropped (or an event counted); see the module documentation.
    #[repr(u8)]
    pub enum DropReason {
        /// Malformed frame: short, bad IHL or version, total length beyond the frame, bad TCP
        /// data offset, bad UDP length.
        BadHeader => "bad_header",
        /// A protocol this data path does not forward: non-IPv4 ethertypes (IPv6, QinQ, ...), or
        /// a protocol other than TCP/UDP to a frontend without an HA-ports rule.
        Unsupported => "unsupported",
        /// No rule matches (destination not a frontend, or frontend without a rule for the
        /// protocol/port), and not a NAT reply from a member.
        NoRule => "no_rule",
        /// IP fragment: counted here, handed to the slow path (which logs and drops it).
        Fragment => "fragment",
        /// TTL <= 1 on a packet to forward: counted here, handed to the slow path (time exceeded).
        Ttl => "ttl",
        /// Larger than the egress MTU (after encapsulation); with DF the slow path answers
        /// "fragmentation needed" (the packet is counted here either way).
        TooBig => "too_big",
        /// A new flow (or a UDP flow whose member went down) found no eligible member.
        NoHealthyBackend => "no_healthy_backend",
        /// Event, not a drop: the flow table bucket was full of established flows, so the packet
        /// was **still forwarded**, untracked, to the member the hash chooses.
        FlowTableFull => "flow_table_full",
        /// A non-SYN TCP packet of a flow this worker expired recently (Azure's idle-timeout drop).
        IdleExpired => "idle_expired",
        /// A non-SYN TCP packet without a flow entry while `missing_flow = "drop"`.
        NoFlow => "no_flow",
        /// Outbound SNAT found no free port in the member's block (reserved: SNAT is not built
        /// yet).
        SnatExhausted => "snat_exhausted",
        /// A packet from a pool member that is not a NAT reply, while outbound rules exist (SNAT
        /// is not built yet, so every such packet lands here).
        NoOutboundRule => "no_outbound_rule",
        /// The transmit ring was full (counted by the worker through `Pipeline::note_tx`).
        TxFull => "tx_full",
        /// No egress interface for the destination (member without interface, no gateway).
        NoRoute => "no_route",
        /// The next hop's MAC is not resolved yet (the slow path resolves it; later packets pass).
        NoNeighbour => "no_neighbour",
        /// Not enough headroom in the buffer to prepend an encapsulation header.
        NoHeadroom => "no_headroom",
        /// A TCP SYN to a rule with a probe while the first probe round after a start is under
        /// way (held until it is known which members are up; the client retransmits).
        ProbesPending => "probes_pending",
        /// An ICMP error quoting no flow of a rule (docs/design.md §4.4).
        IcmpNoFlow => "icmp_no_flow",
    }
}

reasons! {
    /// Why a worker handed a frame to the slow path (one counter each, in the worker's counters).
    pub enum Exception {
        /// An ARP frame.
        Arp => "arp",
        /// An ICMP message addressed to a frontend that is not an error about a flow (echo,
        /// redirect); errors about flows are delivered by the data path.
        IcmpToFrontend => "icmp_to_frontend",
        /// A frame for the appliance's own interface address: goes to the kernel TAP.
        ToAppliance => "to_appliance",
        /// An IP fragment (rejected).
        Fragment => "fragment",
        /// A packet too big for the egress MTU after encapsulation; `mtu` is the usable MTU to
        /// report.
        TooBig {
            /// Largest packet the sender may send (the egress MTU minus encapsulation; for IPv6
            /// at least 1280).
            mtu: u16 = 0,
        } => "too_big",
        /// A forwarded packet with TTL <= 1.
        TtlExceeded => "ttl_exceeded",
        /// An ICMP message in transit (not addressed to a frontend) that is not an error about a
        /// flow (redirect, source quench); one addressed to a frontend is handled as
        /// [`Exception::IcmpToFrontend`].
        IcmpError => "icmp_error",
        /// An IPv6 Neighbour Discovery message (solicitation, advertisement, router messages,
        /// redirect): IPv6's ARP.
        NeighbourDiscovery => "neighbour_discovery",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_snake_case_and_indexed() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(r.index(), *r as usize);
            assert!(seen.insert(r.name()));
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(DropReason::COUNT, DropReason::ALL.len());
        assert_eq!(DropReason::FlowTableFull.name(), "flow_table_full");
    }

    #[test]
    fn exception_kinds_in_counter_order() {
        let names: Vec<_> = Exception::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "arp",
                "icmp_to_frontend",
                "to_appliance",
                "fragment",
                "too_big",
                "ttl_exceeded",
                "icmp_error",
                "neighbour_discovery"
            ]
        );
        for (i, e) in Exception::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        // The fields do not matter to the counter.
        assert_eq!(Exception::TooBig { mtu: 1400 }.index(), 4);
        assert_eq!(Exception::TooBig { mtu: 1400 }.name(), "too_big");
    }
}
