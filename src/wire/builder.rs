//! Builders for the packets vipmux originates or encapsulates: TCP RST, ICMP echo reply (in place),
//! ICMP errors (destination unreachable, fragmentation needed, time exceeded), ARP request/reply,
//! IPv4-in-IPv4 and GUE encapsulation prepended into a [`PacketBuf`], and [`FrameSpec`], a
//! test-friendly builder of whole Ethernet/IPv4/TCP|UDP|ICMP frames with correct checksums.
//!
//! Every builder writes into caller-provided memory, returns the length written, and reports lack of
//! room or malformed input as an [`Error`] instead of panicking (except [`FrameSpec::build`], a
//! convenience for tests and the traffic generator).

use super::buf::PacketBuf;
use super::ethernet::{self, ethertype, MacAddr};
use super::icmp::{self, msg_type};
use super::ipv4::{self, protocol};
use super::tcp::{self, Flags};
use super::{arp, checksum, udp};
use super::{Error, ErrorKind, Layer, Result};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Default TTL of packets vipmux originates.
pub const DEFAULT_TTL: u8 = 64;
/// UDP destination port of GUE.
pub const GUE_PORT: u16 = 6080;
/// Length of a GUE header without extension fields.
pub const GUE_HEADER_LEN: usize = 4;
/// Bytes IPv4-in-IPv4 adds in front of the inner packet.
pub const IPIP_OVERHEAD: usize = ipv4::HEADER_LEN;
/// Bytes GUE (outer IPv4 + UDP + GUE header) adds in front of the inner packet.
pub const GUE_OVERHEAD: usize = ipv4::HEADER_LEN + udp::HEADER_LEN + GUE_HEADER_LEN;

/// Link-layer addressing of a frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Spec {
    /// Source MAC (the egress port).
    pub src_mac: MacAddr,
    /// Destination MAC (next hop).
    pub dst_mac: MacAddr,
    /// 802.1Q TCI to tag with, if any.
    pub vlan: Option<u16>,
}

impl L2Spec {
    /// Ethernet header length (14 or 18).
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            ethernet::TAGGED_HEADER_LEN
        } else {
            ethernet::HEADER_LEN
        }
    }

    #[inline]
    fn emit(&self, out: &mut [u8], ethertype: u16) -> Result<usize> {
        ethernet::Repr {
            src_addr: self.src_mac,
            dst_addr: self.dst_mac,
            vlan_tci: self.vlan,
            ethertype,
        }
        .emit(out)
    }
}

#[inline]
fn room(out: &[u8], n: usize) -> Result<()> {
    if out.len() < n {
        Err(Error::no_room(n, out.len()))
    } else {
        Ok(())
    }
}

/// The transport part of a [`FrameSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Spec {
    /// A TCP segment without options.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flags.
        flags: Flags,
        /// Window.
        window: u16,
    },
    /// A UDP datagram with checksum.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// An ICMP echo request or reply.
    IcmpEcho {
        /// Request (type 8) or reply (type 0).
        request: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
}

impl L4Spec {
    /// IP protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        match self {
            L4Spec::Tcp { .. } => protocol::TCP,
            L4Spec::Udp { .. } => protocol::UDP,
            L4Spec::IcmpEcho { .. } => protocol::ICMP,
        }
    }
    /// Header length.
    #[inline]
    pub fn header_len(&self) -> usize {
        match self {
            L4Spec::Tcp { .. } => tcp::HEADER_LEN,
            L4Spec::Udp { .. } => udp::HEADER_LEN,
            L4Spec::IcmpEcho { .. } => icmp::HEADER_LEN,
        }
    }
}

/// A whole Ethernet (+VLAN) / IPv4 / TCP|UDP|ICMP-echo frame to build, with correct checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec<'a> {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// 802.1Q TCI, if tagged.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// TTL.
    pub ttl: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// DF flag.
    pub dont_frag: bool,
    /// Transport header.
    pub proto: L4Spec,
    /// Transport payload.
    pub payload: &'a [u8],
}

impl<'a> FrameSpec<'a> {
    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    /// A TCP frame with test MACs 02:..:01 -> 02:..:02, TTL 64, DF, seq 1, ack 0, window 65535.
    pub fn tcp(src: SocketAddrV4, dst: SocketAddrV4, flags: Flags) -> Self {
        FrameSpec {
            src_mac: Self::MAC_A,
            dst_mac: Self::MAC_B,
            vlan: None,
            src_ip: *src.ip(),
            dst_ip: *dst.ip(),
            ttl: DEFAULT_TTL,
            ident: 0,
            dont_frag: true,
            proto: L4Spec::Tcp {
                sport: src.port(),
                dport: dst.port(),
                seq: 1,
                ack: 0,
                flags,
                window: 0xffff,
            },
            payload: &[],
        }
    }

