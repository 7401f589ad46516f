//! Frames the appliance originates over IPv6: ICMPv6 echo reply (in place), ICMPv6 errors quoting
//! as much of the offending packet as fits in the IPv6 minimum MTU, and Neighbour Discovery:
//! the advertisement answering a solicitation, unsolicited advertisements, and solicitations.

use std::net::Ipv6Addr;

use super::{room, L2Spec, DEFAULT_TTL};
use crate::wire::ethernet::{self, ethertype, MacAddr};
use crate::wire::icmpv6::{self, msg_type, nd_flags, NdRepr, ND_HOP_LIMIT};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{Error, ErrorKind, Layer, Result};

/// The all-nodes multicast address ff02::1 (destination of unsolicited advertisements).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The most bytes of the offending packet an ICMPv6 error quotes: the error fits in the minimum
/// MTU (1280 - 40 - 8).
pub const MAX_ERROR_QUOTE: usize = ipv6::MIN_MTU - ipv6::HEADER_LEN - icmpv6::HEADER_LEN;

/// The Ethernet address an IPv6 multicast address maps to (RFC 2464 §7): 33:33 + its low 32 bits.
#[inline]
pub fn multicast_mac(a: Ipv6Addr) -> MacAddr {
    let o = a.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1): ff02::1:ff00:0 + its low 24 bits.
#[inline]
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let low = a.to_bits() & 0x00ff_ffff;
    Ipv6Addr::from_bits(0xff02_0000_0000_0000_0000_0001_ff00_0000 | low)
}

/// Where the ICMPv6 message of an Ethernet (+VLAN) / IPv6 frame is: (L3 offset, IPv6 total length,
/// ICMPv6 offset), after the extension-header walk; a fragment or another protocol is an error.
fn icmpv6_in_frame(frame: &[u8]) -> Result<(ethernet::L3Info, usize, usize)> {
    let l3 = ethernet::Frame::new_checked(frame)?.l3()?;
    if l3.ethertype != ethertype::IPV6 {
        return Err(Error::new(
            Layer::Ethernet,
            ErrorKind::Unsupported(l3.ethertype),
            l3.offset - 2,
        ));
    }
    let at = l3.offset;
    let ip = ipv6::Packet::new_checked(&frame[at..]).map_err(|e| e.shifted(at))?;
    let u = ip.upper_layer().map_err(|e| e.shifted(at))?;
    if u.protocol != next_header::ICMPV6 || u.is_fragment() {
        let nh = if u.is_fragment() {
            next_header::FRAGMENT
        } else {
            u.protocol
        };
        return Err(Error::new(
            Layer::Ipv6,
            ErrorKind::Unsupported(nh as u16),
            at + ipv6::field::NEXT_HEADER,
        ));
    }
    Ok((l3, ip.total_len(), at + u.offset))
}

/// Turns an Ethernet/IPv6 ICMPv6 echo request into its reply in place: swaps MACs and addresses,
/// sets hop limit 64, type 129, and updates the checksum incrementally (extension headers are
/// kept). Returns the reply length (the frame without trailing padding).
pub fn icmpv6_echo_reply_in_place(frame: &mut [u8]) -> Result<usize> {
    let (l3, total, at) = icmpv6_in_frame(frame)?;
    let end = l3.offset + total;
    {
        let mut m = icmpv6::Packet::new_checked(&mut frame[at..end]).map_err(|e| e.shifted(at))?;
        if !m.is_echo_request() {
            return Err(Error::new(
                Layer::Icmpv6,
                ErrorKind::Unsupported(m.msg_type() as u16),
                at,
            ));
        }
        m.rewrite_type_code(msg_type::ECHO_REPLY, 0);
    }
    let mut ip = ipv6::Packet::new_unchecked(&mut frame[l3.offset..end]);
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(d); // the pseudo-header sum does not change when the two are swapped
    ip.set_dst_addr(s);
    ip.set_hop_limit(DEFAULT_TTL);
    ethernet::Frame::new_unchecked(&mut frame[..]).swap_addrs();
    Ok(end)
}

