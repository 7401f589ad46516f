//! The IPIP/GUE delivery of an untagged frame written in one pass (docs/design.md §3.5): the
//! Ethernet, outer IPv4 and (GUE) UDP + GUE headers go straight into the bytes in front of the
//! inner packet, from fields `classify` already read, with the outer header checksum summed over
//! words the code has in registers, where the general builder path (`wire::builder`) parses the
//! inner header again, emits the outer header through a `Repr`, then prepends Ethernet through an
//! `L2Spec`. Its output is byte for byte the builder's (the tests compare them); tagged frames
//! keep the builder path. A known flow's delivery calls the writer of its encapsulation
//! ([`encapsulate_as`]), which also makes the inner port rewrite once its checks pass; the
//! established lane's GUE segments take `gue_plain_tcp`, the same bytes at constant offsets.

use super::classify::Meta;
use super::rewrite::{dst_port_only, PLAIN_L4, PLAIN_TCP_END};
use super::route::Hop;
use crate::config::DsrEncapsulation;
use crate::wire::builder::{DEFAULT_TTL, GUE_HEADER_LEN, GUE_OVERHEAD, IPIP_OVERHEAD};
use crate::wire::checksum::fold_small;
use crate::wire::{ethernet, ethertype, ipv4, protocol, udp, PacketBuf, TcpPacket};

/// Ethernet header length of an untagged frame.
const ETH: usize = ethernet::HEADER_LEN;
/// The DF bit of the IPv4 flags/fragment word.
const DF: u32 = 0x4000;

/// Outer destination and ports of one encapsulated packet (the source is the hop's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// Outer destination (the member, host order).
    pub dst: u32,
    /// GUE: UDP source port (from the flow hash); unused for IPIP.
    pub sport: u16,
    /// GUE: UDP destination port (the pool's `gue_port`); unused for IPIP.
    pub dport: u16,
}

/// Encapsulates the untagged frame `buf` holds (inner IPv4 packet at offset 14, `m.ip_len` long;
/// `m.l3` other than 14 declines)
/// for `encap` (IPIP or GUE) from `hop.src_addr` and rewrites its Ethernet header for `hop`.
/// Returns false, with the buffer unchanged, when the fast path does not apply (a tagged frame, a
/// frame shorter than its IPv4 length, too little headroom): the caller then takes the builder
/// path.
#[inline(always)]
pub fn encapsulate_untagged<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    hop: &Hop,
    encap: DsrEncapsulation,
    outer: &Outer,
) -> bool {
    match encap {
        DsrEncapsulation::Gue => encapsulate_as::<B, true>(buf, m, hop, outer, None),
        DsrEncapsulation::Ipip => encapsulate_as::<B, false>(buf, m, hop, outer, None),
        DsrEncapsulation::None => false,
    }
}

/// [`encapsulate_untagged`] for GUE (`GUE`) or IPIP known at compile time, with the inner
/// packet's destination port changed to `port` (TCP/UDP; a known flow's backend port) once the
/// fast path is sure to apply, so that its checks and the encapsulation's are made once. False
/// (buffer unchanged, port included) as [`encapsulate_untagged`].
#[inline(always)]
pub fn encapsulate_as<B: PacketBuf + ?Sized, const GUE: bool>(
    buf: &mut B,
    m: &Meta,
    hop: &Hop,
    outer: &Outer,
    port: Option<u16>,
) -> bool {
    let ip_len = usize::from(m.ip_len);
    let overhead = if GUE { GUE_OVERHEAD } else { IPIP_OVERHEAD };
    // IPv4 at offset 14: an untagged frame (`classify` puts a tagged frame's IPv4 header later).
    if usize::from(m.l3) != ETH {
        return false;
    }
    // The inner header's first two words: TOS, ident and DF go to the outer header.
    let Some(words) = buf
        .data()
        .get(ETH..ETH + ip_len)
        .and_then(|d| d.first_chunk::<8>())
    else {
        return false;
    };
    let words = (word(words, 0), word(words, 4));
    // The headroom check (no change when short of it).
    if buf.prepend(overhead).is_none() {
        return false;
    }
    // Trailing bytes past the inner packet (Ethernet padding) go, as the builder drops them.
    buf.truncate(overhead + ETH + ip_len);
    let d = buf.data_mut();
    if let (Some(p), Some(f)) = (port, d.get_mut(overhead..)) {
        dst_port_only(f, m, p);
    }
    if GUE {
        let Some(h) = d.first_chunk_mut::<{ ETH + GUE_OVERHEAD }>() else {
            return false;
        };
        write_gue_headers(h, hop, outer, words, ip_len);
    } else {
        let Some(h) = d.first_chunk_mut::<{ ETH + IPIP_OVERHEAD }>() else {
            return false;
        };
        let total = (ipv4::HEADER_LEN + ip_len) as u32;
        write_outer_ipv4(h, hop, outer.dst, words, protocol::IPIP, total);
    }
    true
}

