//! IPv6 headers and packets (RFC 8200): the fixed header, the payload length checked against the
//! buffer, and a bounded walk over the extension headers (Hop-by-Hop, Routing, Destination
//! Options, AH) to the upper-layer protocol. A Fragment header ends the walk and marks the packet
//! as a fragment; ESP, No Next Header and any other value end it as the upper-layer protocol.

use super::checksum;
use super::{get_addr6, get_u16, get_u32, set_u16, set_u32, Error, ErrorKind, Layer, Result};
use std::net::Ipv6Addr;

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Version (4 bits), traffic class (8 bits) and flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length (everything after the 40-byte fixed header).
    pub const PAYLOAD_LEN: Field = 4..6;
    /// Next header (first extension header or upper-layer protocol).
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Field = 8..24;
    /// Destination address.
    pub const DST_ADDR: Field = 24..40;
}

/// Next-header values: the extension headers the walk knows and the upper layers vipmux handles.
pub mod next_header {
    /// Hop-by-Hop Options (only right after the fixed header).
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv4 (IPv4 inner packet of a tunnel).
    pub const IPV4: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 (IPv6-in-IPv6 tunnel).
    pub const IPV6: u8 = 41;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (ends the walk: what follows is encrypted).
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No Next Header.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;
/// The most extension headers [`walk_extension_headers`] steps over before it gives up.
pub const MAX_EXT_HEADERS: usize = 8;
/// The minimum link MTU of IPv6 (RFC 8200 §5): ICMPv6 errors fit in it.
pub const MIN_MTU: usize = 1280;

/// What a Fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Offset of the Fragment header, counted like [`UpperLayer::offset`].
    pub header_offset: usize,
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentHeader {
    /// True for an atomic fragment (offset 0, no more fragments; RFC 6946): a whole packet.
    #[inline]
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// Where the extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, ESP, No Next Header, ...); for a fragment, the
    /// Fragment header's next header.
    pub protocol: u8,
    /// Offset of the upper-layer header: from the start of the IPv6 header for
    /// [`Packet::upper_layer`], from the start of the walked bytes for [`walk_extension_headers`].
    pub offset: usize,
    /// The Fragment header, when the walk met one (it stops there).
    pub fragment: Option<FragmentHeader>,
}

impl UpperLayer {
    /// True when the packet carries a Fragment header (atomic fragments included): vipmux rejects
    /// IPv6 fragments like IPv4 ones.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some()
    }
}

/// Length of the extension header `nh` starting with `h` (its first two bytes), or `None` when
/// `nh` is not one the walk steps over.
#[inline]
fn ext_header_len(nh: u8, h1: u8) -> Option<usize> {
    match nh {
        next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
            Some((h1 as usize + 1) * 8)
        }
        next_header::AH => Some((h1 as usize + 2) * 4),
        _ => None,
    }
}

/// The Fragment header at `off` of `bytes` (already known to fit).
#[inline]
fn fragment_at(bytes: &[u8], off: usize) -> UpperLayer {
    let w = get_u16(bytes, off + 2..off + 4);
    UpperLayer {
        protocol: bytes[off],
        offset: off + FRAGMENT_HEADER_LEN,
        fragment: Some(FragmentHeader {
            header_offset: off,
            offset: w & 0xfff8,
            more: w & 1 != 0,
            ident: get_u32(bytes, off + 4..off + 8),
        }),
    }
}