    /// A UDP frame with the same defaults as [`FrameSpec::tcp`].
    pub fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &'a [u8]) -> Self {
        FrameSpec {
            proto: L4Spec::Udp {
                sport: src.port(),
                dport: dst.port(),
            },
            payload,
            ..Self::tcp(src, dst, Flags::NONE)
        }
    }

    /// An ICMP echo request with the same defaults as [`FrameSpec::tcp`].
    pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq_no: u16) -> Self {
        FrameSpec {
            proto: L4Spec::IcmpEcho {
                request: true,
                ident,
                seq_no,
            },
            ..Self::tcp(
                SocketAddrV4::new(src, 0),
                SocketAddrV4::new(dst, 0),
                Flags::NONE,
            )
        }
    }

    /// Offset of the IPv4 header in the built frame.
    #[inline]
    pub fn l3_offset(&self) -> usize {
        L2Spec {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan: self.vlan,
        }
        .header_len()
    }

    /// Offset of the transport header in the built frame.
    #[inline]
    pub fn l4_offset(&self) -> usize {
        self.l3_offset() + ipv4::HEADER_LEN
    }

    /// Length of the built frame (no padding to 60 bytes is added).
    #[inline]
    pub fn len(&self) -> usize {
        self.l4_offset() + self.proto.header_len() + self.payload.len()
    }

    /// Always false: a frame has at least its headers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame into the front of `out`; returns its length or a `NoRoom` error.
    pub fn try_build(&self, out: &mut [u8]) -> Result<usize> {
        let n = self.len();
        room(out, n)?;
        let out = &mut out[..n];
        let l2 = L2Spec {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan: self.vlan,
        };
        let l3 = l2.emit(out, ethertype::IPV4)?;
        let l4_len = n - l3 - ipv4::HEADER_LEN;
        ipv4::Repr {
            src_addr: self.src_ip,
            dst_addr: self.dst_ip,
            protocol: self.proto.protocol(),
            ttl: self.ttl,
            tos: 0,
            ident: self.ident,
            dont_frag: self.dont_frag,
            payload_len: l4_len,
        }
        .emit(&mut out[l3..])?;
        let seg = &mut out[l3 + ipv4::HEADER_LEN..];
        match self.proto {
            L4Spec::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
            } => {
                tcp::Repr {
                    src_port: sport,
                    dst_port: dport,
                    seq_number: seq,
                    ack_number: ack,
                    flags,
                    window,
                }
                .emit(seg, self.src_ip, self.dst_ip, self.payload)?;
            }
            L4Spec::Udp { sport, dport } => {
                udp::Repr {
                    src_port: sport,
                    dst_port: dport,
                }
                .emit(seg, self.src_ip, self.dst_ip, self.payload)?;
            }
            L4Spec::IcmpEcho {
                request,
                ident,
                seq_no,
            } => {
                let mut p = icmp::Packet::new_unchecked(seg);
                p.set_msg_type(if request {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                });
                p.set_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(self.payload);
                p.fill_checksum();
            }
        }
        Ok(n)
    }

    /// Writes the frame into `out`; panics if `out` is shorter than [`FrameSpec::len`]
    /// (a convenience for tests and the generator, never for received input).
    pub fn build(&self, out: &mut [u8]) -> usize {
        match self.try_build(out) {
            Ok(n) => n,
            Err(e) => panic!("FrameSpec::build: {e}"),
        }
    }

    /// The frame as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.build(&mut v);
        v
    }
}

/// Builds a TCP RST (with ACK and `ack` if given) from `src` to `dst`, TTL 64, window 0.
pub fn tcp_rst(
    out: &mut [u8],
    l2: &L2Spec,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: Option<u32>,
) -> Result<usize> {
    let mut spec = FrameSpec::tcp(
        src,
        dst,
        if ack.is_some() {
            Flags::RST | Flags::ACK
        } else {
            Flags::RST
        },
    );
    spec.src_mac = l2.src_mac;
    spec.dst_mac = l2.dst_mac;
    spec.vlan = l2.vlan;
    spec.proto = L4Spec::Tcp {
        sport: src.port(),
        dport: dst.port(),
        seq,
        ack: ack.unwrap_or(0),
        flags: if ack.is_some() {
            Flags::RST | Flags::ACK
        } else {
            Flags::RST
        },
        window: 0,
    };
    spec.try_build(out)
}

/// Parses an Ethernet (+VLAN) / IPv4 frame; returns (L3 offset, IPv4 total length).
fn ipv4_in_frame(frame: &[u8]) -> Result<(usize, usize)> {
    let f = ethernet::Frame::new_checked(frame)?;
    let l3 = f.l3()?;
    if l3.ethertype != ethertype::IPV4 {
        return Err(Error::new(
            Layer::Ethernet,
            ErrorKind::Unsupported(l3.ethertype),
            l3.offset - 2,
        ));
    }
    let ip = ipv4::Packet::new_checked(&frame[l3.offset..]).map_err(|e| e.shifted(l3.offset))?;
    Ok((l3.offset, ip.total_len() as usize))
}

/// Turns an Ethernet/IPv4 ICMP echo request into its reply in place: swaps MACs and addresses,
/// sets TTL 64, type 0, and updates both checksums incrementally. Returns the reply length (the
/// frame without trailing padding).
pub fn icmp_echo_reply_in_place(frame: &mut [u8]) -> Result<usize> {
    let (l3, total) = ipv4_in_frame(frame)?;
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..l3 + total]);
    if ip.protocol() != protocol::ICMP {
        return Err(Error::new(
            Layer::Ipv4,
            ErrorKind::Unsupported(ip.protocol() as u16),
            l3 + ipv4::field::PROTOCOL,
        ));
    }
    let hl = ip.header_len();
    {
        let mut icmp =
            icmp::Packet::new_checked(ip.payload_mut()).map_err(|e| e.shifted(l3 + hl))?;
        if !icmp.is_echo_request() {
            return Err(Error::new(
                Layer::Icmp,
                ErrorKind::Unsupported(icmp.msg_type() as u16),
                l3 + hl,
            ));
        }
        icmp.rewrite_type_code(msg_type::ECHO_REPLY, 0);
    }
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(d); // swapping two summed words leaves the header checksum unchanged
    ip.set_dst_addr(s);
    ip.rewrite_ttl(DEFAULT_TTL);
    ethernet::Frame::new_unchecked(&mut frame[..]).swap_addrs();
    Ok(l3 + total)
}

