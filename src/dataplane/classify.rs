//! Classification of one received frame: Ethernet (one optional 802.1Q tag) → IPv4 → TCP, UDP,
//! ICMP or another protocol, into a [`Meta`] the rest of the pipeline works from, or an early
//! verdict (slow path or drop).
//!
//! Order of checks: ARP → slow path; IPv6 → [`Early::Ipv6`] (the pipeline's IPv6 lane decides it);
//! other non-IPv4 ethertypes → `unsupported`; IPv4 header
//! (version, IHL, total length within the frame; IP options are accepted and skipped) →
//! `bad_header`; destination = an appliance interface address → slow path (`ToAppliance`, the
//! kernel reassembles and answers); fragments → slow path, counted `fragment`; ICMP to a frontend
//! → slow path; ICMP errors in transit → slow path; TTL ≤ 1 → slow path, counted `ttl`; TCP data
//! offset and UDP length → `bad_header`. Every read is bounds-checked by the `wire` views, so no
//! input can make it read past the frame or panic.

use super::reason::{DropReason, Exception};
use super::{Verdict, View};
use crate::flow::{FlowKey, HoldsKey};
use crate::wire::{
    ethertype, ipv4, protocol, tcp, udp, EthernetFrame, Ipv4Packet, TcpPacket, UdpPacket,
};

/// What the pipeline needs to know about a classified IPv4 packet (offsets into the frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// The packet's 5-tuple as received (addresses in host order; ports 0 without ports): its
    /// flow key, stored once here, where the burst lookup reads it.
    pub key: FlowKey,
    /// Offset of the IPv4 header (14, or 18 behind a tag).
    pub l3: u16,
    /// Offset of the transport header.
    pub l4: u16,
    /// IPv4 total length.
    pub ip_len: u16,
    /// 802.1Q TCI of the received frame, if tagged (kept on output).
    pub vlan: Option<u16>,
    /// DF flag.
    pub df: bool,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number.
    pub ack: u32,
    /// TCP payload length.
    pub payload: u32,
}

impl HoldsKey<FlowKey> for Meta {
    #[inline(always)]
    fn held_key(&self) -> &FlowKey {
        &self.key
    }
}

/// The transport fields of a TCP or UDP header, as IPv4's [`Meta`] and IPv6's
/// [`Meta6`](super::classify6::Meta6) carry them (TCP's numbers, flags and payload are 0 for UDP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Transport {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number.
    pub ack: u32,
    /// TCP flags byte.
    pub tcp_flags: u8,
    /// TCP payload length.
    pub payload: u32,
}

/// Whether a UDP checksum of 0 ("none computed") is accepted: over IPv4 it is, over IPv6 it is
/// invalid (RFC 8200 §8.1: receivers discard it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UdpChecksum {
    /// 0 means "not computed" (IPv4).
    ZeroAllowed,
    /// 0 makes the header unsound (IPv6).
    Required,
}

impl Transport {
    /// Reads `seg`, the upper-layer segment of a packet, as a TCP (`tcp`) or UDP header; `None`
    /// when the header does not fit (TCP data offset, UDP length) or a UDP checksum `udp` refuses
    /// is 0.
    #[inline(always)]
    pub(super) fn read(seg: &[u8], tcp: bool, udp: UdpChecksum) -> Option<Transport> {
        if tcp {
            let t = TcpPacket::new_checked(seg).ok()?;
            return Some(Transport {
                sport: t.src_port(),
                dport: t.dst_port(),
                seq: t.seq_number(),
                ack: t.ack_number(),
                tcp_flags: seg[tcp::field::FLAG_BITS],
                payload: (seg.len() - t.header_len()) as u32,
            });
        }
        let u = UdpPacket::new_checked(seg).ok()?;
        if udp == UdpChecksum::Required && u.checksum() == 0 {
            return None;
        }
        Some(Transport {
            sport: u.src_port(),
            dport: u.dst_port(),
            ..Transport::default()
        })
    }

    /// `(sport, dport, seq, ack, tcp_flags, payload)`, for a one-line store into a meta.
    #[inline(always)]
    pub(super) fn fields(self) -> (u16, u16, u32, u32, u8, u32) {
        let t = self;
        (t.sport, t.dport, t.seq, t.ack, t.tcp_flags, t.payload)
    }
}