/// Walks the extension headers of `bytes` (an IPv6 payload) whose first header is `first`, at most
/// [`MAX_EXT_HEADERS`] of them. Errors (offsets into `bytes`): an extension header that does not
/// fit (`Truncated`), Hop-by-Hop anywhere but first (`Unsupported(0)`), a longer chain
/// (`ChainTooLong`). Never reads outside `bytes`.
#[inline]
pub fn walk_extension_headers(first: u8, bytes: &[u8]) -> Result<UpperLayer> {
    let mut nh = first;
    let mut off = 0;
    let mut count = 0;
    loop {
        let need = off + if nh == next_header::FRAGMENT { 8 } else { 2 };
        let is_ext = nh == next_header::FRAGMENT || ext_header_len(nh, 0).is_some();
        if !is_ext {
            return Ok(UpperLayer {
                protocol: nh,
                offset: off,
                fragment: None,
            });
        }
        if count == MAX_EXT_HEADERS {
            return Err(Error::new(
                Layer::Ipv6,
                ErrorKind::ChainTooLong(MAX_EXT_HEADERS),
                off,
            ));
        }
        if nh == next_header::HOP_BY_HOP && count != 0 {
            return Err(Error::new(Layer::Ipv6, ErrorKind::Unsupported(0), off));
        }
        if bytes.len() < need {
            return Err(Error::new(
                Layer::Ipv6,
                ErrorKind::Truncated {
                    required: need,
                    actual: bytes.len(),
                },
                off,
            ));
        }
        if nh == next_header::FRAGMENT {
            return Ok(fragment_at(bytes, off));
        }
        let len = ext_header_len(nh, bytes[off + 1]).unwrap_or(8);
        if bytes.len() < off + len {
            return Err(Error::new(
                Layer::Ipv6,
                ErrorKind::Truncated {
                    required: off + len,
                    actual: bytes.len(),
                },
                off,
            ));
        }
        nh = bytes[off];
        off += len;
        count += 1;
    }
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_len`]: for a received packet.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Wraps `buffer` after [`Packet::check_header_len`]: for a header quoted in an ICMPv6 error,
    /// whose payload is cut short.
    #[inline]
    pub fn new_checked_header(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }

    /// Checks that the 40-byte fixed header fits and the version is 6. Every accessor is then
    /// panic-free; [`Packet::payload`] is clamped to the buffer.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::truncated(Layer::Ipv6, HEADER_LEN, b.len()));
        }
        let v = b[0] >> 4;
        if v != 6 {
            return Err(Error::new(Layer::Ipv6, ErrorKind::BadVersion(v), 0));
        }
        Ok(())
    }

    /// [`Packet::check_header_len`], and that 40 + payload length <= buffer length (trailing bytes,
    /// e.g. Ethernet padding, are allowed and excluded from [`Packet::payload`]).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let len = self.buffer.as_ref().len();
        let total = self.total_len();
        if total > len {
            return Err(Error::new(
                Layer::Ipv6,
                ErrorKind::BadLength {
                    declared: total,
                    actual: len,
                },
                field::PAYLOAD_LEN.start,
            ));
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The first 32-bit word: version, traffic class, flow label.
    #[inline]
    fn word0(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }
    /// Version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// Traffic class (DSCP + ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }
    /// DSCP (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }
    /// ECN (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }
    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }
    /// Payload length field.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    /// Length of the packet the header declares: 40 + payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }
    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        get_addr6(self.buffer.as_ref(), field::SRC_ADDR)
    }
    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        get_addr6(self.buffer.as_ref(), field::DST_ADDR)
    }
    /// The fixed header bytes.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }
    /// Payload range: 40 .. 40 + payload length, clamped to the buffer.
    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        let start = HEADER_LEN.min(len);
        start..self.total_len().clamp(start, len)
    }
    /// Payload: extension headers and upper layer (excludes link-layer padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.payload_range()]
    }
    /// Walks the extension headers of the payload ([`walk_extension_headers`]); offsets, of the
    /// result and of errors, count from the start of the IPv6 header.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let mut u = walk_extension_headers(self.next_header(), self.payload())
            .map_err(|e| e.shifted(HEADER_LEN))?;
        u.offset += HEADER_LEN;
        if let Some(f) = u.fragment.as_mut() {
            f.header_offset += HEADER_LEN;
        }
        Ok(u)
    }
    /// The upper-layer bytes after the walk (`None` when the walk fails).
    #[inline]
    pub fn upper_layer_payload(&self) -> Option<(UpperLayer, &[u8])> {
        let u = self.upper_layer().ok()?;
        let r = self.payload_range();
        let bytes = self.buffer.as_ref().get(u.offset..r.end)?;
        Some((u, bytes))
    }
    /// Pseudo-header sum for an upper layer of `protocol` and `len` bytes (RFC 8200 §8.1).
    #[inline]
    pub fn pseudo_header_sum(&self, protocol: u8, len: usize) -> u32 {
        checksum::pseudo_header_sum_v6(self.src_addr(), self.dst_addr(), protocol, len as u32)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the first word: version 6, `traffic_class`, `flow_label` (low 20 bits).
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6 << 28) | ((traffic_class as u32) << 20) | (flow_label & 0x000f_ffff);
        set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, w)
    }
    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, v: u8) {
        let w = (self.word0() & 0xf00f_ffff) | ((v as u32) << 20);
        set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, w)
    }
    /// Sets the flow label (low 20 bits of `v`).
    #[inline]
    pub fn set_flow_label(&mut self, v: u32) {
        let w = (self.word0() & 0xfff0_0000) | (v & 0x000f_ffff);
        set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, w)
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v)
    }
    /// Sets the next header of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v
    }
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v
    }
    /// Decrements the hop limit (saturating at 0); returns the new value. (No header checksum in
    /// IPv6, and the upper-layer checksums do not cover it.)
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(h);
        h
    }
    /// Sets the source address (upper-layer checksums untouched: update them with the `_v6`
    /// address helpers of the TCP, UDP and ICMPv6 views).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets())
    }
    /// Sets the destination address (upper-layer checksums untouched).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets())
    }
    /// Payload, writable (same range as [`Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        &mut self.buffer.as_mut()[r]
    }
}

