//! One flow's record: the rewrite target, TCP state, what a reset needs, and its timers.
//!
//! The entry is self-contained (member address and backend port, not indices into a configuration
//! snapshot), so a reload can never make an existing flow point somewhere else. It is 40 bytes
//! (`repr(C)`, checked by a test); with its 16-byte key it fills 56 bytes of a table slot's cache line.
//! It also keeps what its packets' rewrite needs that is the same for every packet of the flow
//! ([`FlowSums`]: checksum deltas of the NAT, the GUE source port), computed once by the data
//! path whenever it checks the flow against a snapshot, instead of once per packet.
//!
//! Timeouts (seconds of silence after the last packet, either direction), each capped by the entry's
//! own idle timeout when that is shorter:
//!
//! | state                         | timeout                 | why |
//! |-------------------------------|-------------------------|-----|
//! | `New` (UDP, other protocols)  | idle timeout            | docs/design.md §3.6 |
//! | `SynSent` (half-open)         | [`SYN_TIMEOUT`] = 10 s  | bounds SYN floods; a client retransmitting its SYN refreshes it |
//! | `Established`                 | idle timeout            | docs/design.md §3.6 |
//! | `Closing`, one FIN seen       | [`FIN_ONE_TIMEOUT`] = 60 s | a half-closed connection may still carry data one way |
//! | `Closing`, FIN both ways      | [`FIN_BOTH_TIMEOUT`] = 10 s | only the last ACK and retransmits remain |
//! | `Closed` (RST seen)           | [`RST_TIMEOUT`] = 5 s   | lets retransmitted RSTs follow the same path |
//!
//! Expiry never comes early: the clock counts whole seconds, so a packet seen at real time 10.9 s
//! is recorded as `t = 10`; an entry with timeout `T` is expired once `now > t + T`, i.e. after at
//! least `T` and less than `T + 1` seconds of real idleness (arithmetic wraps, so the u32 seconds
//! clock may roll over).

/// Timeout of a half-open TCP flow (SYN seen, handshake not completed), seconds.
pub const SYN_TIMEOUT: u32 = 10;
/// Timeout of a TCP flow after a FIN from one side only, seconds.
pub const FIN_ONE_TIMEOUT: u32 = 60;
/// Timeout of a TCP flow after FINs from both sides, seconds.
pub const FIN_BOTH_TIMEOUT: u32 = 10;
/// Timeout of a TCP flow after a RST, seconds.
pub const RST_TIMEOUT: u32 = 5;
/// The shortest of the state timeouts ([`SYN_TIMEOUT`], [`FIN_ONE_TIMEOUT`], [`FIN_BOTH_TIMEOUT`],
/// [`RST_TIMEOUT`]): no entry expires before `min(this, its idle timeout)` seconds of idleness.
pub const SHORTEST_TIMEOUT: u32 = min(
    min(SYN_TIMEOUT, FIN_ONE_TIMEOUT),
    min(FIN_BOTH_TIMEOUT, RST_TIMEOUT),
);

/// The smaller of two (a `const fn`, for [`SHORTEST_TIMEOUT`]).
const fn min(a: u32, b: u32) -> u32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Per-flow flag bits (one byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct FlowFlags(pub u8);

impl FlowFlags {
    /// No flag set.
    pub const NONE: FlowFlags = FlowFlags(0);
    /// The rule uses floating IP (DSR): the destination stays the VIP.
    pub const FLOATING: FlowFlags = FlowFlags(1 << 0);
    /// The rule has `enable_tcp_reset`: send RSTs both ways when an established flow idles out.
    pub const RESET_ENABLED: FlowFlags = FlowFlags(1 << 1);
    /// Trusted (Ananta): handshake completed (TCP) or a second packet seen (UDP); never evicted.
    pub const TRUSTED: FlowFlags = FlowFlags(1 << 2);
    /// `client_next_seq` holds a real value (kept current on plain ACKs only with `RESET_ENABLED`).
    pub const SEQ_VALID: FlowFlags = FlowFlags(1 << 3);
    /// `client_ack` holds a real value (kept current on plain ACKs only with `RESET_ENABLED`).
    pub const ACK_VALID: FlowFlags = FlowFlags(1 << 4);
    /// A FIN from the client was seen.
    pub const FIN_CLIENT: FlowFlags = FlowFlags(1 << 5);
    /// A FIN from the server (NAT-mode reply) was seen.
    pub const FIN_SERVER: FlowFlags = FlowFlags(1 << 6);
    /// At least one packet was tracked (used for UDP trust).
    pub const SEEN: FlowFlags = FlowFlags(1 << 7);

    /// True when every bit of `other` is set.
    #[inline(always)]
    pub const fn contains(self, other: FlowFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    #[inline(always)]
    pub fn insert(&mut self, other: FlowFlags) {
        self.0 |= other.0;
    }

    /// Clears the bits of `other`.
    #[inline(always)]
    pub fn remove(&mut self, other: FlowFlags) {
        self.0 &= !other.0;
    }
}

impl core::ops::BitOr for FlowFlags {
    type Output = FlowFlags;
    #[inline(always)]
    fn bitor(self, rhs: FlowFlags) -> FlowFlags {
        FlowFlags(self.0 | rhs.0)
    }
}

/// Connection state of a flow as the MUX sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum FlowState {
    /// Created, no TCP handshake seen: UDP and other protocols stay here (idle timeout).
    #[default]
    New = 0,
    /// TCP SYN seen, handshake not completed (half-open, untrusted).
    SynSent = 1,
    /// TCP handshake completed, or a mid-flow ACK adopted after a rehash (trusted).
    Established = 2,
    /// TCP FIN seen from one or both sides (see [`FlowFlags::FIN_CLIENT`] / [`FlowFlags::FIN_SERVER`]).
    Closing = 3,
    /// TCP RST seen.
    Closed = 4,
}

impl FlowState {
    /// Every state (for tests that walk them all).
    #[cfg(test)]
    pub(crate) const ALL: [FlowState; 5] = [
        FlowState::New,
        FlowState::SynSent,
        FlowState::Established,
        FlowState::Closing,
        FlowState::Closed,
    ];
}

/// The per-flow constants of a flow's rewrite (docs/design.md §3.5), valid for the rule and
/// member the flow was last checked against: the data path sets them when it creates the flow
/// and whenever it checks it again (a new snapshot, a moved member), and reads them only for a
/// flow checked under the current snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowSums {
    /// NAT: the ones'-complement delta (folded, RFC 1624) of the destination address change,
    /// the IPv4 header checksum's part without the TTL.
    pub ip_delta: u16,
    /// NAT: the delta of the destination address and (when it changes) port, the TCP/UDP
    /// checksum's part.
    pub l4_delta: u16,
    /// GUE: the outer UDP source port (from the flow's 5-tuple hash).
    pub gue_sport: u16,
    /// GUE: the outer UDP destination port (the pool's `gue_port`); 0 when the flow's delivery is
    /// not GUE.
    pub gue_dport: u16,
}