/// ICMP types that are errors about another packet (unreachable, time exceeded, parameter problem).
#[inline]
fn is_icmp_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// Why IPv4 classification did not produce a [`Meta`]: a final verdict, or an IPv6 frame (for
/// the pipeline's IPv6 lane: neither a verdict nor a counted drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Early {
    /// The frame's verdict, decided here.
    Verdict(Verdict),
    /// EtherType IPv6 (untagged or behind one 802.1Q tag): the IPv6 classifier decides it.
    Ipv6,
}

impl From<Verdict> for Early {
    #[inline(always)]
    fn from(v: Verdict) -> Early {
        Early::Verdict(v)
    }
}

/// Classifies `frame`. `Err` carries the final verdict (already decided here; an IPv6 frame is
/// `unsupported` for this IPv4 classifier).
#[inline]
pub fn classify(frame: &[u8], view: &View<'_>) -> Result<Meta, Verdict> {
    let mut m = Meta::default();
    match classify_into(frame, view, &mut m) {
        Ok(_) => Ok(m),
        Err(Early::Verdict(v)) => Err(v),
        Err(Early::Ipv6) => Err(Verdict::Drop(DropReason::Unsupported)),
    }
}

/// [`classify`] writing the result into `m`; an IPv6 frame is [`Early::Ipv6`]. On `Err`, `m`
/// holds unspecified values. (The burst loop calls the two steps itself: see
/// [`classify_beyond_tcp`].)
fn classify_into(frame: &[u8], view: &View<'_>, m: &mut Meta) -> Result<(), Early> {
    match classify_tcp_fast(frame, view, m) {
        Some(_) => Ok(()),
        None => classify_beyond_tcp(frame, view, m).map(|_| ()),
    }
}

/// [`classify_into`] for a frame [`classify_tcp_fast`] declined. The burst loop calls the two
/// itself and hashes each one's key in its own arm: one key value merged from both paths was
/// taken apart and put together again byte by byte in the loop's compiled form.
#[inline(always)]
pub(super) fn classify_beyond_tcp(
    frame: &[u8],
    view: &View<'_>,
    m: &mut Meta,
) -> Result<FlowKey, Early> {
    if frame.get(crate::wire::ethernet::field::ETHERTYPE)
        == Some(&ethertype::IPV6.to_be_bytes()[..])
    {
        // The IPv6 lane's common frame, untagged: marked without a call.
        return Err(Early::Ipv6);
    }
    // Only a frame with UDP's protocol byte where an option-less IPv4 header has it tries UDP's
    // fast path (one load and compare for the others).
    if frame.get(at::PROTOCOL) == Some(&protocol::UDP) {
        if let Some(key) = classify_udp_fast(frame, view, m) {
            return Ok(key);
        }
    }
    classify_other(frame, view, m).map(|()| m.key)
}

/// A frame neither fast path nor the untagged IPv6 check took: an IPv6 frame behind a tag is
/// marked [`Early::Ipv6`] at once (no general parse for the IPv6 lane's frames), anything else
/// takes [`classify_general`]. Out of line, as the general path.
#[inline(never)]
fn classify_other(frame: &[u8], view: &View<'_>, m: &mut Meta) -> Result<(), Early> {
    if is_ipv6(frame) {
        return Err(Early::Ipv6);
    }
    classify_general(frame, view, m)
}

