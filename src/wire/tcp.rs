//! TCP segments (RFC 9293): ports, sequence numbers, flags, data offset, and the checksum over the
//! IPv4 or IPv6 pseudo-header (the `_v6` methods), with checksum-preserving port and address
//! rewrites.
//!
//! A view must wrap exactly the TCP segment (the IP payload): the checksum covers the whole buffer.

use super::checksum;
use super::ipv4::protocol;
use super::{get_u16, get_u32, set_u16, set_u32, Error, ErrorKind, Layer, Result};
use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgement number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble of byte 12) and flags (low 12 bits).
    pub const FLAGS: Field = 12..14;
    /// The byte whose high nibble is the data offset (header length in 32-bit words).
    pub const DATA_OFF: usize = 12;
    /// The low byte of [`FLAGS`]: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR.
    pub const FLAG_BITS: usize = 13;
    /// Window.
    pub const WINDOW: Field = 14..16;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
}

/// Minimum (option-less) header length.
pub const HEADER_LEN: usize = 20;

/// TCP flag bits (low 9 bits of the data-offset/flags word).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// FIN.
    pub const FIN: Flags = Flags(0x001);
    /// SYN.
    pub const SYN: Flags = Flags(0x002);
    /// RST.
    pub const RST: Flags = Flags(0x004);
    /// PSH.
    pub const PSH: Flags = Flags(0x008);
    /// ACK.
    pub const ACK: Flags = Flags(0x010);
    /// URG.
    pub const URG: Flags = Flags(0x020);
    /// ECE.
    pub const ECE: Flags = Flags(0x040);
    /// CWR.
    pub const CWR: Flags = Flags(0x080);
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Mask of the bits these flags use.
    pub const MASK: u16 = 0x1ff;

    /// True if all bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if any bit of `other` is set.
    #[inline]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u16 {
        self.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    #[inline]
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    #[inline]
    fn bitor_assign(&mut self, o: Flags) {
        self.0 |= o.0
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;
    #[inline]
    fn bitand(self, o: Flags) -> Flags {
        Flags(self.0 & o.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Flags, &str); 8] = [
            (Flags::SYN, "SYN"),
            (Flags::ACK, "ACK"),
            (Flags::FIN, "FIN"),
            (Flags::RST, "RST"),
            (Flags::PSH, "PSH"),
            (Flags::URG, "URG"),
            (Flags::ECE, "ECE"),
            (Flags::CWR, "CWR"),
        ];
        let mut first = true;
        for (fl, n) in NAMES {
            if self.contains(fl) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A view of a TCP segment.
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

    /// Wraps `buffer` after [`Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the 20-byte header fits, data offset >= 5, and the full header (options) fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::truncated(Layer::Tcp, HEADER_LEN, len));
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::new(
                Layer::Tcp,
                ErrorKind::BadHeaderLen(hl),
                field::FLAGS.start,
            ));
        }
        if hl > len {
            return Err(Error::truncated(Layer::Tcp, hl, len));
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }
    /// Acknowledgement number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM)
    }
    /// Header length in bytes (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::FLAGS.start] >> 4) as usize) * 4
    }
    /// Flags.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(get_u16(self.buffer.as_ref(), field::FLAGS) & Flags::MASK)
    }
    /// FIN set.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags().contains(Flags::FIN)
    }
    /// SYN set.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags().contains(Flags::SYN)
    }
    /// RST set.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags().contains(Flags::RST)
    }
    /// ACK set.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags().contains(Flags::ACK)
    }
    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }
    /// Options bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Payload bytes.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Segment length (header + payload) = buffer length.
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.buffer.as_ref().len()
    }
    /// The IPv4 pseudo-header sum of this segment.
    #[inline]
    fn pseudo_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let n = self.segment_len() as u16;
        checksum::pseudo_header_sum(src, dst, protocol::TCP, n)
    }
    /// The IPv6 pseudo-header sum of this segment.
    #[inline]
    fn pseudo_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let n = self.segment_len() as u32;
        checksum::pseudo_header_sum_v6(src, dst, protocol::TCP, n)
    }
    /// True when the checksum over pseudo-header (sum `ph`) + segment is valid.
    #[inline]
    fn verify_with(&self, ph: u32) -> bool {
        checksum::add(ph, checksum::sum(self.buffer.as_ref())) == 0xffff
    }
    /// True when the checksum over the IPv4 pseudo-header + segment is valid.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.verify_with(self.pseudo_v4(src, dst))
    }
    /// True when the checksum over the IPv6 pseudo-header + segment is valid.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.verify_with(self.pseudo_v6(src, dst))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets source port (checksum untouched).
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, v)
    }
    /// Sets destination port (checksum untouched).
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, v)
    }
    /// Sets sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ_NUM, v)
    }
    /// Sets acknowledgement number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::ACK_NUM, v)
    }
    /// Sets the header length in bytes (multiple of 4, 20..=60), keeping the flags.
    #[inline]
    pub fn set_header_len(&mut self, hl: usize) {
        let b = self.buffer.as_mut();
        b[field::FLAGS.start] = (b[field::FLAGS.start] & 0x0f) | (((hl / 4) as u8) << 4);
    }
    /// Sets the flags, keeping the data offset.
    #[inline]
    pub fn set_flags(&mut self, f: Flags) {
        let b = self.buffer.as_mut();
        let w = (get_u16(b, field::FLAGS) & 0xf000) | (f.0 & Flags::MASK);
        set_u16(b, field::FLAGS, w)
    }
    /// Sets window.
    #[inline]
    pub fn set_window(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::WINDOW, v)
    }
    /// Sets checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// Sets urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT, v)
    }
    /// Stores the checksum over the pseudo-header (sum `ph`) and the whole buffer.
    #[inline]
    fn fill_with(&mut self, ph: u32) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::add(ph, checksum::sum(self.buffer.as_ref())));
        self.set_checksum(c);
    }
    /// Recomputes the checksum over the IPv4 pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.fill_with(self.pseudo_v4(src, dst))
    }
    /// Recomputes the checksum over the IPv6 pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.fill_with(self.pseudo_v6(src, dst))
    }
    /// Replaces the source port with an incremental checksum update; returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, new: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(new);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Replaces the destination port with an incremental checksum update; returns the old port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, new: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(new);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Updates the checksum for an IPv4 address change in the pseudo-header (src or dst).
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Updates the checksum for an IPv6 address change in the pseudo-header (NAT66).
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_addr_v6(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Payload bytes, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// An option-less TCP header description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgement number.
    pub ack_number: u32,
    /// Flags.
    pub flags: Flags,
    /// Window.
    pub window: u16,
}