/// One flow's record (40 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowEntry {
    /// Rule the flow matched (index or id in the configuration that created it; informational).
    pub rule_id: u32,
    /// Rewrite target: the member's IPv4 address (host byte order).
    pub member_addr: u32,
    /// Hint: the member's id in the snapshot that created the flow (for per-member counters).
    pub member_id: u32,
    /// Client's next sequence number (last seq + payload, +1 for SYN and FIN): seq of a RST to the backend.
    pub client_next_seq: u32,
    /// Client's latest acknowledgement number: seq of a RST to the client.
    pub client_ack: u32,
    /// Time of the last packet (seconds of the worker's coarse clock).
    pub last_seen: u32,
    /// The rule's idle timeout, seconds.
    pub idle_timeout: u32,
    /// Rewrite target: backend port.
    pub backend_port: u16,
    /// Flag bits.
    pub flags: FlowFlags,
    /// Connection state.
    pub state: FlowState,
    /// The rewrite's per-flow constants (see [`FlowSums`]).
    pub sums: FlowSums,
}

impl FlowEntry {
    /// A fresh entry in state `New`, last seen at `now`; `flags` are usually `FLOATING` / `RESET_ENABLED`.
    #[inline]
    pub fn new(
        rule_id: u32,
        member_addr: u32,
        backend_port: u16,
        member_id: u32,
        flags: FlowFlags,
        idle_timeout: u32,
        now: u32,
    ) -> Self {
        FlowEntry {
            rule_id,
            member_addr,
            member_id,
            client_next_seq: 0,
            client_ack: 0,
            last_seen: now,
            idle_timeout,
            backend_port,
            flags,
            state: FlowState::New,
            sums: FlowSums::default(),
        }
    }

    /// The timeout that applies in the current state (see the module table).
    #[inline]
    pub fn timeout(&self) -> u32 {
        let short = match self.state {
            FlowState::New | FlowState::Established => return self.idle_timeout,
            FlowState::SynSent => SYN_TIMEOUT,
            FlowState::Closing => {
                if self
                    .flags
                    .contains(FlowFlags::FIN_CLIENT | FlowFlags::FIN_SERVER)
                {
                    FIN_BOTH_TIMEOUT
                } else {
                    FIN_ONE_TIMEOUT
                }
            }
            FlowState::Closed => RST_TIMEOUT,
        };
        short.min(self.idle_timeout)
    }

    /// True when no packet was seen for more than the current timeout: `now - last_seen >
    /// timeout()` on the whole-second clock (see the module doc: never early, at most 1 s late).
    #[inline(always)]
    pub fn is_expired(&self, now: u32) -> bool {
        let idle = now.wrapping_sub(self.last_seen);
        // The common states first: their timeout is the idle timeout itself.
        if matches!(self.state, FlowState::New | FlowState::Established) {
            return idle > self.idle_timeout;
        }
        self.idle_past_timeout(idle)
    }

    /// False when the entry is surely live at `now`, for a scan over many entries (a full
    /// bucket's eviction): an entry idle for no longer than the shortest timeout any state has
    /// (capped by its own idle timeout) is live whatever its state. One comparison, no branch;
    /// when true, [`is_expired`](Self::is_expired) decides.
    #[inline(always)]
    pub fn may_be_expired(&self, now: u32) -> bool {
        now.wrapping_sub(self.last_seen) > SHORTEST_TIMEOUT.min(self.idle_timeout)
    }