/// EtherType IPv6, untagged or behind one 802.1Q tag: the frames [`classify_general`] would mark
/// [`Early::Ipv6`], recognised before it (a tagged frame too short for its tag is left to it).
#[inline(always)]
fn is_ipv6(frame: &[u8]) -> bool {
    let word = |at: core::ops::Range<usize>| {
        frame
            .get(at)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    match word(crate::wire::ethernet::field::ETHERTYPE) {
        ethertype::IPV6 => true,
        ethertype::VLAN => word(crate::wire::ethernet::field::VLAN_ETHERTYPE) == ethertype::IPV6,
        _ => false,
    }
}

/// Offsets in the frame shape [`classify_tcp_fast`] and [`classify_udp_fast`] take: an untagged
/// Ethernet header, an IPv4 header without options, a TCP or UDP header (each field named by its
/// `wire` module).
mod at {
    use crate::wire::{ethernet, ipv4, tcp, udp};

    /// The IPv4 header.
    pub const IP: usize = ethernet::HEADER_LEN;
    /// The TCP header.
    pub const TCP: usize = IP + ipv4::HEADER_LEN;
    /// The end of the option-less TCP header: the bytes the fast path reads.
    pub const END: usize = TCP + tcp::HEADER_LEN;

    /// Ethernet: the ethertype.
    pub const ETHERTYPE: usize = ethernet::field::ETHERTYPE.start;
    /// IPv4: version and header length.
    pub const VER_IHL: usize = IP + ipv4::field::VER_IHL;
    /// IPv4: total length.
    pub const LENGTH: usize = IP + ipv4::field::LENGTH.start;
    /// IPv4: flags and fragment offset.
    pub const FLG_OFF: usize = IP + ipv4::field::FLG_OFF.start;
    /// IPv4: TTL.
    pub const TTL: usize = IP + ipv4::field::TTL;
    /// IPv4: protocol.
    pub const PROTOCOL: usize = IP + ipv4::field::PROTOCOL;
    /// IPv4: source address.
    pub const SRC_ADDR: usize = IP + ipv4::field::SRC_ADDR.start;
    /// IPv4: destination address.
    pub const DST_ADDR: usize = IP + ipv4::field::DST_ADDR.start;
    /// TCP: source port.
    pub const SRC_PORT: usize = TCP + tcp::field::SRC_PORT.start;
    /// TCP: destination port.
    pub const DST_PORT: usize = TCP + tcp::field::DST_PORT.start;
    /// TCP: sequence number.
    pub const SEQ_NUM: usize = TCP + tcp::field::SEQ_NUM.start;
    /// TCP: acknowledgement number.
    pub const ACK_NUM: usize = TCP + tcp::field::ACK_NUM.start;
    /// TCP: data offset.
    pub const DATA_OFF: usize = TCP + tcp::field::DATA_OFF;
    /// TCP: flag bits.
    pub const FLAG_BITS: usize = TCP + tcp::field::FLAG_BITS;

    /// The end of the UDP header (it starts where the TCP one does).
    pub const UDP_END: usize = TCP + udp::HEADER_LEN;
    /// UDP: source port.
    pub const UDP_SRC_PORT: usize = TCP + udp::field::SRC_PORT.start;
    /// UDP: destination port.
    pub const UDP_DST_PORT: usize = TCP + udp::field::DST_PORT.start;
    /// UDP: length.
    pub const UDP_LENGTH: usize = TCP + udp::field::LENGTH.start;
}

/// The big-endian 16-bit word at `i` of `h` (`i` is a constant offset of [`at`]).
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], i: usize) -> u16 {
    u16::from_be_bytes([h[i], h[i + 1]])
}

/// The big-endian 32-bit word at `i` of `h` (`i` is a constant offset of [`at`]).
#[inline(always)]
fn be32<const N: usize>(h: &[u8; N], i: usize) -> u32 {
    u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]])
}

/// The checks both fast paths make on the first `N` bytes `h` of a frame of `frame_len` bytes:
/// untagged IPv4 without options carrying `proto`, not a fragment, TTL > 1, the total length
/// within the frame. Its flags-and-fragment-offset word and total length; `None` otherwise.
#[inline(always)]
fn plain_ipv4<const N: usize>(h: &[u8; N], frame_len: usize, proto: u8) -> Option<(u16, usize)> {
    let ff = be16(h, at::FLG_OFF);
    if be16(h, at::ETHERTYPE) != ethertype::IPV4
        || h[at::VER_IHL] != ipv4::VER_IHL_NO_OPTIONS
        || h[at::PROTOCOL] != proto
        || h[at::TTL] <= 1
        || ff & ipv4::FRAGMENT_MASK != 0
    {
        return None;
    }
    let ip_len = usize::from(be16(h, at::LENGTH));
    (ip_len + at::IP <= frame_len).then_some((ff, ip_len))
}

/// Is `dst` an address of one of the appliance's interfaces?
#[inline(always)]
fn to_appliance(view: &View<'_>, dst: u32) -> bool {
    // One port (a one-arm appliance) without the loop's pointer walk.
    match view.ports {
        [p] => u32::from(p.addr) == dst,
        ports => ports.iter().any(|p| u32::from(p.addr) == dst),
    }
}

