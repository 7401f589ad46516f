//! IPv6 frames of the generator (`--family 6`): Ethernet/IPv6/TCP|UDP with the checksum over the
//! IPv6 pseudo-header, and the in-place move to another client.
//!
//! A flow's client is the [`client6_of`] form of its IPv4 client, so the two families share the
//! flow numbering. IPv6 has no identification field: the target's index rides in the flow label
//! (which vipmux keeps), so synflood frames can still be matched to their rule. The smallest IPv6
//! TCP frame is [`MIN_SIZE6`] bytes (74 bytes of headers plus the FCS).

use std::net::{Ipv6Addr, SocketAddrV4};

use super::flows::{client6_of, VipTarget};
use super::frames::{fill_payload, tcp_fields, FrameKind, Macs, MAX_SIZE};
use crate::balance::snapshot::IPPROTO_UDP;
use crate::wire::builder::DEFAULT_TTL;
use crate::wire::{ethernet, ipv6, tcp, udp, Ipv6Packet, TcpPacket, UdpPacket};

/// Offset of the IPv6 header in generated (untagged) frames.
pub const L3_OFFSET6: usize = ethernet::HEADER_LEN;
/// Offset of the transport header in generated IPv6 frames.
pub const L4_OFFSET6: usize = L3_OFFSET6 + ipv6::HEADER_LEN;
/// The smallest `--size` of an IPv6 TCP frame (Ethernet, IPv6 and TCP headers, FCS).
pub const MIN_SIZE6: usize = L4_OFFSET6 + tcp::HEADER_LEN + super::frames::FCS_LEN;

/// Writes the IPv6 frame of `kind` from `client` (its IPv6 form) to `target` (an IPv6 VIP) into
/// `out` (exactly `out.len()` bytes): headers with a correct L4 checksum, payload (a fixed pattern)
/// or zero padding; the flow label carries `ident` (the target's index). A buffer too short for
/// the headers, or an IPv4 target, is left zeroed.
pub fn build6(
    out: &mut [u8],
    macs: Macs,
    client: SocketAddrV4,
    target: &VipTarget,
    ident: u16,
    kind: FrameKind,
    isn: u32,
) {
    out.fill(0);
    let std::net::IpAddr::V6(vip) = target.vip else {
        return;
    };
    let l4_len = if target.proto == IPPROTO_UDP {
        udp::HEADER_LEN
    } else {
        tcp::HEADER_LEN
    };
    if out.len() < L4_OFFSET6 + l4_len {
        return;
    }
    let mut payload = [0u8; MAX_SIZE];
    let payload_len = fill_payload(&mut payload, out.len(), L4_OFFSET6, target.proto, kind);
    let src = client6_of(*client.ip());
    out[0..6].copy_from_slice(&macs.dst.0);
    out[6..12].copy_from_slice(&macs.src.0);
    out[12..14].copy_from_slice(&ethernet::ethertype::IPV6.to_be_bytes());
    let repr = ipv6::Repr {
        src_addr: src,
        dst_addr: vip,
        next_header: target.proto,
        hop_limit: DEFAULT_TTL,
        traffic_class: 0,
        flow_label: u32::from(ident),
        payload_len: l4_len + payload_len,
    };
    if repr.emit(&mut out[L3_OFFSET6..]).is_err() {
        return;
    }
    let l4 = &mut out[L4_OFFSET6..L4_OFFSET6 + l4_len + payload_len];
    l4[l4_len..].copy_from_slice(&payload[..payload_len]);
    if target.proto == IPPROTO_UDP {
        let mut u = UdpPacket::new_unchecked(l4);
        u.set_src_port(client.port());
        u.set_dst_port(target.port);
        u.set_len((udp::HEADER_LEN + payload_len) as u16);
        u.fill_checksum_v6(src, vip);
    } else {
        let (flags, seq, ack) = tcp_fields(kind, isn);
        let mut t = TcpPacket::new_unchecked(l4);
        t.set_src_port(client.port());
        t.set_dst_port(target.port);
        t.set_seq_number(seq);
        t.set_ack_number(ack);
        t.set_header_len(tcp::HEADER_LEN);
        t.set_flags(flags);
        t.set_window(0xffff);
        t.fill_checksum_v6(src, vip);
    }
}

