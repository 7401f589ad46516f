//! IPv4 headers and packets (RFC 791), with fragment helpers, header checksum verify/fill and
//! checksum-preserving rewrites (RFC 1624) of addresses and TTL.

use super::checksum;
use super::{get_addr, get_u16, set_u16, Error, ErrorKind, Layer, Result};
use std::net::Ipv4Addr;

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Version (high nibble) and IHL (low nibble, 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length (header + payload).
    pub const LENGTH: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
}

/// IP protocol numbers.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4-in-IPv4 (IPIP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// Minimum (option-less) header length.
pub const HEADER_LEN: usize = 20;
/// Flag bit: don't fragment (in the FLG_OFF word).
pub const FLAG_DF: u16 = 0x4000;
/// Flag bit: more fragments.
pub const FLAG_MF: u16 = 0x2000;
/// Mask of the fragment offset (8-byte units).
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
/// The bits of the FLG_OFF word that make a packet a fragment (more fragments, or an offset).
pub const FRAGMENT_MASK: u16 = FLAG_MF | FRAG_OFFSET_MASK;
/// The VER_IHL byte of an IPv4 header without options (version 4, 5 words).
pub const VER_IHL_NO_OPTIONS: u8 = 0x45;

/// A view of an IPv4 packet.
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

    /// Wraps `buffer` after [`Packet::check_header_len`]: for a header quoted in an ICMP error, whose
    /// payload is cut short.
    #[inline]
    pub fn new_checked_header(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }

    /// Checks version 4, IHL >= 5 and that the whole header fits in the buffer. Every accessor is
    /// then panic-free; [`Packet::payload`] is clamped to the buffer.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::truncated(Layer::Ipv4, HEADER_LEN, b.len()));
        }
        let v = b[field::VER_IHL] >> 4;
        if v != 4 {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadVersion(v), 0));
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadHeaderLen(hl), 0));
        }
        if b.len() < hl {
            return Err(Error::truncated(Layer::Ipv4, hl, b.len()));
        }
        Ok(())
    }

    /// [`Packet::check_header_len`], and that header length <= total length <= buffer length
    /// (trailing bytes, e.g. Ethernet padding, are allowed and excluded from [`Packet::payload`]).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let len = self.buffer.as_ref().len();
        let total = self.total_len() as usize;
        let hl = self.header_len();
        if total < hl {
            return Err(Error::new(
                Layer::Ipv4,
                ErrorKind::BadLength {
                    declared: total,
                    actual: hl,
                },
                field::LENGTH.start,
            ));
        }
        if total > len {
            return Err(Error::new(
                Layer::Ipv4,
                ErrorKind::BadLength {
                    declared: total,
                    actual: len,
                },
                field::LENGTH.start,
            ));
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    /// DSCP + ECN byte (former TOS).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    /// DSCP (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }
    /// ECN (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 3
    }
    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }
    /// Raw flags + fragment offset word.
    #[inline]
    pub fn flags_frag_word(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF)
    }
    /// DF flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag_word() & FLAG_DF != 0
    }
    /// MF flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag_word() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag_word() & FRAG_OFFSET_MASK) << 3
    }
    /// True for any fragment: MF set or offset != 0.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag_word() & FRAGMENT_MASK != 0
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        get_addr(self.buffer.as_ref(), field::SRC_ADDR)
    }
    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        get_addr(self.buffer.as_ref(), field::DST_ADDR)
    }
    /// True when the header checksum is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }
    /// The header bytes (options included).
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
    /// Options bytes (between the fixed header and the payload).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Payload range: header length .. total length, clamped to the buffer.
    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        let hl = self.header_len().min(len);
        let end = (self.total_len() as usize).clamp(hl, len);
        hl..end
    }
    /// Payload: from the end of the header to the total length (excludes link-layer padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.payload_range()]
    }
    /// Pseudo-header sum for this packet's L4 payload (length taken from the payload).
    #[inline]
    pub fn pseudo_header_sum(&self) -> u32 {
        checksum::pseudo_header_sum(
            self.src_addr(),
            self.dst_addr(),
            self.protocol(),
            self.payload().len() as u16,
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (must be a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, hl: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((hl / 4) as u8 & 0x0f);
    }
    /// Sets the DSCP + ECN byte.
    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v
    }
    /// Sets total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v)
    }
    /// Sets identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v)
    }
    /// Sets the raw flags + fragment offset word.
    #[inline]
    pub fn set_flags_frag_word(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF, v)
    }
    /// Sets or clears DF.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        let w = self.flags_frag_word() & !FLAG_DF;
        self.set_flags_frag_word(if on { w | FLAG_DF } else { w });
    }
    /// Sets or clears MF.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        let w = self.flags_frag_word() & !FLAG_MF;
        self.set_flags_frag_word(if on { w | FLAG_MF } else { w });
    }
    /// Sets the fragment offset in bytes (rounded down to 8).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let w = self.flags_frag_word() & !FRAG_OFFSET_MASK;
        self.set_flags_frag_word(w | ((bytes >> 3) & FRAG_OFFSET_MASK));
    }
    /// Sets TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v
    }
    /// Sets protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v
    }
    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// Sets source address (checksum untouched).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets())
    }
    /// Sets destination address (checksum untouched).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets())
    }
    /// Recomputes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }
    /// Replaces the source address, updating the header checksum incrementally; returns the old one.
    /// (TCP/UDP checksums cover the address too: update them with `update_checksum_for_addr`.)
    #[inline]
    pub fn rewrite_src_addr(&mut self, new: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        self.set_src_addr(new);
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Replaces the destination address, updating the header checksum incrementally; returns the old.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, new: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        self.set_dst_addr(new);
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Replaces the TTL, updating the header checksum incrementally.
    #[inline]
    pub fn rewrite_ttl(&mut self, ttl: u8) {
        let b = self.buffer.as_ref();
        let old = u16::from_be_bytes([b[field::TTL], b[field::PROTOCOL]]);
        let new = u16::from_be_bytes([ttl, b[field::PROTOCOL]]);
        self.set_ttl(ttl);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Decrements the TTL (saturating at 0) with an incremental checksum update; returns the new TTL.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let t = self.ttl().saturating_sub(1);
        self.rewrite_ttl(t);
        t
    }
    /// The header bytes, writable.
    #[inline]
    pub fn header_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[..hl]
    }
    /// Payload, writable (same range as [`Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        &mut self.buffer.as_mut()[r]
    }
}