/// The common case in one pass over fixed offsets: an untagged IPv4 frame without options or
/// fragmentation carrying TCP, TTL > 1, not to an appliance address, lengths consistent. Fills
/// `m` exactly as [`classify_general`] would and returns its flow key (the value stored in `m`,
/// not read back); `None` (with `m` untouched) for anything else, which then takes the general
/// path (and gets its verdict there).
#[inline(always)]
pub(super) fn classify_tcp_fast(frame: &[u8], view: &View<'_>, m: &mut Meta) -> Option<FlowKey> {
    let h = frame.first_chunk::<{ at::END }>()?;
    let (ff, ip_len) = plain_ipv4(h, frame.len(), protocol::TCP)?;
    let thl = usize::from(h[at::DATA_OFF] >> 4) * 4;
    if thl < tcp::HEADER_LEN || ipv4::HEADER_LEN + thl > ip_len {
        return None;
    }
    if to_appliance(view, be32(h, at::DST_ADDR)) {
        return None;
    }
    let t = Transport {
        sport: be16(h, at::SRC_PORT),
        dport: be16(h, at::DST_PORT),
        seq: be32(h, at::SEQ_NUM),
        ack: be32(h, at::ACK_NUM),
        tcp_flags: h[at::FLAG_BITS],
        payload: (ip_len - ipv4::HEADER_LEN - thl) as u32,
    };
    let key = plain_key(h, protocol::TCP, &t);
    *m = plain_meta(key, (ff, ip_len), t);
    Some(key)
}

/// The flow key of a frame of the fast paths' shape whose first bytes are `h`, with protocol
/// `proto` and transport `t`.
#[inline(always)]
fn plain_key<const N: usize>(h: &[u8; N], proto: u8, t: &Transport) -> FlowKey {
    let (src, dst) = (be32(h, at::SRC_ADDR), be32(h, at::DST_ADDR));
    FlowKey::new(src, dst, t.sport, t.dport, proto)
}

/// The [`Meta`] of a frame of the fast paths' shape with flow key `key`, flags-and-fragment-offset
/// word and total length `ip`, and transport `t`.
#[inline(always)]
fn plain_meta(key: FlowKey, ip: (u16, usize), t: Transport) -> Meta {
    let (ff, ip_len) = ip;
    Meta {
        key,
        l3: at::IP as u16,
        l4: at::TCP as u16,
        ip_len: ip_len as u16,
        vlan: None,
        df: ff & ipv4::FLAG_DF != 0,
        tcp_flags: t.tcp_flags,
        seq: t.seq,
        ack: t.ack,
        payload: t.payload,
    }
}

/// [`classify_tcp_fast`] for UDP (after it declined the frame): an untagged IPv4 frame without
/// options or fragmentation carrying UDP, TTL > 1, not to an appliance address, the UDP length
/// within the IPv4 payload. Fills `m` exactly as [`classify_general`] would and returns its flow
/// key; `None` (with `m` untouched) for anything else. Out of line: the burst loop keeps only
/// TCP's.
#[inline(never)]
fn classify_udp_fast(frame: &[u8], view: &View<'_>, m: &mut Meta) -> Option<FlowKey> {
    let h = frame.first_chunk::<{ at::UDP_END }>()?;
    let (ff, ip_len) = plain_ipv4(h, frame.len(), protocol::UDP)?;
    let udp_len = usize::from(be16(h, at::UDP_LENGTH));
    if udp_len < udp::HEADER_LEN || ipv4::HEADER_LEN + udp_len > ip_len {
        return None;
    }
    if to_appliance(view, be32(h, at::DST_ADDR)) {
        return None;
    }
    let t = Transport {
        sport: be16(h, at::UDP_SRC_PORT),
        dport: be16(h, at::UDP_DST_PORT),
        ..Transport::default()
    };
    let key = plain_key(h, protocol::UDP, &t);
    *m = plain_meta(key, (ff, ip_len), t);
    Some(key)
}