/// Moves a generated IPv6 frame (untagged, TCP or UDP, built by [`build6`]) to the client
/// `client` (its IPv6 form) and port, updating the L4 checksum incrementally.
#[inline]
pub fn patch_client6(frame: &mut [u8], client: SocketAddrV4) {
    if frame.len() < L4_OFFSET6 + 8 {
        return;
    }
    let new = client6_of(*client.ip());
    let (l3, l4) = frame.split_at_mut(L4_OFFSET6);
    let mut ip = Ipv6Packet::new_unchecked(&mut l3[L3_OFFSET6..]);
    let (proto, old): (u8, Ipv6Addr) = (ip.next_header(), ip.src_addr());
    ip.set_src_addr(new);
    if proto == IPPROTO_UDP {
        let mut u = UdpPacket::new_unchecked(l4);
        u.update_checksum_for_addr_v6(old, new);
        u.rewrite_src_port(client.port());
    } else if l4.len() >= tcp::HEADER_LEN {
        let mut t = TcpPacket::new_unchecked(l4);
        t.update_checksum_for_addr_v6(old, new);
        t.rewrite_src_port(client.port());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::snapshot::{RuleId, IPPROTO_TCP};
    use crate::pktgen::flows::client_of;
    use crate::pktgen::frames::{buffer_len, patch_client};
    use crate::wire::MacAddr;

    const MACS: Macs = Macs {
        src: MacAddr([2, 0, 0, 0, 0, 1]),
        dst: MacAddr([2, 0, 0, 0, 0, 2]),
    };

    fn target(proto: u8) -> VipTarget {
        VipTarget {
            rule: RuleId(0),
            vip: "2001:db8:1::100".parse::<Ipv6Addr>().unwrap().into(),
            port: 80,
            proto,
        }
    }

    fn checksum_ok(f: &[u8]) -> bool {
        let ip = Ipv6Packet::new_checked(&f[L3_OFFSET6..]).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        match ip.next_header() {
            IPPROTO_UDP => UdpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum_v6(s, d),
            _ => TcpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum_v6(s, d),
        }
    }

    #[test]
    fn ipv6_frames_have_right_checksums_and_patch_keeps_them() {
        for size in [MIN_SIZE6, 128, 1518] {
            for proto in [IPPROTO_TCP, IPPROTO_UDP] {
                for kind in [FrameKind::Syn, FrameKind::Data] {
                    let mut f = vec![0u8; buffer_len(size)];
                    crate::pktgen::frames::build(
                        &mut f,
                        MACS,
                        client_of(3),
                        &target(proto),
                        7,
                        kind,
                        9,
                    );
                    let ip = Ipv6Packet::new_checked(&f[L3_OFFSET6..]).unwrap();
                    assert_eq!(ip.src_addr(), client6_of(*client_of(3).ip()));
                    assert_eq!((ip.hop_limit(), ip.flow_label()), (64, 7));
                    let want = match (proto, kind) {
                        (IPPROTO_TCP, FrameKind::Syn) => 60, // zero-padded past the SYN
                        _ => f.len() - L3_OFFSET6,
                    };
                    assert_eq!(ip.total_len(), want, "{size} {proto}");
                    assert!(checksum_ok(&f), "{size} {proto} {kind:?}");
                    patch_client(&mut f, client_of(70_000));
                    let ip = Ipv6Packet::new_checked(&f[L3_OFFSET6..]).unwrap();
                    assert_eq!(ip.src_addr(), client6_of(*client_of(70_000).ip()));
                    assert!(checksum_ok(&f), "patched {size} {proto} {kind:?}");
                }
            }
        }
    }

    #[test]
    fn a_buffer_too_short_stays_zeroed() {
        let mut f = vec![0xffu8; 60];
        build6(
            &mut f,
            MACS,
            client_of(0),
            &target(IPPROTO_TCP),
            0,
            FrameKind::Syn,
            1,
        );
        assert!(f.iter().all(|&b| b == 0));
    }
}