    /// [`is_expired`](Self::is_expired) for the states with a shorter timeout (out of line, so
    /// the common check stays one comparison instead of a jump over every state).
    #[inline(never)]
    fn idle_past_timeout(&self, idle: u32) -> bool {
        idle > self.timeout()
    }

    /// Refreshes the last-seen time.
    #[inline(always)]
    pub fn touch(&mut self, now: u32) {
        self.last_seen = now;
    }

    /// Trusted (never evicted): flagged trusted and not closed.
    #[inline]
    pub fn is_trusted(&self) -> bool {
        self.flags.contains(FlowFlags::TRUSTED) && self.state != FlowState::Closed
    }

    /// At idle expiry, should the data path send RSTs both ways (reset enabled, established, seq/ack known)?
    #[inline]
    pub fn wants_reset_on_expiry(&self) -> bool {
        self.state == FlowState::Established
            && self
                .flags
                .contains(FlowFlags::RESET_ENABLED | FlowFlags::SEQ_VALID | FlowFlags::ACK_VALID)
    }

    /// Sequence number for a RST to the client (the client's last ACK), if known.
    #[inline]
    pub fn rst_to_client_seq(&self) -> Option<u32> {
        self.flags
            .contains(FlowFlags::ACK_VALID)
            .then_some(self.client_ack)
    }

    /// Sequence number for a RST to the backend (the client's next sequence), if known.
    #[inline]
    pub fn rst_to_backend_seq(&self) -> Option<u32> {
        self.flags
            .contains(FlowFlags::SEQ_VALID)
            .then_some(self.client_next_seq)
    }

    /// Should an expiry of this entry go to the recently-expired record? (A live connection idled out:
    /// `New` with at least one packet, `Established`, or `Closing`; not half-open, not reset.)
    #[inline]
    pub fn should_record_expiry(&self) -> bool {
        match self.state {
            FlowState::Established | FlowState::Closing => true,
            FlowState::New => self.flags.contains(FlowFlags::SEEN),
            FlowState::SynSent | FlowState::Closed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_40_bytes() {
        assert_eq!(core::mem::size_of::<FlowEntry>(), 40);
    }

    #[test]
    fn idle_expiry_never_early() {
        let e = FlowEntry::new(1, 2, 3, 4, FlowFlags::NONE, 240, 1000);
        assert!(!e.is_expired(1000));
        assert!(!e.is_expired(1240));
        assert!(e.is_expired(1241));
        assert!(e.is_expired(5000));
    }

    #[test]
    fn expiry_across_clock_wrap() {
        let e = FlowEntry::new(1, 2, 3, 4, FlowFlags::NONE, 100, u32::MAX - 10);
        assert!(!e.is_expired(u32::MAX));
        assert!(!e.is_expired(89));
        assert!(e.is_expired(90));
    }

    #[test]
    fn short_timeouts_by_state() {
        let mut e = FlowEntry::new(1, 2, 3, 4, FlowFlags::NONE, 240, 0);
        e.state = FlowState::SynSent;
        assert_eq!(e.timeout(), SYN_TIMEOUT);
        e.state = FlowState::Closing;
        e.flags.insert(FlowFlags::FIN_CLIENT);
        assert_eq!(e.timeout(), FIN_ONE_TIMEOUT);
        e.flags.insert(FlowFlags::FIN_SERVER);
        assert_eq!(e.timeout(), FIN_BOTH_TIMEOUT);
        e.state = FlowState::Closed;
        assert_eq!(e.timeout(), RST_TIMEOUT);
        // A shorter idle timeout wins.
        e.idle_timeout = 2;
        assert_eq!(e.timeout(), 2);
        e.state = FlowState::Established;
        assert_eq!(e.timeout(), 2);
    }

    #[test]
    fn scan_never_misses_an_expired_entry() {
        for state in FlowState::ALL {
            for fins in [
                FlowFlags::NONE,
                FlowFlags::FIN_CLIENT | FlowFlags::FIN_SERVER,
            ] {
                for idle_timeout in [1, 3, 5, 10, 240] {
                    let mut e = FlowEntry::new(1, 2, 3, 4, fins, idle_timeout, 1000);
                    e.state = state;
                    for now in (990..1300).chain([u32::MAX, 0]) {
                        if e.is_expired(now) {
                            assert!(e.may_be_expired(now), "{e:?} at {now}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reset_needs_established_and_numbers() {
        let mut e = FlowEntry::new(1, 2, 3, 4, FlowFlags::RESET_ENABLED, 240, 0);
        e.state = FlowState::Established;
        assert!(!e.wants_reset_on_expiry());
        e.flags.insert(FlowFlags::SEQ_VALID | FlowFlags::ACK_VALID);
        assert!(e.wants_reset_on_expiry());
        e.state = FlowState::SynSent;
        assert!(!e.wants_reset_on_expiry());
    }
}