/// An ICMPv6 error to originate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6ErrorKind {
    /// Destination Unreachable with a code from [`icmpv6::unreachable`].
    DestUnreachable(u8),
    /// Packet Too Big with the MTU of the next hop.
    PacketTooBig {
        /// The MTU to report.
        mtu: u32,
    },
    /// Time Exceeded with a code from [`icmpv6::time_exceeded`].
    TimeExceeded(u8),
}

impl Icmpv6ErrorKind {
    /// (type, code, the 4 type-specific bytes).
    #[inline]
    fn type_code_rest(self) -> (u8, u8, u32) {
        match self {
            Icmpv6ErrorKind::DestUnreachable(c) => (msg_type::DEST_UNREACHABLE, c, 0),
            Icmpv6ErrorKind::PacketTooBig { mtu } => (msg_type::PACKET_TOO_BIG, 0, mtu),
            Icmpv6ErrorKind::TimeExceeded(c) => (msg_type::TIME_EXCEEDED, c, 0),
        }
    }
}

/// Builds an Ethernet/IPv6/ICMPv6 error from `src_ip` to the source of `original` (the offending
/// IPv6 packet, starting at its header), quoting as much of it as fits in 1280 bytes
/// ([`MAX_ERROR_QUOTE`]; bytes past its payload length are not quoted). Whether an error may be
/// sent at all (not for ICMPv6 errors, multicast, rate limits) is the caller's call.
pub fn icmpv6_error(
    out: &mut [u8],
    l2: &L2Spec,
    src_ip: Ipv6Addr,
    kind: Icmpv6ErrorKind,
    original: &[u8],
) -> Result<usize> {
    let ip = ipv6::Packet::new_checked_header(original)?;
    let q = original.len().min(ip.total_len()).min(MAX_ERROR_QUOTE);
    let dst_ip = ip.src_addr();
    let l3 = l2.header_len();
    let len = icmpv6::HEADER_LEN + q;
    let n = l3 + ipv6::HEADER_LEN + len;
    room(out, n)?;
    let out = &mut out[..n];
    l2.emit(out, ethertype::IPV6)?;
    ipv6_header(&mut out[l3..], src_ip, dst_ip, DEFAULT_TTL, len)?;
    let (t, c, rest) = kind.type_code_rest();
    let mut p = icmpv6::Packet::new_unchecked(&mut out[l3 + ipv6::HEADER_LEN..]);
    p.set_msg_type(t);
    p.set_code(c);
    p.set_rest_of_header(rest);
    p.data_mut().copy_from_slice(&original[..q]);
    p.fill_checksum(src_ip, dst_ip);
    Ok(n)
}

/// Writes the IPv6 header of an ICMPv6 message of `len` bytes.
#[inline]
fn ipv6_header(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hops: u8,
    len: usize,
) -> Result<usize> {
    ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next_header::ICMPV6,
        hop_limit: hops,
        traffic_class: 0,
        flow_label: 0,
        payload_len: len,
    }
    .emit(out)
}

/// Writes an Ethernet/IPv6 (hop limit 255) Neighbour Discovery frame carrying `nd`.
fn nd_frame(
    out: &mut [u8],
    l2: &L2Spec,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdRepr,
) -> Result<usize> {
    let l3 = l2.header_len();
    let n = l3 + ipv6::HEADER_LEN + nd.buffer_len();
    room(out, n)?;
    l2.emit(out, ethertype::IPV6)?;
    ipv6_header(&mut out[l3..], src, dst, ND_HOP_LIMIT, nd.buffer_len())?;
    nd.emit(&mut out[l3 + ipv6::HEADER_LEN..n], src, dst)?;
    Ok(n)
}