/// The GUE delivery of the established lane's frame (docs/design.md §3.4) at constant offsets:
/// an untagged IPv4 TCP segment without options (`classify`'s common shape, `m.l4` at
/// [`PLAIN_L4`]) whose encapsulated length the caller has checked against the MTU. Prepends the
/// outer headers for `outer` by `hop`, drops trailing padding and, when `port` differs from the
/// segment's destination port, rewrites it (checksum updated). False, the buffer unchanged, when
/// the frame is not of that shape, shorter than its IPv4 length, or short of headroom.
#[inline(always)]
pub(super) fn gue_plain_tcp<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    hop: &Hop,
    outer: &Outer,
    port: u16,
) -> bool {
    /// The inner frame's TCP header, past the outer headers.
    const L4: usize = GUE_OVERHEAD + PLAIN_L4;
    /// The bytes written or read: the outer headers, then the inner IPv4 and TCP headers.
    const END: usize = GUE_OVERHEAD + PLAIN_TCP_END;
    let ip_len = usize::from(m.ip_len);
    let frame = ETH + ip_len;
    // The common shape holds a whole TCP header; the frame holds the IPv4 length (`classify`
    // checks both; checked again here so that nothing below can fail after the buffer changed).
    if usize::from(m.l4) != PLAIN_L4 || frame < PLAIN_TCP_END || buf.len() < frame {
        return false;
    }
    if buf.prepend(GUE_OVERHEAD).is_none() {
        return false;
    }
    buf.truncate(GUE_OVERHEAD + frame);
    let Some(h) = buf.data_mut().first_chunk_mut::<END>() else {
        return false;
    };
    let inner = GUE_OVERHEAD + ETH;
    let words = (word(h, inner), word(h, inner + 4));
    if port != m.key.dst_port {
        if let Some(seg) = h.get_mut(L4..) {
            TcpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
    }
    write_gue_headers(h, hop, outer, words, ip_len);
    true
}

/// Writes the Ethernet, outer IPv4, UDP and GUE headers of a GUE packet whose inner IPv4 packet
/// is `ip_len` long with first words `inner` ([`write_outer_ipv4`]) at the front of `h`.
#[inline(always)]
fn write_gue_headers<const N: usize>(
    h: &mut [u8; N],
    hop: &Hop,
    outer: &Outer,
    inner: (u32, u32),
    ip_len: usize,
) {
    const { assert!(N >= ETH + GUE_OVERHEAD) };
    let udp_len = (udp::HEADER_LEN + GUE_HEADER_LEN + ip_len) as u32;
    let total = ipv4::HEADER_LEN as u32 + udp_len;
    write_outer_ipv4(h, hop, outer.dst, inner, protocol::UDP, total);
    let u = ETH + ipv4::HEADER_LEN;
    let ports = u32::from(outer.sport) << 16 | u32::from(outer.dport);
    put(h, u, ports);
    // UDP checksum 0 ("none"); GUE v0, no extensions, protocol 4 (IPv4).
    put(h, u + 4, udp_len << 16);
    put(h, u + 8, u32::from(protocol::IPIP) << 16);
}

/// The big-endian 32-bit word at `at` of `b`.
#[inline(always)]
fn word<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(w)
}

/// Stores `w` big-endian at `at` of `h` (one 4-byte store).
#[inline(always)]
fn put<const N: usize>(h: &mut [u8; N], at: usize, w: u32) {
    h[at..at + 4].copy_from_slice(&w.to_be_bytes());
}