/// An ICMP error to originate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable with a code from [`icmp::unreachable`] (port, host, protocol ...).
    DestUnreachable(u8),
    /// Destination unreachable, fragmentation needed and DF set, with the usable next-hop MTU.
    FragNeeded {
        /// Next-hop MTU to report.
        mtu: u16,
    },
    /// Time exceeded with a code from [`icmp::time_exceeded`].
    TimeExceeded(u8),
}

impl IcmpErrorKind {
    /// Port unreachable.
    pub const PORT_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::PORT);
    /// Host unreachable.
    pub const HOST_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::HOST);
    /// Protocol unreachable.
    pub const PROTOCOL_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::PROTOCOL);
    /// TTL exceeded in transit.
    pub const TTL_EXCEEDED: IcmpErrorKind = IcmpErrorKind::TimeExceeded(icmp::time_exceeded::TTL);

    #[inline]
    fn type_code_rest(self) -> (u8, u8, u32) {
        match self {
            IcmpErrorKind::DestUnreachable(c) => (msg_type::DEST_UNREACHABLE, c, 0),
            IcmpErrorKind::FragNeeded { mtu } => (
                msg_type::DEST_UNREACHABLE,
                icmp::unreachable::FRAG_NEEDED,
                mtu as u32,
            ),
            IcmpErrorKind::TimeExceeded(c) => (msg_type::TIME_EXCEEDED, c, 0),
        }
    }
}

/// Length of the quote an ICMP error carries for `original`: its IPv4 header + 8 bytes, clamped to
/// what is there.
#[inline]
fn quote_len(original: &[u8]) -> Result<usize> {
    let ip = ipv4::Packet::new_checked_header(original)?;
    Ok((ip.header_len() + 8).min(original.len()))
}

/// Builds an Ethernet/IPv4/ICMP error from `src_ip` to the source of `original` (the offending IPv4
/// packet, starting at its header), quoting its IPv4 header + 8 bytes. Whether an error may be sent
/// at all (not for ICMP errors, non-first fragments, broadcasts; rate limits) is the caller's call.
pub fn icmp_error(
    out: &mut [u8],
    l2: &L2Spec,
    src_ip: Ipv4Addr,
    kind: IcmpErrorKind,
    original: &[u8],
) -> Result<usize> {
    let q = quote_len(original)?;
    let dst_ip = ipv4::Packet::new_unchecked(original).src_addr();
    let l3 = l2.header_len();
    let n = l3 + ipv4::HEADER_LEN + icmp::HEADER_LEN + q;
    room(out, n)?;
    let out = &mut out[..n];
    l2.emit(out, ethertype::IPV4)?;
    ipv4::Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        protocol: protocol::ICMP,
        ttl: DEFAULT_TTL,
        tos: 0,
        ident: 0,
        dont_frag: false,
        payload_len: icmp::HEADER_LEN + q,
    }
    .emit(&mut out[l3..])?;
    let (t, c, rest) = kind.type_code_rest();
    let mut p = icmp::Packet::new_unchecked(&mut out[l3 + ipv4::HEADER_LEN..]);
    p.set_msg_type(t);
    p.set_code(c);
    p.set_rest_of_header(rest);
    p.data_mut().copy_from_slice(&original[..q]);
    p.fill_checksum();
    Ok(n)
}

/// Turns an Ethernet (+VLAN) ARP request into the reply from `our_mac` in place (the requested
/// address is answered as ours; checking that it is ours is the caller's job). Returns the reply
/// length: the ARP end, padded with zeros to 60 bytes when the buffer allows.
pub fn arp_reply_in_place(frame: &mut [u8], our_mac: MacAddr) -> Result<usize> {
    let f = ethernet::Frame::new_checked(&frame[..])?;
    let l3 = f.l3()?;
    if l3.ethertype != ethertype::ARP {
        return Err(Error::new(
            Layer::Ethernet,
            ErrorKind::Unsupported(l3.ethertype),
            l3.offset - 2,
        ));
    }
    let a = arp::Packet::new_checked(&frame[l3.offset..]).map_err(|e| e.shifted(l3.offset))?;
    let req = arp::Repr::parse(&a).map_err(|e| e.shifted(l3.offset))?;
    if req.operation != arp::OP_REQUEST {
        return Err(Error::new(
            Layer::Arp,
            ErrorKind::Unsupported(req.operation),
            l3.offset + arp::field::OPER.start,
        ));
    }
    arp::Repr {
        operation: arp::OP_REPLY,
        sender_hw_addr: our_mac,
        sender_ip: req.target_ip,
        target_hw_addr: req.sender_hw_addr,
        target_ip: req.sender_ip,
    }
    .emit(&mut frame[l3.offset..])?;
    let mut f = ethernet::Frame::new_unchecked(&mut frame[..]);
    f.set_dst_addr(req.sender_hw_addr);
    f.set_src_addr(our_mac);
    Ok(pad_min(frame, l3.offset + arp::PACKET_LEN))
}

/// Zero-pads `frame[len..60]` if the buffer allows; returns the padded length.
#[inline]
fn pad_min(frame: &mut [u8], len: usize) -> usize {
    let padded = ethernet::MIN_FRAME_LEN.min(frame.len()).max(len);
    frame[len..padded].fill(0);
    padded
}