/// An IPv6 fixed header description, for building packets (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: usize,
}

impl Repr {
    /// Parses a checked view's fixed header (payload length: the payload as checked).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
            payload_len: p.payload().len(),
        })
    }

    /// Header length this repr emits (40).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header into the front of `buf`; returns 40.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.len() < HEADER_LEN {
            return Err(Error::no_room(HEADER_LEN, buf.len()));
        }
        if self.payload_len > u16::MAX as usize {
            return Err(Error::new(
                Layer::Ipv6,
                ErrorKind::BadLength {
                    declared: self.payload_len,
                    actual: u16::MAX as usize,
                },
                field::PAYLOAD_LEN.start,
            ));
        }
        let mut p = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
    use crate::wire::udp;

    #[test]
    fn golden_fixed_header_and_extension_walk() {
        let mut b = bytes(golden6::UDP_EXT);
        b.extend_from_slice(&[0; 6]); // Ethernet padding is not payload
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 28);
        assert_eq!(p.total_len(), 68);
        assert_eq!(p.next_header(), next_header::HOP_BY_HOP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!((p.src_addr(), p.dst_addr()), (CLIENT, SERVER));
        assert_eq!(p.payload().len(), 28);
        let u = p.upper_layer().unwrap();
        assert_eq!(
            u,
            UpperLayer {
                protocol: next_header::UDP,
                offset: 56,
                fragment: None
            }
        );
        let (_, l4) = p.upper_layer_payload().unwrap();
        let d = udp::Packet::new_checked(l4).unwrap();
        assert_eq!(
            (d.src_port(), d.dst_port(), d.payload()),
            (5353, 53, &b"abcd"[..])
        );
        assert!(d.verify_checksum_v6(CLIENT, SERVER));
        assert!(!d.verify_checksum_v6(SERVER, SERVER));
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 40];
        assert_eq!(r.emit(&mut out).unwrap(), 40);
        assert_eq!(&out[..], &b[..40]);
    }

    #[test]
    fn fragment_header_marks_a_fragment() {
        let b = bytes(golden6::FRAGMENT);
        let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert!(u.is_fragment());
        assert_eq!((u.protocol, u.offset), (next_header::UDP, 48));
        let f = u.fragment.unwrap();
        assert_eq!(
            (f.header_offset, f.offset, f.more, f.ident),
            (40, 1480, true, 0xabcd_ef01)
        );
        assert!(!f.is_atomic());
        // An atomic fragment (offset 0, no more) is still a Fragment header.
        let mut a = b.clone();
        a[42..44].copy_from_slice(&[0, 0]);
        let u = Packet::new_checked(&a[..]).unwrap().upper_layer().unwrap();
        assert!(u.is_fragment() && u.fragment.unwrap().is_atomic());
        // A Fragment header cut short is truncated, at its offset.
        let mut t = b[..44].to_vec();
        t[4..6].copy_from_slice(&4u16.to_be_bytes());
        let e = Packet::new_checked(&t[..])
            .unwrap()
            .upper_layer()
            .unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Ipv6, 40));
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                required: 8,
                actual: 4
            }
        );
    }

    /// An IPv6 header followed by `n` empty Destination Options headers and then `last`.
    fn chain(first: u8, n: usize, last: u8) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + 8 * n + 8];
        Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: if n == 0 { last } else { first },
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8 * n + 8,
        }
        .emit(&mut b)
        .unwrap();
        for i in 0..n {
            b[HEADER_LEN + 8 * i] = if i + 1 == n {
                last
            } else {
                next_header::DEST_OPTS
            };
        }
        b
    }

    #[test]
    fn walk_is_bounded_and_typed() {
        for n in 0..=MAX_EXT_HEADERS {
            let b = chain(next_header::DEST_OPTS, n, next_header::TCP);
            let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
            assert_eq!(
                (u.protocol, u.offset),
                (next_header::TCP, 40 + 8 * n),
                "{n}"
            );
        }
        let b = chain(
            next_header::DEST_OPTS,
            MAX_EXT_HEADERS + 1,
            next_header::TCP,
        );
        let e = Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ChainTooLong(MAX_EXT_HEADERS));
        assert_eq!(e.offset, 40 + 8 * MAX_EXT_HEADERS);
        // Hop-by-Hop only first.
        let b = chain(next_header::HOP_BY_HOP, 1, next_header::UDP);
        assert!(Packet::new_checked(&b[..]).unwrap().upper_layer().is_ok());
        let b = chain(next_header::DEST_OPTS, 1, next_header::HOP_BY_HOP);
        let e = Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Unsupported(0), 48));
        // ESP ends the walk; AH counts its length in 4-byte words (+2).
        let mut b = chain(next_header::AH, 1, next_header::ESP);
        b[41] = 0; // (0 + 2) * 4 = 8 bytes
        let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!((u.protocol, u.offset), (next_header::ESP, 48));
        // An extension header longer than the payload is truncated.
        let mut b = chain(next_header::ROUTING, 1, next_header::UDP);
        b[41] = 1; // 16 bytes, 16 in the payload: the upper layer starts at the end
        assert_eq!(
            Packet::new_checked(&b[..])
                .unwrap()
                .upper_layer()
                .unwrap()
                .offset,
            56
        );
        b[41] = 2;
        let e = Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                required: 24,
                actual: 16
            }
        );
    }

    #[test]
    fn length_errors() {
        let b = bytes(golden6::UDP);
        assert_eq!(
            Packet::new_checked(&b[..39]).unwrap_err(),
            Error::truncated(Layer::Ipv6, 40, 39)
        );
        let e = Packet::new_checked(&b[..50]).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (
                ErrorKind::BadLength {
                    declared: 51,
                    actual: 50
                },
                4
            )
        );
        // A quoted header needs only the fixed header; its payload is clamped.
        let p = Packet::new_checked_header(&b[..44]).unwrap();
        assert_eq!(p.payload().len(), 4);
        let mut x = b.clone();
        x[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&x[..]).unwrap_err().kind,
            ErrorKind::BadVersion(4)
        );
    }

    #[test]
    fn setters() {
        let mut b = bytes(golden6::UDP);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_traffic_class(0xff);
        p.set_flow_label(0xfffff);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xff, 0xfffff)
        );
        p.set_traffic_class(0);
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0xfffff));
        p.set_flow_label(1);
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 1));
        p.set_hop_limit(1);
        assert_eq!((p.decrement_hop_limit(), p.decrement_hop_limit()), (0, 0));
        p.set_src_addr(SERVER);
        p.set_dst_addr(CLIENT);
        assert_eq!((p.src_addr(), p.dst_addr()), (SERVER, CLIENT));
        p.payload_mut()[0] = 0;
        assert_eq!(b[40], 0);
        assert!(Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: 6,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 65536,
        }
        .emit(&mut [0u8; 40])
        .is_err());
    }

    /// Builds a packet whose payload is the chain `exts` (next header, length byte) then `last`.
    fn build_chain(exts: &[(u8, u8)], last: u8) -> (Vec<u8>, usize) {
        let mut payload = Vec::new();
        for (i, &(nh, l)) in exts.iter().enumerate() {
            let len = ext_header_len(nh, l).unwrap();
            let next = exts.get(i + 1).map_or(last, |e| e.0);
            let mut h = vec![0u8; len];
            h[0] = next;
            h[1] = l;
            payload.extend_from_slice(&h);
        }
        let upper = payload.len();
        payload.extend_from_slice(&[0xa5; 8]);
        let mut b = vec![0u8; HEADER_LEN];
        Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: exts.first().map_or(last, |e| e.0),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: payload.len(),
        }
        .emit(&mut b)
        .unwrap();
        b.extend_from_slice(&payload);
        (b, HEADER_LEN + upper)
    }

    proptest::proptest! {
        /// A header built from a `Repr` parses back to it.
        #[test]
        fn repr_round_trip(
            src in proptest::num::u128::ANY, dst in proptest::num::u128::ANY,
            nh in proptest::num::u8::ANY, hops in proptest::num::u8::ANY,
            tc in proptest::num::u8::ANY, flow in 0u32..0x10_0000, len in 0usize..300,
        ) {
            let r = Repr {
                src_addr: Ipv6Addr::from_bits(src),
                dst_addr: Ipv6Addr::from_bits(dst),
                next_header: nh,
                hop_limit: hops,
                traffic_class: tc,
                flow_label: flow,
                payload_len: len,
            };
            let mut b = vec![0u8; HEADER_LEN + len];
            r.emit(&mut b).unwrap();
            proptest::prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        /// The walk finds the upper layer behind any chain of known extension headers up to the
        /// bound, and refuses a longer one.
        #[test]
        fn walk_finds_built_chains(
            kinds in proptest::collection::vec((0usize..3, 0u8..4), 0..12),
            hbh_first in proptest::bool::ANY,
            last in proptest::sample::select(vec![next_header::TCP, next_header::UDP, next_header::ICMPV6, next_header::ESP, next_header::NO_NEXT]),
        ) {
            let mut exts: Vec<(u8, u8)> = kinds
                .iter()
                .map(|&(k, l)| ([next_header::DEST_OPTS, next_header::ROUTING, next_header::AH][k], l))
                .collect();
            if hbh_first {
                exts.insert(0, (next_header::HOP_BY_HOP, 0));
            }
            let (b, upper) = build_chain(&exts, last);
            let got = Packet::new_checked(&b[..]).unwrap().upper_layer();
            if exts.len() <= MAX_EXT_HEADERS {
                let u = got.unwrap();
                proptest::prop_assert_eq!((u.protocol, u.offset, u.fragment), (last, upper, None));
            } else {
                proptest::prop_assert_eq!(got.unwrap_err().kind, ErrorKind::ChainTooLong(MAX_EXT_HEADERS));
            }
        }
    }
}
