//! Ethernet II frames with at most one 802.1Q VLAN tag.
//!
//! [`Frame::l3`] finds the network layer: it returns the ethertype behind an optional 802.1Q tag
//! and the offset of the L3 header in the frame; [`L3Info::protocol`] names it (IPv4, IPv6, ARP or
//! another EtherType).

use super::{get_u16, set_u16, Error, ErrorKind, Layer, Result};
use core::fmt;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads a MAC from the first six bytes of `b` (panics if shorter).
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut a = [0u8; 6];
        a.copy_from_slice(&b[..6]);
        MacAddr(a)
    }
    /// The six bytes.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
    /// True for ff:ff:ff:ff:ff:ff.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
    /// True when the group bit is set (multicast or broadcast).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
    /// True for a unicast address (group bit clear).
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for MacAddr {
    type Err = ();
    fn from_str(s: &str) -> core::result::Result<Self, ()> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 6 || part.len() != 2 {
                return Err(());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| ())?;
            n += 1;
        }
        if n == 6 {
            Ok(MacAddr(out))
        } else {
            Err(())
        }
    }
}

/// Ethertype values.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ); not unwrapped here.
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Destination MAC.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC.
    pub const SOURCE: Field = 6..12;
    /// Ethertype, or TPID 0x8100 when tagged.
    pub const ETHERTYPE: Field = 12..14;
    /// 802.1Q tag control information (PCP, DEI, VID), when tagged.
    pub const VLAN_TCI: Field = 14..16;
    /// Ethertype behind an 802.1Q tag.
    pub const VLAN_ETHERTYPE: Field = 16..18;
}

/// Untagged header length.
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Header length with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = HEADER_LEN + VLAN_TAG_LEN;
/// Minimum frame length without FCS (frames are padded up to it).
pub const MIN_FRAME_LEN: usize = 60;

/// Where the network layer is: its ethertype, its offset in the frame, and the VLAN tag if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3Info {
    /// Ethertype of the L3 payload (after the tag if tagged).
    pub ethertype: u16,
    /// Offset of the L3 header in the frame (14 or 18).
    pub offset: usize,
    /// The 802.1Q TCI if the frame carries one tag.
    pub vlan_tci: Option<u16>,
}

/// The network protocol of a frame, as its EtherType says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3Protocol {
    /// IPv4 (0x0800).
    Ipv4,
    /// IPv6 (0x86DD).
    Ipv6,
    /// ARP (0x0806).
    Arp,
    /// Any other EtherType (the value).
    Other(u16),
}

impl L3Protocol {
    /// The protocol an EtherType names.
    #[inline]
    pub const fn from_ethertype(t: u16) -> Self {
        match t {
            ethertype::IPV4 => L3Protocol::Ipv4,
            ethertype::IPV6 => L3Protocol::Ipv6,
            ethertype::ARP => L3Protocol::Arp,
            t => L3Protocol::Other(t),
        }
    }
}

impl L3Info {
    /// The network protocol of the L3 payload.
    #[inline]
    pub const fn protocol(&self) -> L3Protocol {
        L3Protocol::from_ethertype(self.ethertype)
    }

    /// The VLAN ID (low 12 bits of the TCI), if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci.map(|t| t & 0x0fff)
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer` after [`Frame::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the untagged 14-byte header fits. Tag fields are checked by [`Frame::l3`] and
    /// return `None` from the tag accessors when absent or truncated.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Error::truncated(Layer::Ethernet, HEADER_LEN, len))
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The bytes of the whole frame.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination MAC.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// Source MAC.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The outer ethertype field (0x8100 for a tagged frame).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// True when the outer ethertype is an 802.1Q TPID.
    #[inline]
    pub fn is_vlan_tagged(&self) -> bool {
        self.ethertype() == ethertype::VLAN
    }

    /// The 802.1Q TCI when tagged and the tag fits, else `None`.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        if self.is_vlan_tagged() && b.len() >= TAGGED_HEADER_LEN {
            Some(get_u16(b, field::VLAN_TCI))
        } else {
            None
        }
    }

    /// Finds the L3 header: ethertype after at most one 802.1Q tag, and its offset in the frame.
    #[inline]
    pub fn l3(&self) -> Result<L3Info> {
        let b = self.buffer.as_ref();
        let outer = self.ethertype();
        if outer != ethertype::VLAN {
            return Ok(L3Info {
                ethertype: outer,
                offset: HEADER_LEN,
                vlan_tci: None,
            });
        }
        if b.len() < TAGGED_HEADER_LEN {
            return Err(Error::new(
                Layer::Vlan,
                ErrorKind::Truncated {
                    required: TAGGED_HEADER_LEN,
                    actual: b.len(),
                },
                field::VLAN_TCI.start,
            ));
        }
        Ok(L3Info {
            ethertype: get_u16(b, field::VLAN_ETHERTYPE),
            offset: TAGGED_HEADER_LEN,
            vlan_tci: Some(get_u16(b, field::VLAN_TCI)),
        })
    }

    /// Bytes after the untagged 14-byte header (use [`Frame::l3`] for tagged frames).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Sets the outer ethertype field.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    /// Sets the TCI of an existing tag; false (no change) if untagged or the tag does not fit.
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) -> bool {
        if self.vlan_tci().is_none() {
            return false;
        }
        set_u16(self.buffer.as_mut(), field::VLAN_TCI, tci);
        true
    }

    /// Swaps source and destination MACs.
    #[inline]
    pub fn swap_addrs(&mut self) {
        let (s, d) = (self.src_addr(), self.dst_addr());
        self.set_src_addr(d);
        self.set_dst_addr(s);
    }

    /// Bytes after the untagged 14-byte header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A parsed Ethernet header (with an optional single VLAN tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source MAC.
    pub src_addr: MacAddr,
    /// Destination MAC.
    pub dst_addr: MacAddr,
    /// 802.1Q TCI, if tagged.
    pub vlan_tci: Option<u16>,
    /// Ethertype of the payload.
    pub ethertype: u16,
}

