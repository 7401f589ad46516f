//! Zero-copy packet views and builders: Ethernet (+ one 802.1Q tag), ARP, IPv4, IPv6 (with its
//! extension-header walk), TCP, UDP, ICMP, ICMPv6 (with Neighbour Discovery), Internet checksums
//! (full and RFC 1624 incremental, IPv4 and IPv6 pseudo-headers), a small packet-buffer trait, and
//! builders for the packets vipmux originates or encapsulates.
//!
//! # Views
//!
//! Every protocol has a view `Packet<T: AsRef<[u8]>>` (Ethernet: `Frame<T>`) wrapping a byte buffer
//! without copying. Getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>`. Field offsets live in a
//! `field` module per protocol (`pub mod field { pub const SRC_PORT: Field = 0..2; }`); a `Repr`
//! per protocol parses a view into plain values and emits them back.
//!
//! * `new_unchecked(buffer)` wraps without any check; accessors may then panic on short buffers.
//! * `check_len()` validates the buffer against the header's own length fields.
//! * `new_checked(buffer)` = `new_unchecked` + `check_len`, the constructor for received bytes.
//!
//! **Contract:** once `check_len()` has returned `Ok(())` (or `new_checked` succeeded), no accessor,
//! getter or setter, of that view panics, whatever the bytes are. Setters that change a length
//! field (`set_header_len`, `set_total_len`, `set_len`, ...) can break that invariant; call
//! `check_len()` again after using them on a buffer you did not size yourself. Nothing here uses
//! `unsafe`.
//!
//! Accessors are `#[inline]` and do only the bounds-checked slice reads they name, so the data path
//! can call them per packet.

/// The accessors ICMP and ICMPv6 share (one header layout: type, code, checksum, four
/// type-specific bytes, then data), expanded inside each view's `impl` blocks, where `field` and
/// `msg_type` are that protocol's.
macro_rules! icmp_shared_getters {
    () => {
        /// Wraps `buffer` without checks.
        #[inline]
        pub const fn new_unchecked(buffer: T) -> Self {
            Packet { buffer }
        }
        /// Wraps `buffer` after [`Packet::check_len`].
        #[inline]
        pub fn new_checked(buffer: T) -> Result<Self> {
            let p = Self::new_unchecked(buffer);
            p.check_len()?;
            Ok(p)
        }
        /// The wrapped buffer.
        #[inline]
        pub fn into_inner(self) -> T {
            self.buffer
        }
        /// Message type.
        #[inline]
        pub fn msg_type(&self) -> u8 {
            self.buffer.as_ref()[field::TYPE]
        }
        /// Code.
        #[inline]
        pub fn code(&self) -> u8 {
            self.buffer.as_ref()[field::CODE]
        }
        /// Checksum field.
        #[inline]
        pub fn checksum(&self) -> u16 {
            get_u16(self.buffer.as_ref(), field::CHECKSUM)
        }
        /// The 4 type-specific bytes after the checksum as one word.
        #[inline]
        pub fn rest_of_header(&self) -> u32 {
            get_u32(self.buffer.as_ref(), field::REST)
        }
        /// Echo identifier.
        #[inline]
        pub fn echo_ident(&self) -> u16 {
            get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
        }
        /// Echo sequence number.
        #[inline]
        pub fn echo_seq_no(&self) -> u16 {
            get_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
        }
        /// True for an echo request.
        #[inline]
        pub fn is_echo_request(&self) -> bool {
            self.msg_type() == msg_type::ECHO_REQUEST
        }
        /// Bytes after the 8-byte header (echo data, or the quoted packet of an error).
        #[inline]
        pub fn data(&self) -> &[u8] {
            &self.buffer.as_ref()[field::DATA..]
        }
    };
}