/// An option-less IPv4 header description, for building packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// DSCP + ECN byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// DF flag.
    pub dont_frag: bool,
    /// Payload length (total length - 20).
    pub payload_len: usize,
}

impl Repr {
    /// Parses a checked, unfragmented, option-less view (options are skipped, not kept).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            payload_len: p.payload().len(),
        })
    }

    /// Header length this repr emits (20).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header, checksum included, into the front of `buf`; returns 20.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.len() < HEADER_LEN {
            return Err(Error::no_room(HEADER_LEN, buf.len()));
        }
        let total = HEADER_LEN + self.payload_len;
        if total > u16::MAX as usize {
            return Err(Error::new(
                Layer::Ipv4,
                ErrorKind::BadLength {
                    declared: total,
                    actual: u16::MAX as usize,
                },
                field::LENGTH.start,
            ));
        }
        let mut p = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_version_and_header_len(HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len(total as u16);
        p.set_ident(self.ident);
        p.set_flags_frag_word(if self.dont_frag { FLAG_DF } else { 0 });
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 20-byte header + 4 bytes payload + 2 bytes trailing padding.
    const PKT: [u8; 26] = [
        0x45, 0x00, 0x00, 0x18, // v4, ihl 5, total 24
        0x12, 0x34, 0x40, 0x00, // ident, DF
        0x40, 0x11, 0x00, 0x00, // ttl 64, UDP, checksum (filled in test)
        0x0a, 0x00, 0x00, 0x01, // src
        0x0a, 0x00, 0x00, 0x02, // dst
        0xaa, 0xbb, 0xcc, 0xdd, // payload
        0x00, 0x00, // padding
    ];

    fn pkt() -> [u8; 26] {
        let mut b = PKT;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn parse_fields() {
        let b = pkt();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::UDP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert!(p.verify_checksum());
        assert!(p.options().is_empty());
    }

    #[test]
    fn length_errors() {
        let b = pkt();
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            Error::truncated(Layer::Ipv4, 20, 19)
        );
        // Total length beyond the buffer.
        let e = Packet::new_checked(&b[..23]).unwrap_err();
        assert_eq!(e.layer, Layer::Ipv4);
        assert_eq!(
            e.kind,
            ErrorKind::BadLength {
                declared: 24,
                actual: 23
            }
        );
        assert_eq!(e.offset, 2);
        // But a quoted header only needs the header.
        assert!(Packet::new_checked_header(&b[..20]).is_ok());
        assert!(Packet::new_checked_header(&b[..20])
            .unwrap()
            .payload()
            .is_empty());
        let mut x = b;
        x[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&x[..]).unwrap_err().kind,
            ErrorKind::BadHeaderLen(16)
        );
        x[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&x[..]).unwrap_err().kind,
            ErrorKind::BadVersion(6)
        );
        x[0] = 0x47; // IHL 28 > buffer? no: 28 > total 24
        assert!(Packet::new_checked(&x[..]).is_err());
        let mut x = b;
        x[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < header
        assert!(Packet::new_checked(&x[..]).is_err());
    }

    #[test]
    fn fragments() {
        let mut b = pkt();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.dont_frag());
        p.set_more_frags(false);
        p.set_frag_offset(1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        p.set_frag_offset(0);
        p.set_dont_frag(false);
        assert!(!p.is_fragment());
        assert_eq!(p.flags_frag_word(), 0);
    }

    #[test]
    fn rewrites_keep_checksum_valid() {
        let mut b = pkt();
        let mut p = Packet::new_unchecked(&mut b[..]);
        assert_eq!(
            p.rewrite_dst_addr(Ipv4Addr::new(192, 168, 7, 9)),
            Ipv4Addr::new(10, 0, 0, 2)
        );
        assert!(p.verify_checksum());
        p.rewrite_src_addr(Ipv4Addr::new(255, 255, 255, 255));
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(c, p.checksum());
    }

    #[test]
    fn emit_round_trip() {
        let r = Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: protocol::UDP,
            ttl: 64,
            tos: 0,
            ident: 0x1234,
            dont_frag: true,
            payload_len: 4,
        };
        let mut b = [0xa5u8; 26];
        assert_eq!(r.emit(&mut b).unwrap(), 20);
        b[20..24].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        b[24..].fill(0);
        assert_eq!(b, pkt());
        assert_eq!(Repr::parse(&Packet::new_unchecked(&b[..])).unwrap(), r);
        assert!(Repr {
            payload_len: 65516,
            ..r
        }
        .emit(&mut b)
        .is_err());
    }

    proptest::proptest! {
        #[test]
        fn incremental_rewrite_equals_recompute(
            src in proptest::num::u32::ANY, dst in proptest::num::u32::ANY,
            nsrc in proptest::num::u32::ANY, ndst in proptest::num::u32::ANY,
            ttl in proptest::num::u8::ANY, ident in proptest::num::u16::ANY,
        ) {
            let mut b = pkt();
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.set_src_addr(src.into());
            p.set_dst_addr(dst.into());
            p.set_ident(ident);
            p.set_ttl(ttl);
            p.fill_checksum();
            p.rewrite_src_addr(nsrc.into());
            p.rewrite_dst_addr(ndst.into());
            p.decrement_ttl();
            let inc = p.checksum();
            p.fill_checksum();
            proptest::prop_assert_eq!(inc, p.checksum());
            proptest::prop_assert!(p.verify_checksum());
        }
    }
}
