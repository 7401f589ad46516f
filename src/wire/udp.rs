//! UDP datagrams (RFC 768) over IPv4 and IPv6: length check, checksum with pseudo-header (over
//! IPv4 a transmitted `0` means "no checksum"; over IPv6, the `_v6` methods, it is invalid), and
//! checksum-preserving port and address rewrites.

use super::checksum;
use super::ipv4::protocol;
use super::{get_u16, set_u16, Error, ErrorKind, Layer, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length (header + payload).
    pub const LENGTH: Field = 4..6;
    /// Checksum (0 = none).
    pub const CHECKSUM: Field = 6..8;
}

/// Header length.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
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

    /// Checks the 8-byte header fits and 8 <= length field <= buffer length.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::truncated(Layer::Udp, HEADER_LEN, len));
        }
        let declared = self.len() as usize;
        if declared < HEADER_LEN || declared > len {
            return Err(Error::new(
                Layer::Udp,
                ErrorKind::BadLength {
                    declared,
                    actual: if declared < HEADER_LEN {
                        HEADER_LEN
                    } else {
                        len
                    },
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
    /// Length field (header + payload).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Checksum field (0 = none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Range of the datagram (0 .. length field), clamped to the buffer.
    #[inline]
    fn datagram_end(&self) -> usize {
        let len = self.buffer.as_ref().len();
        (self.len() as usize).clamp(HEADER_LEN.min(len), len)
    }
    /// Payload: bytes 8 .. length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = self.datagram_end();
        &self.buffer.as_ref()[HEADER_LEN.min(end)..end]
    }
    /// Sum over the IPv4 pseudo-header + datagram (not complemented).
    #[inline]
    fn compute(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let n = self.datagram_end() as u16;
        self.sum_with(checksum::pseudo_header_sum(src, dst, protocol::UDP, n))
    }
    /// Sum over the IPv6 pseudo-header + datagram (not complemented).
    #[inline]
    fn compute_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let n = self.datagram_end() as u32;
        self.sum_with(checksum::pseudo_header_sum_v6(src, dst, protocol::UDP, n))
    }
    /// Sum of a pseudo-header sum `ph` and the datagram.
    #[inline]
    fn sum_with(&self, ph: u32) -> u32 {
        checksum::add(
            ph,
            checksum::sum(&self.buffer.as_ref()[..self.datagram_end()]),
        )
    }
    /// True when the checksum is absent (0) or valid (over IPv4).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.compute(src, dst) == 0xffff
    }
    /// True when the checksum is valid over IPv6; `0` is invalid there (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0 && self.compute_v6(src, dst) == 0xffff
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
    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v)
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// Computes and stores the checksum over IPv4 (a computed 0 is stored as 0xffff).
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::udp_finish(self.compute(src, dst));
        self.set_checksum(c);
    }
    /// Computes and stores the checksum over IPv6 (a computed 0 is stored as 0xffff).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::udp_finish(self.compute_v6(src, dst));
        self.set_checksum(c);
    }
    /// Replaces the source port, updating a present checksum incrementally; returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, new: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(new);
        let c = checksum::update_udp_u16(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Replaces the destination port, updating a present checksum incrementally; returns the old.
    #[inline]
    pub fn rewrite_dst_port(&mut self, new: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(new);
        let c = checksum::update_udp_u16(self.checksum(), old, new);
        self.set_checksum(c);
        old
    }
    /// Updates a present checksum for an IPv4 address change in the pseudo-header.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_udp_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Updates the checksum for an IPv6 address change in the pseudo-header (NAT66); a `0`
    /// (invalid over IPv6) stays `0`.
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_udp_addr_v6(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.datagram_end();
        &mut self.buffer.as_mut()[HEADER_LEN.min(end)..end]
    }
}