impl Repr {
    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Self> {
        frame.check_len()?;
        let l3 = frame.l3()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan_tci: l3.vlan_tci,
            ethertype: l3.ethertype,
        })
    }

    /// Header length this repr emits (14 or 18).
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan_tci.is_some() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header into the front of `buf`; errors if `buf` is shorter than `header_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.header_len();
        if buf.len() < n {
            return Err(Error::no_room(n, buf.len()));
        }
        buf[field::DESTINATION].copy_from_slice(&self.dst_addr.0);
        buf[field::SOURCE].copy_from_slice(&self.src_addr.0);
        match self.vlan_tci {
            Some(tci) => {
                set_u16(buf, field::ETHERTYPE, ethertype::VLAN);
                set_u16(buf, field::VLAN_TCI, tci);
                set_u16(buf, field::VLAN_ETHERTYPE, self.ethertype);
            }
            None => set_u16(buf, field::ETHERTYPE, self.ethertype),
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        0x45, 0x00,
    ];

    const TAGGED: [u8; 19] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x81, 0x00, 0x20, 0x64, // tag: PCP 1, VID 100
        0x08, 0x06, // ARP
        0x00,
    ];

    #[test]
    fn parse_untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), "02:00:00:00:00:02".parse().unwrap());
        assert_eq!(f.src_addr().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.vlan_tci(), None);
        let l3 = f.l3().unwrap();
        assert_eq!(
            l3,
            L3Info {
                ethertype: ethertype::IPV4,
                offset: 14,
                vlan_tci: None
            }
        );
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn parse_tagged() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        let l3 = f.l3().unwrap();
        assert_eq!(l3.ethertype, ethertype::ARP);
        assert_eq!(l3.offset, 18);
        assert_eq!(l3.vlan_id(), Some(100));
        assert_eq!(l3.vlan_tci, Some(0x2064));
        // A truncated tag is an error naming the VLAN layer.
        let e = Frame::new_checked(&TAGGED[..16]).unwrap().l3().unwrap_err();
        assert_eq!(e.layer, Layer::Vlan);
        assert_eq!(e.offset, 14);
    }

    #[test]
    fn l3_protocol_names_ipv6() {
        assert_eq!(
            Frame::new_checked(&UNTAGGED[..])
                .unwrap()
                .l3()
                .unwrap()
                .protocol(),
            L3Protocol::Ipv4
        );
        assert_eq!(
            Frame::new_checked(&TAGGED[..])
                .unwrap()
                .l3()
                .unwrap()
                .protocol(),
            L3Protocol::Arp
        );
        let mut v6 = TAGGED;
        v6[16..18].copy_from_slice(&[0x86, 0xdd]);
        let l3 = Frame::new_checked(&v6[..]).unwrap().l3().unwrap();
        assert_eq!((l3.protocol(), l3.offset), (L3Protocol::Ipv6, 18));
        v6[16..18].copy_from_slice(&[0x88, 0xcc]);
        let l3 = Frame::new_checked(&v6[..]).unwrap().l3().unwrap();
        assert_eq!(l3.protocol(), L3Protocol::Other(0x88cc));
    }

    #[test]
    fn too_short() {
        let e = Frame::new_checked(&UNTAGGED[..13]).unwrap_err();
        assert_eq!(e, Error::truncated(Layer::Ethernet, 14, 13));
    }

    #[test]
    fn emit_round_trip() {
        for tci in [None, Some(0x0123)] {
            let r = Repr {
                src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
                dst_addr: MacAddr([2, 0, 0, 0, 0, 2]),
                vlan_tci: tci,
                ethertype: ethertype::IPV4,
            };
            let mut b = [0xa5u8; 20];
            let n = r.emit(&mut b).unwrap();
            assert_eq!(n, r.header_len());
            assert!(b[n..].iter().all(|&x| x == 0xa5));
            let f = Frame::new_checked(&b[..]).unwrap();
            assert_eq!(Repr::parse(&f).unwrap(), r);
        }
        let mut b = [0xa5u8; 20];
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_src_addr(MacAddr([1; 6]));
        f.set_dst_addr(MacAddr([2; 6]));
        f.set_ethertype(ethertype::VLAN);
        assert!(f.set_vlan_tci(7));
        f.swap_addrs();
        assert_eq!(f.src_addr(), MacAddr([2; 6]));
        assert_eq!(f.vlan_tci(), Some(7));
        assert_eq!(
            &b[..16],
            &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x81, 0, 0, 7]
        );
    }

    #[test]
    fn mac_parse_errors() {
        assert!("02:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("zz:00:00:00:00:00".parse::<MacAddr>().is_err());
        assert!(MacAddr([1, 0, 0, 0, 0, 0]).is_multicast());
        assert!(MacAddr([2, 0, 0, 0, 0, 0]).is_unicast());
    }
}