/// The setters ICMP and ICMPv6 share (see `icmp_shared_getters`).
macro_rules! icmp_shared_setters {
    () => {
        /// Sets message type (checksum untouched).
        #[inline]
        pub fn set_msg_type(&mut self, v: u8) {
            self.buffer.as_mut()[field::TYPE] = v
        }
        /// Sets code (checksum untouched).
        #[inline]
        pub fn set_code(&mut self, v: u8) {
            self.buffer.as_mut()[field::CODE] = v
        }
        /// Sets the checksum field.
        #[inline]
        pub fn set_checksum(&mut self, v: u16) {
            set_u16(self.buffer.as_mut(), field::CHECKSUM, v)
        }
        /// Sets the 4 type-specific bytes.
        #[inline]
        pub fn set_rest_of_header(&mut self, v: u32) {
            set_u32(self.buffer.as_mut(), field::REST, v)
        }
        /// Sets the echo identifier.
        #[inline]
        pub fn set_echo_ident(&mut self, v: u16) {
            set_u16(self.buffer.as_mut(), field::ECHO_IDENT, v)
        }
        /// Sets the echo sequence number.
        #[inline]
        pub fn set_echo_seq_no(&mut self, v: u16) {
            set_u16(self.buffer.as_mut(), field::ECHO_SEQNO, v)
        }
        /// Replaces type and code, updating the checksum incrementally.
        #[inline]
        pub fn rewrite_type_code(&mut self, t: u8, code: u8) {
            let old = u16::from_be_bytes([self.msg_type(), self.code()]);
            let new = u16::from_be_bytes([t, code]);
            self.set_msg_type(t);
            self.set_code(code);
            let c = checksum::update_u16(self.checksum(), old, new);
            self.set_checksum(c);
        }
        /// Data after the header, writable.
        #[inline]
        pub fn data_mut(&mut self) -> &mut [u8] {
            &mut self.buffer.as_mut()[field::DATA..]
        }
    };
}

pub mod arp;
pub mod buf;
pub mod builder;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use core::fmt;

pub use arp::{Packet as ArpPacket, Repr as ArpRepr};
pub use buf::{PacketBuf, VecBuf, BURST};
pub use builder::{EncapSpec, Endpoint, FrameSpec, IcmpErrorKind, L2Spec, L4Spec};
pub use ethernet::{
    ethertype, Frame as EthernetFrame, L3Info, L3Protocol, MacAddr, Repr as EthernetRepr,
};
pub use icmp::{InnerFlow, Packet as IcmpPacket};
pub use icmpv6::{InnerFlowV6, NdRepr, Packet as Icmpv6Packet};
pub use ipv4::{protocol, Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use ipv6::{Packet as Ipv6Packet, Repr as Ipv6Repr};
pub use std::net::{Ipv4Addr, Ipv6Addr};
pub use tcp::{Flags as TcpFlags, Packet as TcpPacket};
pub use udp::Packet as UdpPacket;

/// A byte range of a header field, relative to the start of that header.
pub type Field = core::ops::Range<usize>;
/// A byte range from an offset to the end of the buffer.
pub type Rest = core::ops::RangeFrom<usize>;

/// The protocol layer an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// 802.1Q VLAN tag.
    Vlan,
    /// ARP packet.
    Arp,
    /// IPv4 header or packet.
    Ipv4,
    /// IPv6 header, packet or extension header.
    Ipv6,
    /// TCP segment.
    Tcp,
    /// UDP datagram.
    Udp,
    /// ICMP message (or the IPv4 header it quotes).
    Icmp,
    /// ICMPv6 message (or the IPv6 header it quotes, or a Neighbour Discovery option).
    Icmpv6,
    /// GUE encapsulation header.
    Gue,
    /// The packet buffer itself (headroom or output space).
    Buffer,
}

/// What went wrong at an [`Error`]'s offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The buffer ends before `required` bytes; it holds `actual` (both counted from the layer start).
    Truncated {
        /// Bytes the layer needs.
        required: usize,
        /// Bytes the buffer holds.
        actual: usize,
    },
    /// A header-length field (IPv4 IHL, TCP data offset) is below the minimum; value in bytes.
    BadHeaderLen(usize),
    /// A declared length (IPv4 total length, UDP length) does not fit the header or the buffer.
    BadLength {
        /// The length the header declares.
        declared: usize,
        /// The length available (buffer) or the minimum it must reach (header).
        actual: usize,
    },
    /// The IP version nibble is not the one of the view (4 or 6).
    BadVersion(u8),
    /// A chain of headers or options (IPv6 extension headers, Neighbour Discovery options) is
    /// longer than the walk's bound, given here.
    ChainTooLong(usize),
    /// A checksum the message must carry correctly is wrong (a Neighbour Solicitation to answer).
    BadChecksum,
    /// A field holds a value this code does not handle (ARP hardware/protocol type, ICMP type ...).
    Unsupported(u16),
    /// A buffer has no room: not enough headroom to prepend or output space to write.
    NoRoom {
        /// Bytes needed.
        required: usize,
        /// Bytes available.
        available: usize,
    },
}