/// A UDP header description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl Repr {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
        })
    }

    /// Writes header + `payload` into `buf` with a valid checksum; returns the datagram length.
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
        if n > u16::MAX as usize {
            return Err(Error::new(
                Layer::Udp,
                ErrorKind::BadLength {
                    declared: n,
                    actual: u16::MAX as usize,
                },
                field::LENGTH.start,
            ));
        }
        let mut p = Packet::new_unchecked(&mut buf[..n]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(n as u16);
        p.payload_mut().copy_from_slice(payload);
        p.fill_checksum(src, dst);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn parse_and_checksum() {
        // DNS-ish query: 5353 -> 53, 4 bytes payload, 2 bytes trailing padding.
        let mut b = [
            0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xa5, 0xa5,
        ];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 5353);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum(SRC, DST)); // 0 = none
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, SRC));
        // Padding is not covered.
        b[12] = 0;
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(SRC, DST));
        let mut ph = vec![192, 0, 2, 1, 198, 51, 100, 7, 0, 17, 0, 12];
        ph.extend_from_slice(&b[..12]);
        assert!(checksum::verify(&ph));
    }

    #[test]
    fn zero_checksum_is_sent_as_ffff() {
        // Find a payload whose checksum computes to 0 and check it is stored as 0xffff.
        let r = Repr {
            src_port: 1,
            dst_port: 2,
        };
        let mut b = [0u8; 10];
        r.emit(&mut b, SRC, DST, &[0, 0]).unwrap();
        let c = Packet::new_unchecked(&b[..]).checksum();
        // Payload word that brings the sum to 0xffff: add the checksum value itself.
        r.emit(&mut b, SRC, DST, &c.to_be_bytes()).unwrap();
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn length_errors() {
        let b = [0u8, 1, 0, 2, 0, 9, 0, 0];
        let e = Packet::new_checked(&b[..]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::BadLength {
                declared: 9,
                actual: 8
            }
        );
        assert_eq!(e.offset, 4);
        let b = [0u8, 1, 0, 2, 0, 7, 0, 0];
        assert!(Packet::new_checked(&b[..]).is_err());
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            Error::truncated(Layer::Udp, 8, 7)
        );
    }

    #[test]
    fn emit_round_trip() {
        let r = Repr {
            src_port: 40000,
            dst_port: 6080,
        };
        let mut b = [0xa5u8; 16];
        let n = r.emit(&mut b, SRC, DST, b"abc").unwrap();
        assert_eq!(n, 11);
        assert_eq!(&b[11..], &[0xa5; 5]);
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn golden_ipv6_checksum_and_zero() {
        use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
        let b = bytes(golden6::UDP);
        let p = Packet::new_checked(&b[40..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.payload()),
            (40000, 6080, &b"abc"[..])
        );
        assert!(p.verify_checksum_v6(CLIENT, SERVER));
        let mut m = b[40..].to_vec();
        let mut q = Packet::new_unchecked(&mut m[..]);
        q.fill_checksum_v6(CLIENT, SERVER);
        assert_eq!(q.checksum(), p.checksum());
        // Over IPv6 a zero checksum is invalid, not "none".
        q.set_checksum(0);
        assert!(!q.verify_checksum_v6(CLIENT, SERVER));
        assert!(q.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
        q.update_checksum_for_addr_v6(SERVER, CLIENT);
        assert_eq!(q.checksum(), 0);
    }

    proptest::proptest! {
        /// NAT66 of a datagram: incremental port and address updates equal a full recompute.
        #[test]
        fn incremental_nat66_equals_recompute(
            src in proptest::num::u128::ANY, dst in proptest::num::u128::ANY,
            nsrc in proptest::num::u128::ANY, nsport in proptest::num::u16::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let (src, dst, nsrc) = (Ipv6Addr::from_bits(src), Ipv6Addr::from_bits(dst), Ipv6Addr::from_bits(nsrc));
            let mut b = vec![0u8; 8 + payload.len()];
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.set_len((8 + payload.len()) as u16);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum_v6(src, dst);
            p.rewrite_src_port(nsport);
            p.update_checksum_for_addr_v6(src, nsrc);
            proptest::prop_assert!(p.verify_checksum_v6(nsrc, dst));
            let inc = p.checksum();
            p.fill_checksum_v6(nsrc, dst);
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
            no_checksum in proptest::bool::weighted(0.1),
        ) {
            let (src, dst, nsrc, ndst): (Ipv4Addr, Ipv4Addr, Ipv4Addr, Ipv4Addr) =
                (src.into(), dst.into(), nsrc.into(), ndst.into());
            let mut b = vec![0u8; 8 + payload.len()];
            Repr { src_port: sport, dst_port: dport }.emit(&mut b, src, dst, &payload).unwrap();
            let mut p = Packet::new_unchecked(&mut b[..]);
            if no_checksum {
                p.set_checksum(0);
            }
            p.rewrite_src_port(nsport);
            p.rewrite_dst_port(ndport);
            p.update_checksum_for_addr(src, nsrc);
            p.update_checksum_for_addr(dst, ndst);
            let inc = p.checksum();
            if no_checksum {
                proptest::prop_assert_eq!(inc, 0);
            } else {
                p.fill_checksum(nsrc, ndst);
                proptest::prop_assert_eq!(inc, p.checksum());
                proptest::prop_assert!(p.verify_checksum(nsrc, ndst));
            }
        }
    }
}
