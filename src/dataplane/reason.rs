//! [`DropReason`]: why the data path did not forward a packet (or, for a few, an event it
//! counted while still handling the packet). One enum, one counter each, one snake_case name each,
//! in the style of VPP's `foreach_lb_error`: [`DropReason::ALL`] lists them in counter order and
//! [`DropReason::name`] gives the metric label.

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $v:ident => $name:literal, )*) => {
        /// Why a packet was dropped (or an event counted); see the module documentation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $v, )*
        }

        impl DropReason {
            /// Every reason, in counter order (`reason as usize` indexes this array).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// Number of reasons (length of the per-worker counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The snake_case name used as a counter / metric label.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DropReason::$v => $name, )*
                }
            }

            /// Index of this reason's counter.
            #[inline(always)]
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// Malformed frame: short, bad IHL or version, total length beyond the frame, bad TCP data
    /// offset, bad UDP length.
    BadHeader => "bad_header",
    /// A protocol this data path does not forward: non-IPv4 ethertypes (IPv6, QinQ, ...), or a
    /// protocol other than TCP/UDP to a frontend without an HA-ports rule.
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
    /// Event, not a drop: the flow table bucket was full of established flows, so the packet was
    /// **still forwarded**, untracked, to the member the hash chooses.
    FlowTableFull => "flow_table_full",
    /// A non-SYN TCP packet of a flow this worker expired recently (Azure's idle-timeout drop).
    IdleExpired => "idle_expired",
    /// A non-SYN TCP packet without a flow entry while `missing_flow = "drop"`.
    NoFlow => "no_flow",
    /// Outbound SNAT found no free port in the member's block (reserved: SNAT is not built yet).
    SnatExhausted => "snat_exhausted",
    /// A packet from a pool member that is not a NAT reply, while outbound rules exist (SNAT is
    /// not built yet, so every such packet lands here).
    NoOutboundRule => "no_outbound_rule",
    /// The transmit ring was full (counted by the worker through `Pipeline::note_tx`).
    TxFull => "tx_full",
    /// No egress interface for the destination (member without interface, no gateway).
    NoRoute => "no_route",
    /// The next hop's MAC is not resolved yet (the slow path resolves it; later packets pass).
    NoNeighbour => "no_neighbour",
    /// Not enough headroom in the buffer to prepend an encapsulation header.
    NoHeadroom => "no_headroom",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_snake_case_and_indexed() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(seen.insert(r.name()));
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(DropReason::COUNT, DropReason::ALL.len());
        assert_eq!(DropReason::FlowTableFull.name(), "flow_table_full");
    }
}