/// A parse or build error: which layer, what kind, and at which byte offset.
///
/// `offset` is the offset of the offending field relative to the start of the buffer that was
/// handed to the failing call (for a view constructor: the start of that layer's header). Use
/// [`Error::shifted`] to re-base it onto an enclosing frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// The layer that failed.
    pub layer: Layer,
    /// What failed.
    pub kind: ErrorKind,
    /// Byte offset of the offending field.
    pub offset: usize,
}

impl Error {
    /// Builds an error.
    #[inline]
    pub const fn new(layer: Layer, kind: ErrorKind, offset: usize) -> Self {
        Error {
            layer,
            kind,
            offset,
        }
    }

    /// A `Truncated` error: the layer needs `required` bytes, the buffer has `actual`.
    #[inline]
    pub const fn truncated(layer: Layer, required: usize, actual: usize) -> Self {
        Error::new(layer, ErrorKind::Truncated { required, actual }, actual)
    }

    /// A `NoRoom` error on the `Buffer` layer.
    #[inline]
    pub const fn no_room(required: usize, available: usize) -> Self {
        Error::new(
            Layer::Buffer,
            ErrorKind::NoRoom {
                required,
                available,
            },
            0,
        )
    }

    /// The same error with `base` added to its offset (re-based onto an enclosing buffer).
    #[inline]
    pub const fn shifted(self, base: usize) -> Self {
        Error {
            offset: self.offset + base,
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at offset {}: ", self.layer, self.offset)?;
        match self.kind {
            ErrorKind::Truncated { required, actual } => {
                write!(f, "truncated, need {required} bytes, have {actual}")
            }
            ErrorKind::BadHeaderLen(v) => write!(f, "header length {v} below minimum"),
            ErrorKind::BadLength { declared, actual } => {
                write!(f, "declared length {declared} does not fit {actual}")
            }
            ErrorKind::BadVersion(v) => write!(f, "unexpected IP version {v}"),
            ErrorKind::ChainTooLong(n) => write!(f, "more than {n} chained headers or options"),
            ErrorKind::BadChecksum => write!(f, "bad checksum"),
            ErrorKind::Unsupported(v) => write!(f, "unsupported value {v:#x}"),
            ErrorKind::NoRoom {
                required,
                available,
            } => write!(f, "no room: need {required} bytes, have {available}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for this module.
pub type Result<T> = core::result::Result<T, Error>;

#[inline]
pub(crate) fn get_u16(b: &[u8], f: Field) -> u16 {
    let s = &b[f];
    u16::from_be_bytes([s[0], s[1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn get_u32(b: &[u8], f: Field) -> u32 {
    let s = &b[f];
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

#[inline]
pub(crate) fn set_u32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn get_addr(b: &[u8], f: Field) -> Ipv4Addr {
    let s = &b[f];
    Ipv4Addr::new(s[0], s[1], s[2], s[3])
}

#[inline]
pub(crate) fn get_addr6(b: &[u8], f: Field) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[f]);
    Ipv6Addr::from(a)
}

#[cfg(test)]
pub(crate) mod golden6;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddrV4;

    /// Calls every getter, and setters that keep lengths, of every view that accepts `b`, and the
    /// builders that take arbitrary input: one step per view.
    fn touch_all(b: &[u8]) {
        let steps: [fn(&[u8]); 10] = [
            touch_ethernet,
            touch_arp,
            touch_ipv4,
            touch_ipv6,
            touch_tcp,
            touch_udp,
            touch_icmp,
            touch_icmpv6,
            touch_builders,
            touch_builders6,
        ];
        for step in steps {
            step(b);
        }
    }

    /// The (source, destination) addresses the L4 checksum steps use.
    const S_D: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));

    /// [`EthernetFrame`] getters and in-place setters.
    fn touch_ethernet(b: &[u8]) {
        if let Ok(f) = EthernetFrame::new_checked(b) {
            let _ = (
                f.dst_addr(),
                f.src_addr(),
                f.ethertype(),
                f.vlan_tci(),
                f.payload(),
            );
            let _ = f.l3().map(|l| l.vlan_id());
            let _ = EthernetRepr::parse(&f);
            let mut m = b.to_vec();
            let mut f = EthernetFrame::new_unchecked(&mut m[..]);
            f.swap_addrs();
            f.set_vlan_tci(3);
            let _ = f.payload_mut();
        }
    }

    /// [`ArpPacket`] getters and [`ArpRepr`].
    fn touch_arp(b: &[u8]) {
        if let Ok(p) = ArpPacket::new_checked(b) {
            let _ = (
                p.hardware_type(),
                p.protocol_type(),
                p.operation(),
                p.is_ethernet_ipv4(),
            );
            let _ = (
                p.sender_hw_addr(),
                p.sender_ip(),
                p.target_hw_addr(),
                p.target_ip(),
            );
            let _ = ArpRepr::parse(&p);
        }
    }

    /// [`Ipv4Packet`] (checked whole and header-only) getters and setters.
    fn touch_ipv4(b: &[u8]) {
        for hdr_only in [false, true] {
            let p = if hdr_only {
                Ipv4Packet::new_checked_header(b)
            } else {
                Ipv4Packet::new_checked(b)
            };
            if let Ok(p) = p {
                let _ = (
                    p.version(),
                    p.header_len(),
                    p.dscp(),
                    p.ecn(),
                    p.total_len(),
                    p.ident(),
                );
                let _ = (
                    p.dont_frag(),
                    p.more_frags(),
                    p.frag_offset(),
                    p.is_fragment(),
                );
                let _ = (
                    p.ttl(),
                    p.protocol(),
                    p.checksum(),
                    p.src_addr(),
                    p.dst_addr(),
                );
                let _ = (
                    p.verify_checksum(),
                    p.options(),
                    p.payload(),
                    p.pseudo_header_sum(),
                );
                let _ = (p.header(), Ipv4Repr::parse(&p));
                let mut m = b.to_vec();
                let mut q = Ipv4Packet::new_unchecked(&mut m[..]);
                q.rewrite_src_addr(Ipv4Addr::LOCALHOST);
                q.rewrite_dst_addr(Ipv4Addr::BROADCAST);
                q.decrement_ttl();
                q.set_dont_frag(true);
                q.set_frag_offset(8);
                let _ = q.payload_mut();
                q.fill_checksum();
                assert!(q.verify_checksum());
            }
        }
    }

    /// The (source, destination) addresses the IPv6 checksum steps use.
    const S_D6: (Ipv6Addr, Ipv6Addr) = (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
    );

    /// [`Ipv6Packet`] (checked whole and header-only) getters, the extension-header walk, setters.
    fn touch_ipv6(b: &[u8]) {
        for hdr_only in [false, true] {
            let p = if hdr_only {
                Ipv6Packet::new_checked_header(b)
            } else {
                Ipv6Packet::new_checked(b)
            };
            if let Ok(p) = p {
                let _ = (p.version(), p.traffic_class(), p.dscp(), p.ecn());
                let _ = (p.flow_label(), p.payload_len(), p.total_len());
                let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
                let _ = (p.header(), p.payload(), p.pseudo_header_sum(6, 20));
                if let Ok(u) = p.upper_layer() {
                    assert!(u.offset <= ipv6::HEADER_LEN + p.payload().len());
                    let _ = u.is_fragment();
                }
                let _ = (p.upper_layer_payload(), Ipv6Repr::parse(&p));
                let mut m = b.to_vec();
                let mut q = Ipv6Packet::new_unchecked(&mut m[..]);
                q.set_traffic_class(1);
                q.set_flow_label(2);
                q.decrement_hop_limit();
                q.set_src_addr(Ipv6Addr::LOCALHOST);
                let _ = q.payload_mut();
            }
        }
    }

    /// [`Icmpv6Packet`] getters, Neighbour Discovery and setters.
    fn touch_icmpv6(b: &[u8]) {
        let (s, d) = S_D6;
        if let Ok(p) = Icmpv6Packet::new_checked(b) {
            let _ = (p.msg_type(), p.code(), p.checksum(), p.rest_of_header());
            let _ = (p.echo_ident(), p.echo_seq_no(), p.mtu(), p.is_error());
            let _ = (p.data(), p.verify_checksum(s, d), p.inner_flow());
            let _ = (p.inner_ipv6().map(|i| i.payload().len()), p.nd_flags());
            let _ = (
                p.nd_target(),
                p.nd_options(),
                p.nd_ll_addr(1),
                NdRepr::parse(&p),
            );
            let mut m = b.to_vec();
            let mut q = Icmpv6Packet::new_unchecked(&mut m[..]);
            q.rewrite_type_code(129, 0);
            q.update_checksum_for_addr_v6(s, d);
            let _ = q.data_mut();
            q.fill_checksum(s, d);
            assert!(q.verify_checksum(s, d));
        }
    }

    /// [`TcpPacket`] getters and checksum-keeping setters.
    fn touch_tcp(b: &[u8]) {
        let (s, d) = S_D;
        if let Ok(p) = TcpPacket::new_checked(b) {
            let _ = (
                p.src_port(),
                p.dst_port(),
                p.seq_number(),
                p.ack_number(),
                p.flags(),
            );
            let _ = (
                p.header_len(),
                p.window(),
                p.checksum(),
                p.urgent(),
                p.options(),
            );
            let _ = (p.payload(), p.verify_checksum(s, d), tcp::Repr::parse(&p));
            let mut m = b.to_vec();
            let mut q = TcpPacket::new_unchecked(&mut m[..]);
            q.rewrite_src_port(1);
            q.rewrite_dst_port(2);
            q.update_checksum_for_addr(s, d);
            q.set_flags(TcpFlags::RST);
            let _ = q.payload_mut();
            q.fill_checksum(s, d);
            assert!(q.verify_checksum(s, d));
            let (s6, d6) = S_D6;
            q.fill_checksum_v6(s6, d6);
            q.update_checksum_for_addr_v6(d6, s6);
            assert!(q.verify_checksum_v6(s6, s6));
        }
    }

    /// [`UdpPacket`] getters and checksum-keeping setters.
    fn touch_udp(b: &[u8]) {
        let (s, d) = S_D;
        if let Ok(p) = UdpPacket::new_checked(b) {
            let _ = (
                p.src_port(),
                p.dst_port(),
                p.len(),
                p.checksum(),
                p.payload(),
            );
            let _ = (p.verify_checksum(s, d), udp::Repr::parse(&p));
            let mut m = b.to_vec();
            let mut q = UdpPacket::new_unchecked(&mut m[..]);
            q.rewrite_src_port(1);
            q.rewrite_dst_port(2);
            q.update_checksum_for_addr(s, d);
            let _ = q.payload_mut();
            q.fill_checksum(s, d);
            assert!(q.verify_checksum(s, d));
            let (s6, d6) = S_D6;
            q.fill_checksum_v6(s6, d6);
            q.update_checksum_for_addr_v6(d6, s6);
            assert!(q.verify_checksum_v6(s6, s6));
        }
    }

    /// [`IcmpPacket`] getters and setters.
    fn touch_icmp(b: &[u8]) {
        if let Ok(p) = IcmpPacket::new_checked(b) {
            let _ = (
                p.msg_type(),
                p.code(),
                p.checksum(),
                p.rest_of_header(),
                p.echo_ident(),
            );
            let _ = (p.echo_seq_no(), p.next_hop_mtu(), p.is_error(), p.data());
            let _ = (
                p.verify_checksum(),
                p.inner_ipv4().map(|i| i.payload().len()),
            );
            let _ = p.inner_flow();
            let mut m = b.to_vec();
            let mut q = IcmpPacket::new_unchecked(&mut m[..]);
            q.rewrite_type_code(0, 0);
            let _ = q.data_mut();
        }
    }

    /// In-place builders and encapsulation on arbitrary input: errors, never panics.
    fn touch_builders(b: &[u8]) {
        let (s, d) = S_D;
        let mut m = b.to_vec();
        let _ = builder::icmp_echo_reply_in_place(&mut m);
        let mut m = b.to_vec();
        let _ = builder::arp_reply_in_place(&mut m, ethernet::MacAddr([2; 6]));
        let l2 = L2Spec {
            src_mac: ethernet::MacAddr([2; 6]),
            dst_mac: ethernet::MacAddr([4; 6]),
            vlan: None,
        };
        let mut out = [0u8; 256];
        let _ = builder::icmp_error(&mut out, &l2, s, IcmpErrorKind::TTL_EXCEEDED, b);
        let e = EncapSpec {
            outer_src: s,
            outer_dst: d,
            ttl: 64,
        };
        let _ = builder::prepend_ipip(&mut VecBuf::from_slice(b), &e);
        let _ = builder::prepend_gue(&mut VecBuf::from_slice(b), &e, 7, true);
        let mut m = b.to_vec();
        let _ = builder::rewrite_endpoint(&mut m, Endpoint::Dst, d, Some(5));
    }

    /// The IPv6 builders on arbitrary input: errors, never panics.
    fn touch_builders6(b: &[u8]) {
        let (s, d) = S_D6;
        let mut m = b.to_vec();
        let _ = builder::icmpv6_echo_reply_in_place(&mut m);
        let mut out = [0u8; 1400];
        let _ = builder::neighbor_advert_reply(&mut out, b, ethernet::MacAddr([2; 6]));
        let l2 = L2Spec {
            src_mac: ethernet::MacAddr([2; 6]),
            dst_mac: ethernet::MacAddr([4; 6]),
            vlan: None,
        };
        let kind = builder::Icmpv6ErrorKind::PacketTooBig { mtu: 1280 };
        let _ = builder::icmpv6_error(&mut out, &l2, s, kind, b);
        let e = builder::EncapSpecV6 {
            outer_src: s,
            outer_dst: d,
            hop_limit: 64,
        };
        let _ = builder::prepend_ip6ip6(&mut VecBuf::from_slice(b), &e, 7);
        let _ = builder::prepend_gue6(&mut VecBuf::from_slice(b), &e, 7);
        let mut m = b.to_vec();
        let _ = builder::rewrite_endpoint_v6(&mut m, builder::Endpoint::Src, d, Some(5));
    }

    /// Valid IPv6 frames to mutate: the golden ones, behind Ethernet where they are bare.
    fn seeds6() -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for g in [
            golden6::UDP_EXT,
            golden6::TCP_SYN,
            golden6::UDP,
            golden6::FRAGMENT,
        ] {
            let mut f = vec![2u8; 12];
            f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
            f.extend_from_slice(&golden6::bytes(g));
            v.push(f);
        }
        for g in [
            golden6::ECHO_REQUEST,
            golden6::NS,
            golden6::NA,
            golden6::PTB,
        ] {
            v.push(golden6::bytes(g));
        }
        v
    }

    /// A few valid frames to mutate.
    fn seeds() -> Vec<Vec<u8>> {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000);
        let c = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
        let mut v = vec![
            FrameSpec::tcp(a, c, TcpFlags::SYN).to_vec(),
            FrameSpec {
                vlan: Some(5),
                ..FrameSpec::udp(a, c, b"0123456789")
            }
            .to_vec(),
            FrameSpec::echo_request(*a.ip(), *c.ip(), 1, 2).to_vec(),
        ];
        let mut arp = [0u8; 60];
        builder::arp_request(&mut arp, ethernet::MacAddr([2; 6]), None, *a.ip(), *c.ip()).unwrap();
        v.push(arp.to_vec());
        let mut err = [0u8; 128];
        let orig = v[1][18..].to_vec();
        let n = builder::icmp_error(
            &mut err,
            &L2Spec {
                src_mac: ethernet::MacAddr([2; 6]),
                dst_mac: ethernet::MacAddr([4; 6]),
                vlan: None,
            },
            *c.ip(),
            IcmpErrorKind::FragNeeded { mtu: 1400 },
            &orig,
        )
        .unwrap();
        v.push(err[..n].to_vec());
        v.extend(seeds6());
        v
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            touch_all(&b);
            // Also at every layer offset of a frame.
            for off in [14usize, 18, 34, 38, 54, 58] {
                if b.len() > off {
                    touch_all(&b[off..]);
                }
            }
        }

        #[test]
        fn mutated_frames_never_panic(
            seed in 0usize..13,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut f = seeds().swap_remove(seed);
            for (i, v) in flips {
                let i = i % f.len();
                f[i] = v;
            }
            let cut = cut % (f.len() + 1);
            let f = &f[..cut.max(f.len() / 2)];
            touch_all(f);
            if let Ok(e) = EthernetFrame::new_checked(f) {
                if let Ok(l3) = e.l3() {
                    let ip = &f[l3.offset..];
                    touch_all(ip);
                    if let Ok(p) = Ipv4Packet::new_checked(ip) {
                        touch_all(p.payload());
                    }
                    if let Some((_, l4)) = Ipv6Packet::new_checked(ip).ok().and_then(|p| {
                        p.upper_layer_payload().map(|(u, b)| (u, b.to_vec()))
                    }) {
                        touch_all(&l4);
                    }
                }
            }
        }
    }

    #[test]
    fn error_display_and_shift() {
        let e = Error::truncated(Layer::Tcp, 20, 7).shifted(34);
        assert_eq!(e.offset, 41);
        assert_eq!(e.layer, Layer::Tcp);
        let s = e.to_string();
        assert!(
            s.contains("Tcp") && s.contains("20") && s.contains('7'),
            "{s}"
        );
    }
}
