//! The synthetic connection of data path availability (`VipAvailability`, docs/design.md §3.9):
//! the frame a client's first packet to a rule's frontend would be — a TCP SYN, or a UDP
//! datagram — from a reserved source that is never a real client. The slow path builds it, a
//! worker runs it through its pipeline code and reports whether it would have been forwarded.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::View;
use crate::balance::Rule;
use crate::config::Protocol;
use crate::wire::{FrameSpec, TcpFlags};

/// Source address of the synthetic connection: TEST-NET-1 (RFC 5737), never a real client.
pub const SYNTHETIC_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Lowest source port of the synthetic connection (each round takes the next one, so every
/// round is a new flow and is balanced afresh).
pub const SYNTHETIC_PORT_BASE: u16 = 40_000;

/// Source ports the rounds cycle through.
pub const SYNTHETIC_PORTS: u16 = 20_000;

/// Longest synthetic frame.
pub const SYNTHETIC_FRAME_MAX: usize = 128;

/// Destination port probed for a rule: its frontend port (a common one, 80, for HA ports).
fn probed_port(r: &Rule) -> u16 {
    if r.frontend_port == 0 {
        80
    } else {
        r.frontend_port
    }
}

/// Writes into `out` the first frame of a new connection to `r`'s frontend from source port
/// `round`'s port, addressed to the MAC of the port the frontend is reached on; returns that
/// port's index and the frame's length, or `None` when the port is unknown.
pub fn synthetic_frame(
    view: &View<'_>,
    r: &Rule,
    round: u32,
    out: &mut [u8; SYNTHETIC_FRAME_MAX],
) -> Option<(usize, usize)> {
    let port_index = view
        .snapshot
        .frontends
        .get(r.frontend.index())
        .and_then(|f| f.interface)
        .map_or(0, |i| i.index());
    let port = view.ports.get(port_index)?;
    let sport = SYNTHETIC_PORT_BASE + (round % u32::from(SYNTHETIC_PORTS)) as u16;
    let src = SocketAddrV4::new(SYNTHETIC_CLIENT, sport);
    let vip = crate::balance::snapshot::ipv4_of(r.frontend_addr)?;
    let dst = SocketAddrV4::new(vip, probed_port(r));
    let payload = [0u8; 8];
    let mut spec = match r.protocol {
        Protocol::Udp => FrameSpec::udp(src, dst, &payload),
        Protocol::Tcp | Protocol::All => FrameSpec::tcp(src, dst, TcpFlags::SYN),
    };
    spec.dst_mac = port.mac;
    Some((port_index, spec.build(out)))
}