/// Builds a broadcast ARP request (who has `target_ip`? tell `sender_ip`), padded to 60 bytes.
/// A gratuitous ARP is a request with `target_ip == sender_ip`.
pub fn arp_request(
    out: &mut [u8],
    src_mac: MacAddr,
    vlan: Option<u16>,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<usize> {
    let l2 = L2Spec {
        src_mac,
        dst_mac: MacAddr::BROADCAST,
        vlan,
    };
    let l3 = l2.header_len();
    room(out, l3 + arp::PACKET_LEN)?;
    l2.emit(out, ethertype::ARP)?;
    arp::Repr {
        operation: arp::OP_REQUEST,
        sender_hw_addr: src_mac,
        sender_ip,
        target_hw_addr: MacAddr::ZERO,
        target_ip,
    }
    .emit(&mut out[l3..])?;
    Ok(pad_min(out, l3 + arp::PACKET_LEN))
}

/// Which end of a packet a NAT rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

/// Rewrites the source or destination address (and, for TCP/UDP, port) of the IPv4 packet at the
/// front of `ip`, updating the IPv4, TCP and UDP checksums incrementally (RFC 1624; a UDP checksum
/// of 0 stays 0). ICMP and other protocols get the address change only (their checksums do not
/// cover it). Fragments are refused: their L4 header is absent or partial.
pub fn rewrite_endpoint(
    ip: &mut [u8],
    which: Endpoint,
    addr: Ipv4Addr,
    port: Option<u16>,
) -> Result<()> {
    let mut p = ipv4::Packet::new_checked(ip)?;
    if p.is_fragment() {
        return Err(Error::new(
            Layer::Ipv4,
            ErrorKind::Unsupported(p.flags_frag_word()),
            ipv4::field::FLG_OFF.start,
        ));
    }
    let hl = p.header_len();
    // Validate the L4 header before changing anything, so an error leaves the packet untouched.
    match p.protocol() {
        protocol::TCP => {
            tcp::Packet::new_checked(p.payload()).map_err(|e| e.shifted(hl))?;
        }
        protocol::UDP => {
            udp::Packet::new_checked(p.payload()).map_err(|e| e.shifted(hl))?;
        }
        _ => {}
    }
    let old = match which {
        Endpoint::Src => p.rewrite_src_addr(addr),
        Endpoint::Dst => p.rewrite_dst_addr(addr),
    };
    match p.protocol() {
        protocol::TCP => {
            let mut t = tcp::Packet::new_checked(p.payload_mut()).map_err(|e| e.shifted(hl))?;
            t.update_checksum_for_addr(old, addr);
            match (which, port) {
                (Endpoint::Src, Some(n)) => {
                    t.rewrite_src_port(n);
                }
                (Endpoint::Dst, Some(n)) => {
                    t.rewrite_dst_port(n);
                }
                _ => {}
            }
        }
        protocol::UDP => {
            let mut u = udp::Packet::new_checked(p.payload_mut()).map_err(|e| e.shifted(hl))?;
            u.update_checksum_for_addr(old, addr);
            match (which, port) {
                (Endpoint::Src, Some(n)) => {
                    u.rewrite_src_port(n);
                }
                (Endpoint::Dst, Some(n)) => {
                    u.rewrite_dst_port(n);
                }
                _ => {}
            }
        }
        _ => {}
    }
    Ok(())
}

/// Outer addressing of an encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapSpec {
    /// Outer source (the MUX).
    pub outer_src: Ipv4Addr,
    /// Outer destination (the backend).
    pub outer_dst: Ipv4Addr,
    /// Outer TTL.
    pub ttl: u8,
}

/// Checks the inner IPv4 packet at the front of `buf`, trims trailing bytes past its total length,
/// and returns (tos, DF, ident, length).
fn inner_ipv4<B: PacketBuf + ?Sized>(buf: &mut B) -> Result<(u8, bool, u16, usize)> {
    let ip = ipv4::Packet::new_checked(buf.data())?;
    let r = (
        ip.tos(),
        ip.dont_frag(),
        ip.ident(),
        ip.total_len() as usize,
    );
    buf.truncate(r.3);
    Ok(r)
}

#[inline]
fn prepend_room<B: PacketBuf + ?Sized>(buf: &mut B, n: usize) -> Result<()> {
    if buf.headroom() < n {
        return Err(Error::no_room(n, buf.headroom()));
    }
    buf.prepend(n)
        .map(|_| ())
        .ok_or(Error::no_room(n, buf.headroom()))
}

/// Writes an outer IPv4 header in front of an inner packet of `inner_len` bytes.
fn outer_ipv4(
    out: &mut [u8],
    spec: &EncapSpec,
    proto: u8,
    inner: (u8, bool, u16),
    payload_len: usize,
) -> Result<usize> {
    ipv4::Repr {
        src_addr: spec.outer_src,
        dst_addr: spec.outer_dst,
        protocol: proto,
        ttl: spec.ttl,
        tos: inner.0,
        ident: inner.2,
        dont_frag: inner.1,
        payload_len,
    }
    .emit(out)
}

/// Prepends an outer IPv4 header (protocol 4, TOS/DF/ident copied from the inner header) in front
/// of the inner IPv4 packet that `buf` holds. Returns the new length (Ethernet not included).
pub fn prepend_ipip<B: PacketBuf + ?Sized>(buf: &mut B, spec: &EncapSpec) -> Result<usize> {
    let (tos, df, ident, inner_len) = inner_ipv4(buf)?;
    prepend_room(buf, IPIP_OVERHEAD)?;
    outer_ipv4(
        buf.data_mut(),
        spec,
        protocol::IPIP,
        (tos, df, ident),
        inner_len,
    )?;
    Ok(buf.len())
}

/// UDP source port for GUE from a flow hash: in the ephemeral range 49152..=65535, so receivers can
/// spread flows by RSS.
#[inline]
pub const fn gue_source_port(flow_hash: u32) -> u16 {
    let h = flow_hash ^ (flow_hash >> 16);
    0xc000 | (h as u16 & 0x3fff)
}