/// Builds a Neighbour Advertisement of `target` from `src_ip` to `dst_ip` with `flags`
/// ([`nd_flags`]) and the target link-layer address `l2.src_mac`.
pub fn neighbor_advert(
    out: &mut [u8],
    l2: &L2Spec,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    flags: u8,
    target: Ipv6Addr,
) -> Result<usize> {
    let nd = NdRepr::Advert {
        flags,
        target,
        target_ll: Some(l2.src_mac),
    };
    nd_frame(out, l2, src_ip, dst_ip, &nd)
}

/// Builds the unsolicited advertisement (override, to all nodes) announcing that `addr` is at
/// `mac`, as sent when an address comes up.
pub fn unsolicited_advert(
    out: &mut [u8],
    mac: MacAddr,
    vlan: Option<u16>,
    addr: Ipv6Addr,
) -> Result<usize> {
    let l2 = L2Spec {
        src_mac: mac,
        dst_mac: multicast_mac(ALL_NODES),
        vlan,
    };
    neighbor_advert(out, &l2, addr, ALL_NODES, nd_flags::OVERRIDE, addr)
}

/// Builds a Neighbour Solicitation for `target` from `src_ip`/`src_mac` to the target's
/// solicited-node group, with the source link-layer address option.
pub fn neighbor_solicit(
    out: &mut [u8],
    src_mac: MacAddr,
    vlan: Option<u16>,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<usize> {
    let dst = solicited_node(target);
    let l2 = L2Spec {
        src_mac,
        dst_mac: multicast_mac(dst),
        vlan,
    };
    neighbor_solicit_to(out, &l2, src_ip, dst, target)
}

/// Builds a Neighbour Solicitation for `target` from `src_ip` to `dst_ip` (the solicited-node
/// group, or the target itself to confirm a cached address, RFC 4861 §7.2.2) with the source
/// link-layer address option `l2.src_mac`.
pub fn neighbor_solicit_to(
    out: &mut [u8],
    l2: &L2Spec,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<usize> {
    let nd = NdRepr::Solicit {
        target,
        source_ll: Some(l2.src_mac),
    };
    nd_frame(out, l2, src_ip, dst_ip, &nd)
}

/// An error about the Neighbour Solicitation at `offset` of a frame.
#[inline]
fn bad_ns(kind: ErrorKind, offset: usize) -> Error {
    Error::new(Layer::Icmpv6, kind, offset)
}

/// Builds, into `out`, the advertisement from `our_mac` answering the Ethernet (+VLAN) Neighbour
/// Solicitation `ns_frame` (RFC 4861 §7.2.4): solicited + override to the soliciting node, or, for
/// duplicate address detection (unspecified source), override only to all nodes. The solicitation
/// must be valid: hop limit 255, code 0, correct checksum, well-formed options, unicast target.
/// Whether the target is ours to answer is the caller's call.
pub fn neighbor_advert_reply(out: &mut [u8], ns_frame: &[u8], our_mac: MacAddr) -> Result<usize> {
    let (l3, total, at) = icmpv6_in_frame(ns_frame)?;
    let ip = ipv6::Packet::new_unchecked(&ns_frame[l3.offset..l3.offset + total]);
    if ip.hop_limit() != ND_HOP_LIMIT {
        let off = l3.offset + ipv6::field::HOP_LIMIT;
        return Err(Error::new(
            Layer::Ipv6,
            ErrorKind::Unsupported(ip.hop_limit() as u16),
            off,
        ));
    }
    let m =
        icmpv6::Packet::new_checked(&ns_frame[at..l3.offset + total]).map_err(|e| e.shifted(at))?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !m.verify_checksum(src, dst) {
        return Err(bad_ns(ErrorKind::BadChecksum, at + 2));
    }
    let nd = NdRepr::parse(&m).map_err(|e| e.shifted(at))?;
    let NdRepr::Solicit { target, source_ll } = nd else {
        return Err(bad_ns(ErrorKind::Unsupported(m.msg_type() as u16), at));
    };
    if target.is_multicast() {
        return Err(bad_ns(ErrorKind::Unsupported(0xff), at + 8));
    }
    let asker = ethernet::Frame::new_unchecked(ns_frame).src_addr();
    let (dst_ip, dst_mac, flags) = if src.is_unspecified() {
        (ALL_NODES, multicast_mac(ALL_NODES), nd_flags::OVERRIDE)
    } else {
        let f = nd_flags::SOLICITED | nd_flags::OVERRIDE;
        (src, source_ll.unwrap_or(asker), f)
    };
    let l2 = L2Spec {
        src_mac: our_mac,
        dst_mac,
        vlan: l3.vlan_tci,
    };
    neighbor_advert(out, &l2, target, dst_ip, flags, target)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{l2, MAC1, MAC2};
    use super::*;
    use crate::wire::golden6::{self, bytes, CLIENT, SERVER};

    #[test]
    fn echo_reply_matches_golden() {
        let mut f = bytes(golden6::ECHO_REQUEST);
        f[14 + 7] = 3; // hop limit of the request does not matter
        f.extend_from_slice(&[0; 4]); // padding is cut
        let n = icmpv6_echo_reply_in_place(&mut f).unwrap();
        assert_eq!(&f[..n], &bytes(golden6::ECHO_REPLY)[..]);
        // Not an echo request, not ICMPv6, not IPv6: errors.
        assert!(icmpv6_echo_reply_in_place(&mut f[..n]).is_err());
        let mut u = bytes(golden6::NS);
        let e = icmpv6_echo_reply_in_place(&mut u).unwrap_err();
        assert_eq!(
            (e.layer, e.kind),
            (Layer::Icmpv6, ErrorKind::Unsupported(135))
        );
        let mut t = vec![0u8; 14];
        t[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        t.extend_from_slice(&bytes(golden6::FRAGMENT));
        let e = icmpv6_echo_reply_in_place(&mut t).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported(next_header::FRAGMENT as u16));
        t[12] = 8;
        assert!(icmpv6_echo_reply_in_place(&mut t).is_err());
    }

    #[test]
    fn packet_too_big_matches_golden_and_fits_the_minimum_mtu() {
        let golden = bytes(golden6::PTB);
        let original = &golden[14 + 48..];
        let server_side = L2Spec {
            src_mac: MAC2,
            dst_mac: MAC1,
            vlan: None,
        };
        let src = "2001:db8::fe".parse().unwrap();
        let mut out = [0u8; 1500];
        let kind = Icmpv6ErrorKind::PacketTooBig { mtu: 1400 };
        let n = icmpv6_error(&mut out, &server_side, src, kind, original).unwrap();
        assert_eq!(&out[..n], &golden[..]);
        // A big offending packet is quoted up to 1280 bytes of error.
        let mut big = vec![0u8; 1500];
        big[..original.len()].copy_from_slice(original);
        ipv6::Packet::new_unchecked(&mut big[..]).set_payload_len(1460);
        let n = icmpv6_error(&mut out, &l2(Some(7)), src, kind, &big).unwrap();
        assert_eq!(n, 18 + ipv6::MIN_MTU);
        let ip = ipv6::Packet::new_checked(&out[18..n]).unwrap();
        let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum(src, CLIENT));
        assert_eq!(m.data(), &big[..MAX_ERROR_QUOTE]);
        for (k, t, c) in [
            (Icmpv6ErrorKind::DestUnreachable(4), 1, 4),
            (Icmpv6ErrorKind::TimeExceeded(0), 3, 0),
        ] {
            let n = icmpv6_error(&mut out, &l2(None), src, k, original).unwrap();
            let m = icmpv6::Packet::new_checked(&out[54..n]).unwrap();
            assert_eq!((m.msg_type(), m.code(), m.rest_of_header()), (t, c, 0));
            assert_eq!(m.inner_flow().unwrap().ports, Some((1000, 2000)));
        }
        assert!(icmpv6_error(&mut out[..100], &l2(None), src, kind, original).is_err());
        assert!(icmpv6_error(&mut out, &l2(None), src, kind, &original[..39]).is_err());
    }

    #[test]
    fn advert_answers_solicitation_like_golden() {
        let ns = bytes(golden6::NS);
        let mut out = [0u8; 128];
        let n = neighbor_advert_reply(&mut out, &ns, MAC2).unwrap();
        assert_eq!(&out[..n], &bytes(golden6::NA)[..]);
        // Our own solicitation for the same target is the golden one, sent to the group's MAC.
        let n = neighbor_solicit(&mut out, MAC1, None, CLIENT, SERVER).unwrap();
        assert_eq!(&out[14..n], &ns[14..]);
        assert_eq!(&out[..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        assert_eq!(
            solicited_node(SERVER),
            "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn tagged_solicitation_is_answered_on_its_vlan() {
        let ns = bytes(golden6::NS);
        let mut tagged = ns[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        tagged.extend_from_slice(&ns[12..]);
        let mut out = [0u8; 128];
        let n = neighbor_advert_reply(&mut out, &tagged, MAC2).unwrap();
        let l3 = ethernet::Frame::new_checked(&out[..n])
            .unwrap()
            .l3()
            .unwrap();
        assert_eq!((l3.vlan_id(), l3.offset), (Some(42), 18));
        assert_eq!(&out[18..n], &bytes(golden6::NA)[14..]);
    }

    #[test]
    fn duplicate_address_detection_and_unsolicited_adverts_go_to_all_nodes() {
        let mut ns = bytes(golden6::NS);
        // DAD: unspecified source, no source link-layer option.
        ns.truncate(ns.len() - 8);
        ipv6::Packet::new_unchecked(&mut ns[14..]).set_payload_len(24);
        ipv6::Packet::new_unchecked(&mut ns[14..]).set_src_addr(Ipv6Addr::UNSPECIFIED);
        let dst = ipv6::Packet::new_unchecked(&ns[14..]).dst_addr();
        icmpv6::Packet::new_unchecked(&mut ns[54..]).fill_checksum(Ipv6Addr::UNSPECIFIED, dst);
        let mut out = [0u8; 128];
        let n = neighbor_advert_reply(&mut out, &ns, MAC2).unwrap();
        let mut u = [0u8; 128];
        assert_eq!(unsolicited_advert(&mut u, MAC2, None, SERVER).unwrap(), n);
        assert_eq!(out[..n], u[..n]);
        let ip = ipv6::Packet::new_checked(&out[14..n]).unwrap();
        assert_eq!((ip.dst_addr(), ip.hop_limit()), (ALL_NODES, 255));
        assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum(SERVER, ALL_NODES));
        assert_eq!(m.nd_flags(), nd_flags::OVERRIDE);
    }

    #[test]
    fn invalid_solicitations_are_not_answered() {
        let ns = bytes(golden6::NS);
        let mut out = [0u8; 128];
        let mut hop = ns.clone();
        hop[21] = 64;
        let e = neighbor_advert_reply(&mut out, &hop, MAC2).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Unsupported(64), 21));
        let mut sum = ns.clone();
        sum[60] ^= 1;
        let e = neighbor_advert_reply(&mut out, &sum, MAC2).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::BadChecksum, 56));
        let mut zero = ns.clone();
        zero[79] = 0; // option length 0
        let s = ipv6::Packet::new_unchecked(&zero[14..]).src_addr();
        let d = ipv6::Packet::new_unchecked(&zero[14..]).dst_addr();
        icmpv6::Packet::new_unchecked(&mut zero[54..]).fill_checksum(s, d);
        let e = neighbor_advert_reply(&mut out, &zero, MAC2).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::BadHeaderLen(0), 78));
        assert!(neighbor_advert_reply(&mut out, &bytes(golden6::NA), MAC2).is_err());
        assert!(neighbor_advert_reply(&mut out[..80], &ns, MAC2).is_err());
    }
}