impl Repr {
    /// Parses a view (options are skipped).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window: p.window(),
        })
    }

    /// Writes segment = 20-byte header + `payload` into `buf` with a valid checksum; returns its length.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize> {
        let n = HEADER_LEN + payload.len();
        if buf.len() < n {
            return Err(Error::no_room(n, buf.len()));
        }
        let mut p = Packet::new_unchecked(&mut buf[..n]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        set_u16(
            p.buffer,
            field::FLAGS,
            0x5000 | (self.flags.0 & Flags::MASK),
        );
        p.set_window(self.window);
        p.set_urgent(0);
        p.payload_mut().copy_from_slice(payload);
        p.fill_checksum(src, dst);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    // SYN 10.0.0.1:49152 -> 10.0.0.2:80, seq 1, MSS option 1460; checksum from an independent sum.
    const SYN: [u8; 24] = [
        0xc0, 0x00, 0x00, 0x50, // ports
        0x00, 0x00, 0x00, 0x01, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0x60, 0x02, 0xff, 0xff, // off 6, SYN, window
        0x00, 0x00, 0x00, 0x00, // checksum (filled), urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    fn syn() -> [u8; 24] {
        let mut b = SYN;
        Packet::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        b
    }

    #[test]
    fn parse_fields() {
        let b = syn();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 1);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 24);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK), "SYN|ACK");
        assert_eq!(p.window(), 0xffff);
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 3)));
        // Checksum agrees with a plain sum over an explicit pseudo-header.
        let mut ph = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 24];
        ph.extend_from_slice(&b);
        assert!(checksum::verify(&ph));
    }

    #[test]
    fn length_errors() {
        let b = syn();
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            Error::truncated(Layer::Tcp, 20, 19)
        );
        assert_eq!(
            Packet::new_checked(&b[..22]).unwrap_err(),
            Error::truncated(Layer::Tcp, 24, 22)
        );
        let mut x = b;
        x[12] = 0x40;
        let e = Packet::new_checked(&x[..]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadHeaderLen(16));
        assert_eq!(e.offset, 12);
    }

    #[test]
    fn emit_round_trip() {
        let r = Repr {
            src_port: 1234,
            dst_port: 443,
            seq_number: 0xdeadbeef,
            ack_number: 0x01020304,
            flags: Flags::PSH | Flags::ACK,
            window: 512,
        };
        let mut b = [0xa5u8; 30];
        let n = r.emit(&mut b, SRC, DST, b"hi!").unwrap();
        assert_eq!(n, 23);
        assert_eq!(&b[23..], &[0xa5; 7]);
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert_eq!(p.payload(), b"hi!");
        assert!(p.verify_checksum(SRC, DST));
        assert!(r.emit(&mut b[..22], SRC, DST, b"hi!").is_err());
        let mut p = Packet::new_unchecked(&mut b[..n]);
        p.set_flags(Flags::RST);
        assert_eq!(p.header_len(), 20);
        p.set_header_len(24);
        assert_eq!(p.flags(), Flags::RST);
    }

    #[test]
    fn golden_ipv6_checksum() {
        use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
        let b = bytes(golden6::TCP_SYN);
        let p = Packet::new_checked(&b[40..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.flags()),
            (49152, 80, Flags::SYN)
        );
        assert!(p.verify_checksum_v6(CLIENT, SERVER));
        assert!(!p.verify_checksum_v6(CLIENT, CLIENT));
        let mut m = b[40..].to_vec();
        let mut q = Packet::new_unchecked(&mut m[..]);
        q.fill_checksum_v6(CLIENT, SERVER);
        assert_eq!(q.checksum(), p.checksum());
    }

    proptest::proptest! {
        /// NAT66 of a segment: incremental port and address updates equal a full recompute.
        #[test]
        fn incremental_nat66_equals_recompute(
            src in proptest::num::u128::ANY, dst in proptest::num::u128::ANY,
            ndst in proptest::num::u128::ANY, nport in proptest::num::u16::ANY,
        ) {
            let (src, dst, ndst) = (Ipv6Addr::from_bits(src), Ipv6Addr::from_bits(dst), Ipv6Addr::from_bits(ndst));
            let mut b = syn();
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.fill_checksum_v6(src, dst);
            p.rewrite_dst_port(nport);
            p.update_checksum_for_addr_v6(dst, ndst);
            proptest::prop_assert!(p.verify_checksum_v6(src, ndst));
            let inc = p.checksum();
            p.fill_checksum_v6(src, ndst);
            proptest::prop_assert_eq!(inc, p.checksum());
        }
    }

    proptest::proptest! {
        #[test]
        fn incremental_nat_equals_recompute(
            src in proptest::num::u32::ANY, dst in proptest::num::u32::ANY,
            nsrc in proptest::num::u32::ANY, ndst in proptest::num::u32::ANY,
            sport in proptest::num::u16::ANY, dport in proptest::num::u16::ANY,
            nsport in proptest::num::u16::ANY, ndport in proptest::num::u16::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let (src, dst, nsrc, ndst): (Ipv4Addr, Ipv4Addr, Ipv4Addr, Ipv4Addr) =
                (src.into(), dst.into(), nsrc.into(), ndst.into());
            let mut b = vec![0u8; 20 + payload.len()];
            let r = Repr { src_port: sport, dst_port: dport, seq_number: 7, ack_number: 9,
                flags: Flags::ACK, window: 100 };
            r.emit(&mut b, src, dst, &payload).unwrap();
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.rewrite_src_port(nsport);
            p.rewrite_dst_port(ndport);
            p.update_checksum_for_addr(src, nsrc);
            p.update_checksum_for_addr(dst, ndst);
            let inc = p.checksum();
            p.fill_checksum(nsrc, ndst);
            proptest::prop_assert_eq!(inc, p.checksum());
            proptest::prop_assert!(p.verify_checksum(nsrc, ndst));
        }
    }
}