/// Prepends outer IPv4 + UDP (source port from `flow_hash`, destination 6080) + GUE header
/// (version 0, no extensions, protocol 4) in front of the inner IPv4 packet that `buf` holds. The
/// UDP checksum is computed when `udp_checksum` is true, else left 0 ("none"). Returns the new
/// length (Ethernet not included).
pub fn prepend_gue<B: PacketBuf + ?Sized>(
    buf: &mut B,
    spec: &EncapSpec,
    flow_hash: u32,
    udp_checksum: bool,
) -> Result<usize> {
    let (tos, df, ident, inner_len) = inner_ipv4(buf)?;
    let udp_len = udp::HEADER_LEN + GUE_HEADER_LEN + inner_len;
    if ipv4::HEADER_LEN + udp_len > u16::MAX as usize {
        return Err(Error::new(
            Layer::Gue,
            ErrorKind::BadLength {
                declared: ipv4::HEADER_LEN + udp_len,
                actual: u16::MAX as usize,
            },
            0,
        ));
    }
    prepend_room(buf, GUE_OVERHEAD)?;
    let d = buf.data_mut();
    outer_ipv4(d, spec, protocol::UDP, (tos, df, ident), udp_len)?;
    let u = &mut d[ipv4::HEADER_LEN..];
    {
        let mut p = udp::Packet::new_unchecked(&mut u[..udp::HEADER_LEN]);
        p.set_src_port(gue_source_port(flow_hash));
        p.set_dst_port(GUE_PORT);
        p.set_len(udp_len as u16);
        p.set_checksum(0);
    }
    // GUE v0: ver(2)=0 C(1)=0 hlen(5)=0 | proto 4 | flags 0.
    u[udp::HEADER_LEN..udp::HEADER_LEN + GUE_HEADER_LEN].copy_from_slice(&[
        0,
        protocol::IPIP,
        0,
        0,
    ]);
    if udp_checksum {
        let c = checksum::udp_finish(checksum::add(
            checksum::pseudo_header_sum(
                spec.outer_src,
                spec.outer_dst,
                protocol::UDP,
                udp_len as u16,
            ),
            checksum::sum(&u[..udp_len]),
        ));
        udp::Packet::new_unchecked(&mut u[..udp::HEADER_LEN]).set_checksum(c);
    }
    Ok(buf.len())
}