/// Every frame the fast paths do not take: the checks in the order of the module documentation.
#[inline(never)]
fn classify_general(frame: &[u8], view: &View<'_>, m: &mut Meta) -> Result<(), Early> {
    let bad = Err(Verdict::Drop(DropReason::BadHeader).into());
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return bad;
    };
    let Ok(l3) = eth.l3() else {
        return bad;
    };
    if l3.ethertype != ethertype::IPV4 {
        return Err(match l3.ethertype {
            ethertype::ARP => Verdict::ToSlowPath(Exception::Arp).into(),
            ethertype::IPV6 => Early::Ipv6,
            _ => Verdict::Drop(DropReason::Unsupported).into(),
        });
    }
    let off = l3.offset;
    let Some(ipb) = frame.get(off..) else {
        return bad;
    };
    let Ok(ip) = Ipv4Packet::new_checked(ipb) else {
        return bad;
    };
    let dst = u32::from(ip.dst_addr());
    if to_appliance(view, dst) {
        return Err(Verdict::ToSlowPath(Exception::ToAppliance).into());
    }
    if ip.is_fragment() {
        return Err(Verdict::ToSlowPath(Exception::Fragment).into());
    }
    let hl = ip.header_len();
    let ip_len = ip.total_len() as usize;
    let proto = ip.protocol();
    let ttl = ip.ttl();
    let l4 = off + hl;
    *m = Meta {
        key: FlowKey::new(u32::from(ip.src_addr()), dst, 0, 0, proto),
        l3: off as u16,
        l4: l4 as u16,
        ip_len: ip_len as u16,
        vlan: l3.vlan_tci,
        df: ip.dont_frag(),
        tcp_flags: 0,
        seq: 0,
        ack: 0,
        payload: 0,
    };
    let Some(seg) = frame.get(l4..off + ip_len) else {
        return bad;
    };
    match proto {
        protocol::TCP | protocol::UDP => {
            let udp = UdpChecksum::ZeroAllowed;
            let Some(t) = Transport::read(seg, proto == protocol::TCP, udp) else {
                return bad;
            };
            let k = &mut m.key;
            (k.src_port, k.dst_port, m.seq, m.ack, m.tcp_flags, m.payload) = t.fields();
        }
        protocol::ICMP => {
            let Some(&t) = seg.first() else {
                return bad;
            };
            if view.snapshot.is_frontend(dst) {
                return Err(Verdict::ToSlowPath(Exception::IcmpToFrontend).into());
            }
            if is_icmp_error(t) {
                return Err(Verdict::ToSlowPath(Exception::IcmpError).into());
            }
        }
        _ => {}
    }
    if ttl <= 1 {
        return Err(Verdict::ToSlowPath(Exception::TtlExceeded).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{Health, Snapshot};
    use crate::config::Config;
    use crate::dataplane::EgressPort;
    use crate::dataplane::NeighbourMap;
    use crate::wire::{FrameSpec, MacAddr, TcpFlags};
    use std::net::{Ipv4Addr, SocketAddrV4};

    const CFG: &str = r#"
[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"

[[frontends]]
name = "fe"
address = "10.1.0.100"

[[backend_pools]]
name = "web"
members = [ { name = "vm1", address = "10.1.0.11" } ]

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
"#;

    fn with_view<R>(f: impl FnOnce(&View<'_>) -> R) -> R {
        let c = Config::from_str(CFG, "t.toml").unwrap();
        let s = Snapshot::compile(&c, &Health::all_up(&c));
        let n = NeighbourMap::default();
        let ports = [EgressPort {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            addr: Ipv4Addr::new(10, 1, 0, 2),
            mtu: 1500,
        }];
        f(&View {
            snapshot: &s,
            neighbours: &n,
            ports: &ports,
        })
    }

    #[test]
    fn tagged_tcp_meta() {
        let mut spec = FrameSpec::tcp(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 80),
            TcpFlags::SYN | TcpFlags::ACK,
        );
        spec.vlan = Some(7);
        spec.payload = b"abc";
        let f = spec.to_vec();
        let m = with_view(|v| classify(&f, v)).unwrap();
        assert_eq!((m.l3, m.l4, m.ip_len), (18, 38, 43));
        assert_eq!(m.vlan, Some(7));
        assert_eq!((m.key.src_port, m.key.dst_port, m.payload), (4000, 80, 3));
        assert_eq!(m.tcp_flags, 0x12);
        assert_eq!(m.key.dst_ip, u32::from(Ipv4Addr::new(10, 1, 0, 100)));
    }

    /// IPv6 (untagged or behind one 802.1Q tag) is marked for the IPv6 lane, not decided; another
    /// ethertype stays `unsupported`; [`classify`] calls IPv6 `unsupported` (it is IPv4's).
    #[test]
    fn ipv6_is_marked_for_its_lane_and_other_ethertypes_are_unsupported() {
        let mut untagged = vec![0u8; 80];
        untagged[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        untagged[14] = 0x60;
        let mut tagged = untagged[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        tagged.extend_from_slice(&untagged[12..]);
        let mut other = untagged.clone();
        other[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        with_view(|v| {
            let mut m = Meta::default();
            assert_eq!(classify_into(&untagged, v, &mut m), Err(Early::Ipv6));
            assert_eq!(classify_into(&tagged, v, &mut m), Err(Early::Ipv6));
            let unsupported = Verdict::Drop(DropReason::Unsupported);
            assert_eq!(classify_into(&other, v, &mut m), Err(unsupported.into()));
            assert_eq!(classify(&untagged, v), Err(unsupported));
            // Marked before any parse, as the general path marks them: the bare Ethernet
            // header of each; a tag cut short is the general path's `bad_header`.
            assert_eq!(classify_into(&untagged[..14], v, &mut m), Err(Early::Ipv6));
            assert_eq!(classify_into(&tagged[..18], v, &mut m), Err(Early::Ipv6));
            let bad = Verdict::Drop(DropReason::BadHeader);
            assert_eq!(classify_into(&tagged[..16], v, &mut m), Err(bad.into()));
        });
    }

    #[test]
    fn every_truncation_is_bad_header_or_slow_path() {
        let f = FrameSpec::tcp(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 80),
            TcpFlags::SYN,
        )
        .to_vec();
        with_view(|v| {
            assert!(classify(&f, v).is_ok());
            for n in 0..f.len() {
                assert_eq!(
                    classify(&f[..n], v),
                    Err(Verdict::Drop(DropReason::BadHeader)),
                    "cut at {n}"
                );
            }
        });
    }

    /// The TCP fast path gives exactly what the general path gives, on frames with any one byte
    /// of the headers changed (versions, lengths, offsets, flags, protocols, TTLs, addresses) and
    /// every truncation.
    #[test]
    fn fast_path_agrees_with_general_path() {
        let mut spec = FrameSpec::tcp(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 80),
            TcpFlags::ACK,
        );
        spec.payload = b"abcdef";
        fast_agrees_with_general(&spec.to_vec(), classify_tcp_fast);
    }

    /// [`fast_path_agrees_with_general_path`] for the UDP fast path (UDP lengths included).
    #[test]
    fn udp_fast_path_agrees_with_general_path() {
        let spec = FrameSpec::udp(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 53),
            b"abcdef",
        );
        fast_agrees_with_general(&spec.to_vec(), classify_udp_fast);
    }

    /// `fast` on `f`, every truncation of it and every one-byte change of it: wherever it takes
    /// the frame, it fills exactly what the general path does; it takes `f`.
    fn fast_agrees_with_general(
        f: &[u8],
        fast: fn(&[u8], &View<'_>, &mut Meta) -> Option<FlowKey>,
    ) {
        with_view(|v| {
            let mut fast_taken = 0;
            let mut check = |fr: &[u8]| {
                let mut a = Meta::default();
                if let Some(key) = fast(fr, v, &mut a) {
                    assert_eq!(key, a.key, "frame {fr:?}");
                    fast_taken += 1;
                    let mut b = Meta::default();
                    assert_eq!(classify_general(fr, v, &mut b), Ok(()));
                    assert_eq!(a, b, "frame {fr:?}");
                }
            };
            check(f);
            for n in 0..f.len() {
                check(&f[..n]);
            }
            for at in 0..f.len() {
                for val in [
                    0u8, 1, 2, 4, 5, 6, 0x0f, 0x10, 0x11, 0x20, 0x40, 0x45, 0x46, 0x50, 0xff,
                ] {
                    let mut g = f.to_vec();
                    g[at] = val;
                    check(&g);
                }
            }
            assert!(fast_taken > 100);
            assert!(fast(f, v, &mut Meta::default()).is_some());
        });
    }

    #[test]
    fn appliance_address_and_ttl() {
        let to_us = FrameSpec::tcp(
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 11), 1),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 22),
            TcpFlags::SYN,
        );
        let mut ttl1 = FrameSpec::udp(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1),
            SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 53),
            b"",
        );
        ttl1.ttl = 1;
        with_view(|v| {
            assert_eq!(
                classify(&to_us.to_vec(), v),
                Err(Verdict::ToSlowPath(Exception::ToAppliance))
            );
            assert_eq!(
                classify(&ttl1.to_vec(), v),
                Err(Verdict::ToSlowPath(Exception::TtlExceeded))
            );
        });
    }
}