/// Writes the Ethernet header for `hop` and the outer IPv4 header from `hop.src_addr` to `dst`
/// (TTL 64, TOS, ident and DF copied from `inner`, the inner header's first two words, checksum
/// filled) at the front of `h`, a 32-bit word at a time. The checksum sums those words with one
/// carry fold: the ones'-complement sum of 16-bit words is the same over 32-bit words, folded.
#[inline(always)]
fn write_outer_ipv4<const N: usize>(
    h: &mut [u8; N],
    hop: &Hop,
    dst: u32,
    inner: (u32, u32),
    proto: u8,
    total: u32,
) {
    h[..12].copy_from_slice(&hop.macs);
    h[12..ETH].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    let w0 = 0x4500_0000 | (inner.0 & 0x00ff_0000) | total;
    let w1 = inner.1 & (0xffff_0000 | DF);
    let w2 = u32::from(DEFAULT_TTL) << 24 | u32::from(proto) << 16;
    let sum = u64::from(w0) + u64::from(w1) + u64::from(w2) + u64::from(hop.src_addr);
    let sum = sum + u64::from(dst);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let csum = !fold_small((sum & 0xffff) + (sum >> 16));
    put(h, ETH, w0);
    put(h, ETH + 4, w1);
    put(h, ETH + 8, w2 | u32::from(csum));
    put(h, ETH + 12, hop.src_addr);
    put(h, ETH + 16, dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::builder::{
        prepend_ethernet, prepend_gue, prepend_ipip, EncapSpec, FrameSpec, L2Spec,
    };
    use crate::wire::{MacAddr, TcpFlags, VecBuf};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const SRC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
    const DST_MAC: MacAddr = MacAddr([2, 0x76, 10, 1, 0, 11]);

    fn hop(src_addr: u32) -> Hop {
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&DST_MAC.0);
        macs[6..].copy_from_slice(&SRC_MAC.0);
        Hop {
            port: 0,
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            macs,
            mtu: 1500,
            src_addr,
        }
    }

    /// An untagged frame (TCP or UDP) with `tos`, `ident`, DF and `pad` bytes of Ethernet padding.
    fn frame(udp: bool, tos: u8, ident: u16, df: bool, payload: &[u8], pad: usize) -> Vec<u8> {
        let (a, b) = (
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 80),
        );
        let base = if udp {
            FrameSpec::udp(a, b, payload)
        } else {
            FrameSpec {
                payload,
                ..FrameSpec::tcp(a, b, TcpFlags::ACK)
            }
        };
        let mut f = FrameSpec {
            ident,
            dont_frag: df,
            ..base
        }
        .to_vec();
        f[ETH + 1] = tos;
        f.extend(std::iter::repeat_n(0xee, pad));
        f
    }

    fn meta(f: &[u8]) -> Meta {
        Meta {
            l3: ETH as u16,
            l4: (ETH + ipv4::HEADER_LEN) as u16,
            ip_len: u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]),
            ..Meta::default()
        }
    }

    /// What the builder path makes of `f`.
    fn by_builder(f: &[u8], encap: DsrEncapsulation, src: u32, outer: &Outer) -> Vec<u8> {
        let mut b = VecBuf::from_slice(f);
        assert!(b.trim_front(ETH));
        let spec = EncapSpec {
            outer_src: Ipv4Addr::from(src),
            outer_dst: Ipv4Addr::from(outer.dst),
            ttl: DEFAULT_TTL,
        };
        if encap == DsrEncapsulation::Gue {
            // The flow hash whose port is `outer.sport` (the port keeps the hash's low 14 bits).
            prepend_gue(&mut b, &spec, u32::from(outer.sport & 0x3fff), false).expect("gue");
            let u = ipv4::HEADER_LEN;
            b.data_mut()[u + 2..u + 4].copy_from_slice(&outer.dport.to_be_bytes());
        } else {
            prepend_ipip(&mut b, &spec).expect("ipip");
        }
        let l2 = L2Spec {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            vlan: None,
        };
        prepend_ethernet(&mut b, &l2, ethertype::IPV4).expect("ethernet");
        b.to_vec()
    }

    proptest! {
        #[test]
        fn same_bytes_as_the_builder(
            udp: bool,
            gue: bool,
            tos: u8,
            ident: u16,
            df: bool,
            frag_bits: u16,
            len in 0usize..64,
            pad in 0usize..8,
            src: u32,
            dst: u32,
            sport in 0xc000u16..=0xffff,
            dport in 1u16..,
            port: u16,
        ) {
            let payload = vec![0x5a; len];
            let mut f = frame(udp, tos, ident, df, &payload, pad);
            // MF and offset bits in the inner flags word (the outer header keeps only DF).
            f[ETH + 6] |= (frag_bits >> 8) as u8 & 0xbf;
            f[ETH + 7] |= frag_bits as u8;
            let encap = if gue { DsrEncapsulation::Gue } else { DsrEncapsulation::Ipip };
            let outer = Outer { dst, sport, dport };
            let mut b = VecBuf::from_slice(&f);
            prop_assert!(encapsulate_untagged(&mut b, &meta(&f), &hop(src), encap, &outer));
            prop_assert_eq!(b.to_vec(), by_builder(&f, encap, src, &outer));
            // With a known flow's port change inside: the port rewrite, then the same.
            let mut m = meta(&f);
            m.key.proto = if udp { protocol::UDP } else { protocol::TCP };
            m.key.dst_port = 80;
            let mut want = VecBuf::from_slice(&f);
            dst_port_only(want.data_mut(), &m, port);
            prop_assert!(encapsulate_untagged(&mut want, &m, &hop(src), encap, &outer));
            let mut got = VecBuf::from_slice(&f);
            prop_assert!(with_port(&mut got, &m, (gue, src), &outer, port));
            prop_assert_eq!(got.to_vec(), want.to_vec());
            // The established lane's GUE writer: the same bytes for a TCP segment.
            if gue && !udp {
                let mut lane = VecBuf::from_slice(&f);
                prop_assert!(gue_plain_tcp(&mut lane, &m, &hop(src), &outer, port));
                prop_assert_eq!(lane.to_vec(), want.to_vec());
            }
        }
    }

    /// [`encapsulate_as`] for GUE (`gue`) or IPIP from `src` with the destination port changed
    /// to `port`.
    fn with_port(
        b: &mut VecBuf,
        m: &Meta,
        (gue, src): (bool, u32),
        outer: &Outer,
        port: u16,
    ) -> bool {
        if gue {
            encapsulate_as::<_, true>(b, m, &hop(src), outer, Some(port))
        } else {
            encapsulate_as::<_, false>(b, m, &hop(src), outer, Some(port))
        }
    }

    /// Whether the fast path declines `f` in `b` (with meta `m`) and leaves the buffer as it was,
    /// also when asked to change the destination port of a TCP packet.
    fn declined(mut b: VecBuf, m: &Meta, encap: DsrEncapsulation) -> bool {
        let before = b.to_vec();
        let outer = Outer {
            dst: 2,
            sport: 0xc000,
            dport: 6080,
        };
        let mut tcp = *m;
        tcp.key.proto = protocol::TCP;
        tcp.key.dst_port = 80;
        let mut c = b.clone();
        let gue = encap == DsrEncapsulation::Gue;
        let port_declined = encap == DsrEncapsulation::None
            || (!with_port(&mut c, &tcp, (gue, 1), &outer, 8080) && c.to_vec() == before);
        let mut l = b.clone();
        let lane_declined =
            !gue || (!gue_plain_tcp(&mut l, &tcp, &hop(1), &outer, 8080) && l.to_vec() == before);
        !encapsulate_untagged(&mut b, m, &hop(1), encap, &outer)
            && b.to_vec() == before
            && port_declined
            && lane_declined
    }

    #[test]
    fn declines_what_it_cannot_do_and_leaves_the_frame() {
        let f = frame(false, 0, 1, true, b"x", 0);
        let gue = DsrEncapsulation::Gue;
        let too_little_headroom = VecBuf::with_room(GUE_OVERHEAD - 1, &f, 0);
        assert!(declined(too_little_headroom, &meta(&f), gue));
        // A tagged frame as `classify` describes it: the IPv4 and TCP headers after the tag.
        let tagged = Meta {
            vlan: Some(7),
            l3: (ETH + 4) as u16,
            l4: (ETH + 4 + ipv4::HEADER_LEN) as u16,
            ..meta(&f)
        };
        assert!(declined(VecBuf::from_slice(&f), &tagged, gue));
        let shorter_than_its_ipv4_length = VecBuf::from_slice(&f[..f.len() - 1]);
        assert!(declined(shorter_than_its_ipv4_length, &meta(&f), gue));
        let none = DsrEncapsulation::None;
        assert!(declined(VecBuf::from_slice(&f), &meta(&f), none));
    }
}