/// Prepends an Ethernet header (with the optional tag) carrying `ethertype`; returns the new length.
pub fn prepend_ethernet<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l2: &L2Spec,
    ethertype: u16,
) -> Result<usize> {
    let n = l2.header_len();
    prepend_room(buf, n)?;
    l2.emit(buf.data_mut(), ethertype)?;
    Ok(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::buf::VecBuf;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
    const MAC1: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    const MAC2: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);

    fn l2(vlan: Option<u16>) -> L2Spec {
        L2Spec {
            src_mac: MAC1,
            dst_mac: MAC2,
            vlan,
        }
    }

    /// Cross-checks a frame with etherparse: headers and every checksum.
    fn etherparse_check(frame: &[u8]) -> SlicedPacket<'_> {
        let s = SlicedPacket::from_ethernet(frame).expect("etherparse parses the frame");
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        match &s.transport {
            Some(TransportSlice::Tcp(t)) => {
                let c = t
                    .to_header()
                    .calc_checksum_ipv4(&h, t.payload())
                    .expect("tcp checksum");
                assert_eq!(c, t.checksum(), "TCP checksum");
            }
            Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
                let c = u
                    .to_header()
                    .calc_checksum_ipv4(&h, u.payload())
                    .expect("udp checksum");
                assert_eq!(c, u.checksum(), "UDP checksum");
            }
            Some(TransportSlice::Icmpv4(i)) => {
                assert!(checksum::verify(i.slice()), "ICMP checksum");
            }
            _ => {}
        }
        s
    }

    #[test]
    fn frame_spec_tcp_fixture() {
        let mut spec = FrameSpec::tcp(
            SocketAddrV4::new(A, 40000),
            SocketAddrV4::new(B, 80),
            Flags::SYN,
        );
        spec.ident = 0x0102;
        spec.src_mac = MAC1;
        spec.dst_mac = MAC2;
        let mut out = [0xa5u8; 64];
        let n = spec.build(&mut out);
        assert_eq!(n, 54);
        assert_eq!(&out[54..], &[0xa5; 10]);
        #[rustfmt::skip]
        let expect_prefix: [u8; 38] = [
            0x02, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x28, 0x01, 0x02, 0x40, 0x00, 0x40, 0x06, 0, 0, // checksum below
            10, 1, 0, 1, 10, 2, 0, 2,
            0x9c, 0x40, 0x00, 0x50,
        ];
        let mut x = out;
        x[24] = 0;
        x[25] = 0;
        assert_eq!(&x[..38], &expect_prefix);
        assert_eq!(
            &out[38..50],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff]
        );
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.syn() && !t.ack());
        assert_eq!((t.source_port(), t.destination_port()), (40000, 80));
    }

    #[test]
    fn frame_spec_variants_cross_check() {
        let payload = b"hello, world";
        let specs = [
            FrameSpec {
                vlan: Some(0x0064),
                payload,
                ..FrameSpec::tcp(
                    SocketAddrV4::new(A, 1),
                    SocketAddrV4::new(B, 2),
                    Flags::PSH | Flags::ACK,
                )
            },
            FrameSpec::udp(
                SocketAddrV4::new(A, 5353),
                SocketAddrV4::new(B, 53),
                payload,
            ),
            FrameSpec {
                vlan: Some(7),
                ..FrameSpec::udp(SocketAddrV4::new(A, 5353), SocketAddrV4::new(B, 53), &[])
            },
            FrameSpec {
                payload,
                ..FrameSpec::echo_request(A, B, 9, 10)
            },
        ];
        for spec in specs {
            let v = spec.to_vec();
            assert_eq!(v.len(), spec.len());
            let s = etherparse_check(&v);
            let vlan_id = match &s.vlan {
                Some(etherparse::VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
                _ => None,
            };
            assert_eq!(vlan_id, spec.vlan);
            // Our own parser agrees.
            let f = ethernet::Frame::new_checked(&v[..]).unwrap();
            let l3 = f.l3().unwrap();
            assert_eq!(l3.offset, spec.l3_offset());
            let ip = ipv4::Packet::new_checked(&v[l3.offset..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.protocol(), spec.proto.protocol());
            match spec.proto {
                L4Spec::Tcp { .. } => {
                    let t = tcp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(t.verify_checksum(A, B));
                    assert_eq!(t.payload(), spec.payload);
                }
                L4Spec::Udp { .. } => {
                    let u = udp::Packet::new_checked(ip.payload()).unwrap();
                    assert_ne!(u.checksum(), 0);
                    assert!(u.verify_checksum(A, B));
                    assert_eq!(u.payload(), spec.payload);
                }
                L4Spec::IcmpEcho { .. } => {
                    let i = icmp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(i.verify_checksum() && i.is_echo_request());
                    assert_eq!(i.data(), spec.payload);
                }
            }
        }
        let spec = FrameSpec::udp(SocketAddrV4::new(A, 1), SocketAddrV4::new(B, 2), payload);
        assert!(spec.try_build(&mut [0u8; 20]).is_err());
        assert!(!spec.is_empty());
    }

    #[test]
    fn rst_cross_check() {
        let mut out = [0xa5u8; 80];
        let n = tcp_rst(
            &mut out,
            &l2(Some(5)),
            SocketAddrV4::new(A, 80),
            SocketAddrV4::new(B, 40000),
            0x11223344,
            Some(0x55667788),
        )
        .unwrap();
        assert_eq!(n, 58);
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.rst() && t.ack() && !t.syn());
        assert_eq!(t.sequence_number(), 0x11223344);
        assert_eq!(t.acknowledgment_number(), 0x55667788);
        assert_eq!(t.window_size(), 0);
        let n = tcp_rst(
            &mut out,
            &l2(None),
            SocketAddrV4::new(A, 80),
            SocketAddrV4::new(B, 40000),
            5,
            None,
        )
        .unwrap();
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.rst() && !t.ack());
        assert_eq!(t.acknowledgment_number(), 0);
        assert!(tcp_rst(
            &mut out[..50],
            &l2(None),
            SocketAddrV4::new(A, 1),
            SocketAddrV4::new(B, 2),
            0,
            None
        )
        .is_err());
    }

    #[test]
    fn echo_reply_in_place() {
        for vlan in [None, Some(42)] {
            let spec = FrameSpec {
                vlan,
                ttl: 9,
                payload: b"ping-data",
                ..FrameSpec::echo_request(A, B, 0x77, 3)
            };
            let mut v = spec.to_vec();
            v.extend_from_slice(&[0, 0, 0]); // link padding
            let n = icmp_echo_reply_in_place(&mut v).unwrap();
            assert_eq!(n, spec.len());
            let s = etherparse_check(&v[..n]);
            let Some(NetSlice::Ipv4(ip)) = &s.net else {
                panic!()
            };
            assert_eq!(ip.header().source_addr(), B);
            assert_eq!(ip.header().destination_addr(), A);
            assert_eq!(ip.header().ttl(), DEFAULT_TTL);
            let f = ethernet::Frame::new_checked(&v[..]).unwrap();
            assert_eq!((f.src_addr(), f.dst_addr()), (spec.dst_mac, spec.src_mac));
            let i = icmp::Packet::new_checked(&v[spec.l4_offset()..n]).unwrap();
            assert_eq!(i.msg_type(), msg_type::ECHO_REPLY);
            assert_eq!((i.echo_ident(), i.echo_seq_no()), (0x77, 3));
            assert_eq!(i.data(), b"ping-data");
            assert!(i.verify_checksum());
            // A reply is not answered again.
            let e = icmp_echo_reply_in_place(&mut v).unwrap_err();
            assert_eq!(e.layer, Layer::Icmp);
        }
        let mut udp =
            FrameSpec::udp(SocketAddrV4::new(A, 1), SocketAddrV4::new(B, 2), &[]).to_vec();
        assert_eq!(
            icmp_echo_reply_in_place(&mut udp).unwrap_err().layer,
            Layer::Ipv4
        );
        assert!(icmp_echo_reply_in_place(&mut udp[..30]).is_err());
    }

    #[test]
    fn icmp_errors_quote_and_cross_check() {
        let payload = [0x42u8; 100];
        let orig = FrameSpec::udp(
            SocketAddrV4::new(A, 5000),
            SocketAddrV4::new(B, 53),
            &payload,
        )
        .to_vec();
        let orig_ip = &orig[14..];
        let kinds = [
            IcmpErrorKind::PORT_UNREACHABLE,
            IcmpErrorKind::HOST_UNREACHABLE,
            IcmpErrorKind::PROTOCOL_UNREACHABLE,
            IcmpErrorKind::FragNeeded { mtu: 1450 },
            IcmpErrorKind::TTL_EXCEEDED,
        ];
        let me = Ipv4Addr::new(192, 0, 2, 9);
        for kind in kinds {
            let mut out = [0xa5u8; 128];
            let n = icmp_error(&mut out, &l2(None), me, kind, orig_ip).unwrap();
            assert_eq!(n, 14 + 20 + 8 + 28);
            assert_eq!(&out[n..], &[0xa5; 128 - 70][..]);
            let s = etherparse_check(&out[..n]);
            let Some(NetSlice::Ipv4(ip)) = &s.net else {
                panic!()
            };
            assert_eq!(ip.header().source_addr(), me);
            assert_eq!(ip.header().destination_addr(), A);
            let i = icmp::Packet::new_checked(&out[34..n]).unwrap();
            assert!(i.verify_checksum());
            let (t, c, rest) = kind.type_code_rest();
            assert_eq!((i.msg_type(), i.code(), i.rest_of_header()), (t, c, rest));
            if let IcmpErrorKind::FragNeeded { mtu } = kind {
                assert_eq!(i.next_hop_mtu(), mtu);
                assert_eq!(&out[38..42], &[0, 0, 0x05, 0xaa]);
            }
            assert_eq!(i.data(), &orig_ip[..28]);
            let fl = i.inner_flow().unwrap();
            assert_eq!(
                (fl.src_addr, fl.dst_addr, fl.ports),
                (A, B, Some((5000, 53)))
            );
        }
        // Short original: quote what is there; garbage original: error.
        let mut out = [0u8; 128];
        let n = icmp_error(
            &mut out,
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            &orig_ip[..22],
        )
        .unwrap();
        assert_eq!(n, 14 + 20 + 8 + 22);
        assert!(icmp_error(
            &mut out,
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            &[0x45; 10]
        )
        .is_err());
        assert!(icmp_error(
            &mut out[..60],
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            orig_ip
        )
        .is_err());
    }

    #[test]
    fn arp_request_and_reply() {
        let me = Ipv4Addr::new(10, 0, 0, 1);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        for vlan in [None, Some(3)] {
            let mut out = [0xa5u8; 64];
            let n = arp_request(&mut out, MAC1, vlan, me, vip).unwrap();
            assert_eq!(n, 60);
            assert!(out[l2(vlan).header_len() + 28..60].iter().all(|&b| b == 0));
            let f = ethernet::Frame::new_checked(&out[..n]).unwrap();
            assert!(f.dst_addr().is_broadcast());
            let l3 = f.l3().unwrap();
            assert_eq!(l3.ethertype, ethertype::ARP);
            let req =
                arp::Repr::parse(&arp::Packet::new_checked(&out[l3.offset..n]).unwrap()).unwrap();
            assert_eq!(
                (req.operation, req.sender_ip, req.target_ip),
                (arp::OP_REQUEST, me, vip)
            );
            // The request as seen by vipmux, answered in place.
            let m = arp_reply_in_place(&mut out[..n], MAC2).unwrap();
            assert_eq!(m, 60);
            let f = ethernet::Frame::new_checked(&out[..m]).unwrap();
            assert_eq!((f.src_addr(), f.dst_addr()), (MAC2, MAC1));
            let rep =
                arp::Repr::parse(&arp::Packet::new_checked(&out[l3.offset..m]).unwrap()).unwrap();
            assert_eq!(
                rep,
                arp::Repr {
                    operation: arp::OP_REPLY,
                    sender_hw_addr: MAC2,
                    sender_ip: vip,
                    target_hw_addr: MAC1,
                    target_ip: me,
                }
            );
            // etherparse agrees on the link layer (this version has no ARP parser).
            let s = SlicedPacket::from_ethernet(&out[..m]).unwrap();
            let Some(etherparse::LinkSlice::Ethernet2(e)) = s.link else {
                panic!("etherparse: not Ethernet II")
            };
            assert_eq!(e.source(), MAC2.0);
            assert!(s.net.is_none());
            // A reply is not a request.
            assert!(arp_reply_in_place(&mut out[..m], MAC2).is_err());
        }
        // Unpadded 42-byte request in a 42-byte buffer: reply stays 42.
        let mut out = [0u8; 42];
        arp_request(&mut out, MAC1, None, me, vip).unwrap();
        assert_eq!(arp_reply_in_place(&mut out, MAC2).unwrap(), 42);
    }

    proptest::proptest! {
        #[test]
        fn nat_rewrite_cross_checked(
            src in proptest::num::u32::ANY, dst in proptest::num::u32::ANY,
            naddr in proptest::num::u32::ANY, nport in proptest::num::u16::ANY,
            sport in proptest::num::u16::ANY, dport in proptest::num::u16::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            is_tcp in proptest::bool::ANY, to_dst in proptest::bool::ANY,
            vlan in proptest::option::of(0u16..4096),
        ) {
            let (s, d) = (SocketAddrV4::new(src.into(), sport), SocketAddrV4::new(dst.into(), dport));
            let mut spec = if is_tcp {
                FrameSpec::tcp(s, d, Flags::ACK)
            } else {
                FrameSpec::udp(s, d, &[])
            };
            spec.payload = &payload;
            spec.vlan = vlan;
            let mut f = spec.to_vec();
            let l3 = spec.l3_offset();
            let which = if to_dst { Endpoint::Dst } else { Endpoint::Src };
            rewrite_endpoint(&mut f[l3..], which, naddr.into(), Some(nport)).unwrap();
            let sl = etherparse_check(&f);
            let Some(NetSlice::Ipv4(ip)) = &sl.net else { panic!() };
            let (ns, nd) = (ip.header().source_addr(), ip.header().destination_addr());
            let (ps, pd) = match &sl.transport {
                Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
                Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
                _ => panic!(),
            };
            if to_dst {
                proptest::prop_assert_eq!((ns, ps, nd, pd), (*s.ip(), sport, Ipv4Addr::from(naddr), nport));
            } else {
                proptest::prop_assert_eq!((ns, ps, nd, pd), (Ipv4Addr::from(naddr), nport, *d.ip(), dport));
            }
        }
    }

    #[test]
    fn rewrite_refuses_fragments_and_keeps_udp_zero() {
        let a = SocketAddrV4::new(A, 1);
        let b = SocketAddrV4::new(B, 2);
        let mut f = FrameSpec::udp(a, b, b"x").to_vec();
        udp::Packet::new_unchecked(&mut f[34..]).set_checksum(0);
        rewrite_endpoint(&mut f[14..], Endpoint::Dst, A, Some(9)).unwrap();
        let u = udp::Packet::new_checked(&f[34..]).unwrap();
        assert_eq!((u.checksum(), u.dst_port()), (0, 9));
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_more_frags(true);
        ip.fill_checksum();
        let e = rewrite_endpoint(&mut f[14..], Endpoint::Dst, B, None).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Ipv4, 6));
        // A bad L4 length is reported with its offset in the IPv4 packet and changes nothing.
        let mut f = FrameSpec::udp(a, b, b"x").to_vec();
        f[38..40].copy_from_slice(&100u16.to_be_bytes());
        let before = f.clone();
        let e = rewrite_endpoint(&mut f[14..], Endpoint::Dst, B, Some(3)).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Udp, 24));
        assert_eq!(f, before);
        let mut f = FrameSpec::echo_request(A, B, 1, 1).to_vec();
        rewrite_endpoint(&mut f[14..], Endpoint::Src, B, Some(5)).unwrap();
        etherparse_check(&f);
    }

    fn inner_packet() -> Vec<u8> {
        let spec = FrameSpec {
            ident: 0x4242,
            payload: b"inner payload",
            ..FrameSpec::tcp(
                SocketAddrV4::new(A, 33000),
                SocketAddrV4::new(B, 443),
                Flags::ACK,
            )
        };
        spec.to_vec()[14..].to_vec()
    }

    #[test]
    fn ipip_encap() {
        let inner = inner_packet();
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0xee; 4]); // trailing garbage is trimmed
        let mut buf = VecBuf::with_room(64, &padded, 0);
        let spec = EncapSpec {
            outer_src: Ipv4Addr::new(172, 16, 0, 1),
            outer_dst: Ipv4Addr::new(172, 16, 9, 9),
            ttl: 63,
        };
        let n = prepend_ipip(&mut buf, &spec).unwrap();
        assert_eq!(n, inner.len() + 20);
        let outer = ipv4::Packet::new_checked(buf.data()).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), protocol::IPIP);
        assert_eq!(outer.total_len() as usize, n);
        assert_eq!(outer.ttl(), 63);
        assert!(outer.dont_frag());
        assert_eq!(outer.ident(), 0x4242);
        assert_eq!(outer.payload(), &inner[..]);
        prepend_ethernet(&mut buf, &l2(None), ethertype::IPV4).unwrap();
        // etherparse sees the outer header, and the inner packet with valid checksums.
        let s = SlicedPacket::from_ethernet(buf.data()).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().source_addr(), spec.outer_src);
        assert_eq!(ip.header().protocol(), etherparse::IpNumber::IPV4);
        let mut again = vec![0u8; 14];
        again[12..14].copy_from_slice(&[0x08, 0x00]);
        again.extend_from_slice(&buf.data()[34..]);
        let s = etherparse_check(&again);
        let Some(TransportSlice::Tcp(t)) = &s.transport else {
            panic!()
        };
        assert_eq!(t.destination_port(), 443);
        // No headroom: error, buffer unchanged.
        let mut tight = VecBuf::with_room(10, &inner, 0);
        assert_eq!(
            prepend_ipip(&mut tight, &spec).unwrap_err().kind,
            ErrorKind::NoRoom {
                required: 20,
                available: 10
            }
        );
        assert_eq!(tight.data(), &inner[..]);
        let mut junk = VecBuf::with_room(64, &[0x45, 0, 0], 0);
        assert!(prepend_ipip(&mut junk, &spec).is_err());
    }

    #[test]
    fn gue_encap() {
        let inner = inner_packet();
        let spec = EncapSpec {
            outer_src: Ipv4Addr::new(172, 16, 0, 1),
            outer_dst: Ipv4Addr::new(172, 16, 9, 9),
            ttl: 64,
        };
        for with_csum in [false, true] {
            let mut buf = VecBuf::with_room(128, &inner, 0);
            let n = prepend_gue(&mut buf, &spec, 0xdead_beef, with_csum).unwrap();
            assert_eq!(n, inner.len() + GUE_OVERHEAD);
            prepend_ethernet(&mut buf, &l2(Some(9)), ethertype::IPV4).unwrap();
            let s = etherparse_check(buf.data());
            let Some(TransportSlice::Udp(u)) = &s.transport else {
                panic!()
            };
            assert_eq!(u.destination_port(), GUE_PORT);
            assert_eq!(u.source_port(), gue_source_port(0xdead_beef));
            assert!(u.source_port() >= 49152);
            assert_eq!(u.length() as usize, 8 + 4 + inner.len());
            assert_eq!(u.checksum() != 0, with_csum);
            assert_eq!(&u.payload()[..4], &[0, 4, 0, 0]);
            assert_eq!(&u.payload()[4..], &inner[..]);
            let ip = ipv4::Packet::new_checked(&buf.data()[18..]).unwrap();
            let up = udp::Packet::new_checked(ip.payload()).unwrap();
            assert!(up.verify_checksum(spec.outer_src, spec.outer_dst));
        }
        assert_ne!(gue_source_port(1), gue_source_port(2));
        let mut tight = VecBuf::with_room(31, &inner, 0);
        assert!(prepend_gue(&mut tight, &spec, 0, false).is_err());
        assert_eq!(tight.data(), &inner[..]);
    }
}
