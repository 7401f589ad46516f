//! TCP (and UDP) tracking from what the MUX sees.
//!
//! The MUX sees every client→backend packet; backend→client replies cross it only in NAT mode
//! (with DSR they bypass it), so the state machine is driven by the client side:
//!
//! - client SYN (no ACK) on a new, half-open or finished flow → `SynSent` (untrusted); on an
//!   established flow it is a retransmission and changes nothing;
//! - client ACK while `New` or `SynSent` → `Established` and trusted (this also adopts a flow created
//!   mid-connection by a rehash, docs/design.md §3.7);
//! - FIN (either side) → `Closing`, remembering which side sent it;
//! - RST (either side) → `Closed`.
//!
//! The client's next sequence (`seq + payload + SYN + FIN`) and latest ACK only move forward in
//! RFC 1982 serial-number order, so retransmitted or reordered segments never move them back.
//!
//! Server-direction packets (NAT-mode replies) refresh the last-seen time and record FIN/RST; their
//! sequence numbers are **not** stored: a RST to the client must carry the client's own
//! `rcv_nxt` (its latest ACK) to be accepted at once under RFC 5961, which a server segment in flight
//! may be ahead of.

use super::entry::{FlowEntry, FlowFlags, FlowState};

/// TCP header flag bits (byte 13 of the TCP header).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// Which way a packet travels relative to the flow's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → backend (toward the frontend), the orientation of the flow key.
    ClientToServer,
    /// Backend → client (a NAT-mode reply).
    ServerToClient,
}

/// True when `a` is after `b` in 32-bit sequence space (RFC 1982 serial-number arithmetic).
#[inline(always)]
pub fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The flags a flow has once seen with valid client sequence and acknowledgement numbers (what
/// [`track`]'s plain-ACK fast path needs).
const PLAIN_ACK_FLAGS: FlowFlags =
    FlowFlags(FlowFlags::SEEN.0 | FlowFlags::SEQ_VALID.0 | FlowFlags::ACK_VALID.0);

/// Whether a segment with TCP flags `flags` only acknowledges: ACK set; SYN, FIN and RST clear
/// (PSH, URG and the rest do not matter). The common segment of an established connection.
#[inline(always)]
pub fn is_plain_ack(flags: u8) -> bool {
    use tcp_flags::*;
    flags & (SYN | FIN | RST | ACK) == ACK
}

/// Updates `entry` for one TCP packet: state, trust, client seq/ack, last-seen time.
#[inline(always)]
pub fn track(
    entry: &mut FlowEntry,
    dir: Direction,
    flags: u8,
    seq: u32,
    ack: u32,
    payload_len: u32,
    now: u32,
) {
    if dir == Direction::ClientToServer
        && is_plain_ack(flags)
        && entry.state == FlowState::Established
        && entry.flags.contains(PLAIN_ACK_FLAGS)
    {
        // The common segment (a plain ACK of an established flow whose numbers are known): only
        // the numbers can advance, as [`track_general`] would do for it; and only the resets of
        // an idle expiry read them, so a flow without them keeps the numbers it has.
        if entry.flags.contains(FlowFlags::RESET_ENABLED) {
            let next = seq.wrapping_add(payload_len);
            if seq_after(next, entry.client_next_seq) {
                entry.client_next_seq = next;
            }
            if seq_after(ack, entry.client_ack) {
                entry.client_ack = ack;
            }
        }
        entry.last_seen = now;
        return;
    }
    track_general(entry, dir, flags, seq, ack, payload_len, now);
}

/// [`track`] without its plain-ACK fast path: right for every segment, and the one to call for a
/// flow's first packet (which never takes the fast path).
#[inline]
pub fn track_general(
    entry: &mut FlowEntry,
    dir: Direction,
    flags: u8,
    seq: u32,
    ack: u32,
    payload_len: u32,
    now: u32,
) {
    use tcp_flags::*;
    entry.last_seen = now;
    entry.flags.insert(FlowFlags::SEEN);
    if flags & RST != 0 {
        entry.state = FlowState::Closed;
        return;
    }
    if dir == Direction::ServerToClient {
        if flags & FIN != 0 {
            entry.flags.insert(FlowFlags::FIN_SERVER);
            if entry.state != FlowState::Closed {
                entry.state = FlowState::Closing;
            }
        }
        return;
    }

    let syn = flags & SYN != 0;
    let fin = flags & FIN != 0;
    let has_ack = flags & ACK != 0;

    if syn && !has_ack {
        match entry.state {
            FlowState::New | FlowState::SynSent | FlowState::Closed | FlowState::Closing => {
                // A new connection (or reuse of the 5-tuple after a close): start over.
                if entry.state != FlowState::New && entry.state != FlowState::SynSent {
                    entry.flags.remove(
                        FlowFlags::TRUSTED
                            | FlowFlags::FIN_CLIENT
                            | FlowFlags::FIN_SERVER
                            | FlowFlags::ACK_VALID,
                    );
                }
                entry.state = FlowState::SynSent;
                // A new ISN: take it even if it is "behind" the old one.
                entry.client_next_seq = seq.wrapping_add(1).wrapping_add(payload_len);
                entry.flags.insert(FlowFlags::SEQ_VALID);
                return;
            }
            FlowState::Established => {}
        }
    }

    let next = seq
        .wrapping_add(payload_len)
        .wrapping_add(u32::from(syn))
        .wrapping_add(u32::from(fin));
    if !entry.flags.contains(FlowFlags::SEQ_VALID) || seq_after(next, entry.client_next_seq) {
        entry.client_next_seq = next;
        entry.flags.insert(FlowFlags::SEQ_VALID);
    }
    if has_ack {
        if !entry.flags.contains(FlowFlags::ACK_VALID) || seq_after(ack, entry.client_ack) {
            entry.client_ack = ack;
            entry.flags.insert(FlowFlags::ACK_VALID);
        }
        if matches!(entry.state, FlowState::New | FlowState::SynSent) {
            entry.state = FlowState::Established;
            entry.flags.insert(FlowFlags::TRUSTED);
        }
    }
    if fin {
        entry.flags.insert(FlowFlags::FIN_CLIENT);
        if entry.state != FlowState::Closed {
            entry.state = FlowState::Closing;
        }
    }
}

/// Updates `entry` for one UDP (or other non-TCP) packet: refreshes it; the second packet makes it trusted.
#[inline]
pub fn track_udp(entry: &mut FlowEntry, now: u32) {
    entry.last_seen = now;
    if entry.flags.contains(FlowFlags::SEEN) {
        entry.flags.insert(FlowFlags::TRUSTED);
    } else {
        entry.flags.insert(FlowFlags::SEEN);
    }
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;

    const C: Direction = Direction::ClientToServer;
    const S: Direction = Direction::ServerToClient;

    fn fresh() -> FlowEntry {
        FlowEntry::new(1, 0x0a00_0002, 8080, 0, FlowFlags::RESET_ENABLED, 240, 100)
    }

    /// The plain-ACK fast path of `track` leaves every entry exactly as `track_general` does:
    /// all flag bytes, directions, states and flow flags, with sequence numbers before, at and
    /// after the recorded ones (and across the wrap).
    #[test]
    fn fast_path_matches_general_tracking() {
        let states = FlowState::ALL;
        let nums = [0u32, 1, 999, 1000, 1001, 0x7fff_ffff, 0x8000_0000, u32::MAX];
        let mut checked = 0u32;
        for (state, flow_flags, flags) in states
            .iter()
            .flat_map(|&st| (0..=u8::MAX).map(move |ff| (st, ff)))
            .flat_map(|(st, ff)| [ACK, ACK | PSH, ACK | FIN, SYN, RST, 0].map(|f| (st, ff, f)))
        {
            for (&seq, &ack, dir) in nums
                .iter()
                .flat_map(|s| nums.iter().map(move |a| (s, a)))
                .flat_map(|(s, a)| [(s, a, C), (s, a, S)])
            {
                let mut e = fresh();
                e.state = state;
                e.flags = FlowFlags(flow_flags);
                e.client_next_seq = 1000;
                e.client_ack = 1000;
                let mut g = e;
                track(&mut e, dir, flags, seq, ack, 7, 200);
                track_general(&mut g, dir, flags, seq, ack, 7, 200);
                if !e.flags.contains(FlowFlags::RESET_ENABLED) {
                    // Without resets the fast path may leave the numbers behind (nothing reads
                    // them): `numbers_only_with_resets` covers that.
                    (e.client_next_seq, e.client_ack) = (g.client_next_seq, g.client_ack);
                }
                assert_eq!(
                    e, g,
                    "{state:?} {flow_flags:#x} {flags:#x} {seq} {ack} {dir:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100_000);
    }

    /// A plain ACK of an established flow advances the client's numbers only when the flow
    /// sends resets on idle (their only reader); it refreshes the flow either way.
    #[test]
    fn numbers_only_with_resets() {
        for reset in [true, false] {
            let mut e = fresh();
            if !reset {
                e.flags = FlowFlags(e.flags.0 & !FlowFlags::RESET_ENABLED.0);
            }
            track(&mut e, C, SYN, 1000, 0, 0, 100);
            track(&mut e, S, SYN | ACK, 5000, 1001, 0, 100);
            track(&mut e, C, ACK, 1001, 5001, 0, 100);
            assert_eq!(e.state, FlowState::Established);
            track(&mut e, C, ACK | PSH, 1001, 6001, 100, 150);
            assert_eq!(e.last_seen, 150);
            let want = if reset { (1101, 6001) } else { (1001, 5001) };
            assert_eq!((e.client_next_seq, e.client_ack), want, "reset {reset}");
        }
    }

    #[test]
    fn handshake_data_close() {
        let mut e = fresh();
        track(&mut e, C, SYN, 1000, 0, 0, 100);
        assert_eq!(e.state, FlowState::SynSent);
        assert!(!e.is_trusted());
        assert_eq!(e.rst_to_backend_seq(), Some(1001));
        assert_eq!(e.rst_to_client_seq(), None);
        track(&mut e, S, SYN | ACK, 5000, 1001, 0, 100);
        assert_eq!(e.state, FlowState::SynSent);
        track(&mut e, C, ACK, 1001, 5001, 0, 101);
        assert_eq!(e.state, FlowState::Established);
        assert!(e.is_trusted());
        assert!(e.wants_reset_on_expiry());
        track(&mut e, C, ACK | PSH, 1001, 5001, 100, 102);
        assert_eq!(e.rst_to_backend_seq(), Some(1101));
        assert_eq!(e.rst_to_client_seq(), Some(5001));
        track(&mut e, C, ACK, 1101, 7001, 0, 103);
        assert_eq!(e.rst_to_client_seq(), Some(7001));
        assert_eq!(e.last_seen, 103);
        track(&mut e, C, FIN | ACK, 1101, 7001, 0, 104);
        assert_eq!(e.state, FlowState::Closing);
        assert_eq!(e.rst_to_backend_seq(), Some(1102));
        assert!(e.is_trusted());
        assert_eq!(e.timeout(), crate::flow::entry::FIN_ONE_TIMEOUT);
        track(&mut e, S, FIN | ACK, 7001, 1102, 0, 104);
        assert_eq!(e.timeout(), crate::flow::entry::FIN_BOTH_TIMEOUT);
        track(&mut e, C, RST, 1102, 0, 0, 105);
        assert_eq!(e.state, FlowState::Closed);
        assert!(!e.is_trusted());
    }

    #[test]
    fn stale_segments_do_not_go_backwards() {
        let mut e = fresh();
        track(&mut e, C, SYN, 100, 0, 0, 1);
        track(&mut e, C, ACK, 101, 900, 500, 1);
        assert_eq!(e.rst_to_backend_seq(), Some(601));
        // Retransmission of older data and an older ACK.
        track(&mut e, C, ACK, 101, 800, 200, 2);
        assert_eq!(e.rst_to_backend_seq(), Some(601));
        assert_eq!(e.rst_to_client_seq(), Some(900));
        assert_eq!(e.last_seen, 2);
    }

    #[test]
    fn sequence_wraparound() {
        let mut e = fresh();
        track(&mut e, C, SYN, u32::MAX - 10, 0, 0, 1);
        assert_eq!(e.rst_to_backend_seq(), Some(u32::MAX - 9));
        track(&mut e, C, ACK, u32::MAX - 9, u32::MAX - 1, 20, 2);
        assert_eq!(e.rst_to_backend_seq(), Some(10));
        // Stale, from before the wrap.
        track(&mut e, C, ACK, u32::MAX - 9, u32::MAX - 3, 5, 3);
        assert_eq!(e.rst_to_backend_seq(), Some(10));
        assert_eq!(e.rst_to_client_seq(), Some(u32::MAX - 1));
        // ACK wraps forward.
        track(&mut e, C, ACK, 10, 3, 0, 4);
        assert_eq!(e.rst_to_client_seq(), Some(3));
        assert!(seq_after(3, u32::MAX - 1));
        assert!(!seq_after(u32::MAX - 1, 3));
    }

    #[test]
    fn mid_flow_ack_adopts_established() {
        let mut e = fresh();
        track(&mut e, C, ACK | PSH, 7777, 4444, 10, 5);
        assert_eq!(e.state, FlowState::Established);
        assert!(e.is_trusted());
        assert_eq!(e.rst_to_backend_seq(), Some(7787));
        assert_eq!(e.rst_to_client_seq(), Some(4444));
    }

    #[test]
    fn syn_after_close_restarts_and_syn_retransmit_keeps_established() {
        let mut e = fresh();
        track(&mut e, C, SYN, 1, 0, 0, 1);
        track(&mut e, C, ACK, 2, 2, 0, 1);
        track(&mut e, C, SYN, 1, 0, 0, 2);
        assert_eq!(e.state, FlowState::Established);
        track(&mut e, S, RST, 0, 0, 0, 3);
        assert_eq!(e.state, FlowState::Closed);
        track(&mut e, C, SYN, 50, 0, 0, 4);
        assert_eq!(e.state, FlowState::SynSent);
        assert!(!e.is_trusted());
        assert_eq!(e.rst_to_backend_seq(), Some(51));
        assert_eq!(e.rst_to_client_seq(), None);
    }

    #[test]
    fn udp_trusted_on_second_packet() {
        let mut e = fresh();
        track_udp(&mut e, 1);
        assert!(!e.is_trusted());
        assert!(e.should_record_expiry());
        track_udp(&mut e, 2);
        assert!(e.is_trusted());
        assert_eq!(e.last_seen, 2);
        assert_eq!(e.state, FlowState::New);
    }
}
