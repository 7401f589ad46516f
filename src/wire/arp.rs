//! ARP packets for Ethernet / IPv4 (RFC 826).
//!
//! The view checks only the 28-byte length; [`Packet::is_ethernet_ipv4`] and [`Repr::parse`] check
//! hardware/protocol types and address lengths.

use super::ethernet::{ethertype, MacAddr};
use super::{get_addr, get_u16, set_u16, Error, ErrorKind, Layer, Result};
use std::net::Ipv4Addr;

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: Field = 0..2;
    /// Protocol type (0x0800 = IPv4).
    pub const PTYPE: Field = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Field = 6..8;
    /// Sender hardware address.
    pub const SHA: Field = 8..14;
    /// Sender protocol address.
    pub const SPA: Field = 14..18;
    /// Target hardware address.
    pub const THA: Field = 18..24;
    /// Target protocol address.
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Operation: request.
pub const OP_REQUEST: u16 = 1;
/// Operation: reply.
pub const OP_REPLY: u16 = 2;

/// A view of an ARP packet.
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

    /// Checks that the 28-byte Ethernet/IPv4 ARP body fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < PACKET_LEN {
            Err(Error::truncated(Layer::Arp, PACKET_LEN, len))
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type.
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PTYPE)
    }
    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// True for Ethernet (6-byte) / IPv4 (4-byte) ARP.
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == ethertype::IPV4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }
    /// Operation (1 request, 2 reply).
    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }
    /// Sender hardware address.
    #[inline]
    pub fn sender_hw_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }
    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_addr(self.buffer.as_ref(), field::SPA)
    }
    /// Target hardware address.
    #[inline]
    pub fn target_hw_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }
    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        get_addr(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::HTYPE, v)
    }
    /// Sets protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PTYPE, v)
    }
    /// Sets hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v
    }
    /// Sets protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v
    }
    /// Sets operation.
    #[inline]
    pub fn set_operation(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::OPER, v)
    }
    /// Sets sender hardware address.
    #[inline]
    pub fn set_sender_hw_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0)
    }
    /// Sets sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets())
    }
    /// Sets target hardware address.
    #[inline]
    pub fn set_target_hw_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0)
    }
    /// Sets target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets())
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Operation (1 request, 2 reply).
    pub operation: u16,
    /// Sender MAC.
    pub sender_hw_addr: MacAddr,
    /// Sender IPv4.
    pub sender_ip: Ipv4Addr,
    /// Target MAC.
    pub target_hw_addr: MacAddr,
    /// Target IPv4.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parses a view, rejecting anything but Ethernet/IPv4 ARP.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET {
            return Err(Error::new(
                Layer::Arp,
                ErrorKind::Unsupported(p.hardware_type()),
                field::HTYPE.start,
            ));
        }
        if p.protocol_type() != ethertype::IPV4 {
            return Err(Error::new(
                Layer::Arp,
                ErrorKind::Unsupported(p.protocol_type()),
                field::PTYPE.start,
            ));
        }
        if p.hardware_len() != 6 || p.protocol_len() != 4 {
            return Err(Error::new(
                Layer::Arp,
                ErrorKind::Unsupported(get_u16(p.buffer.as_ref(), 4..6)),
                field::HLEN,
            ));
        }
        Ok(Repr {
            operation: p.operation(),
            sender_hw_addr: p.sender_hw_addr(),
            sender_ip: p.sender_ip(),
            target_hw_addr: p.target_hw_addr(),
            target_ip: p.target_ip(),
        })
    }

    /// Writes the 28-byte packet into the front of `buf`, returning 28.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.len() < PACKET_LEN {
            return Err(Error::no_room(PACKET_LEN, buf.len()));
        }
        let mut p = Packet::new_unchecked(&mut buf[..PACKET_LEN]);
        p.set_hardware_type(HTYPE_ETHERNET);
        p.set_protocol_type(ethertype::IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(self.operation);
        p.set_sender_hw_addr(self.sender_hw_addr);
        p.set_sender_ip(self.sender_ip);
        p.set_target_hw_addr(self.target_hw_addr);
        p.set_target_ip(self.target_ip);
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // eth/ipv4, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 100, // target
    ];

    #[test]
    fn parse_request() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert!(p.is_ethernet_ipv4());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.operation, OP_REQUEST);
        assert_eq!(r.sender_hw_addr, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(r.sender_ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.target_ip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(r.target_hw_addr, MacAddr::ZERO);
    }

    #[test]
    fn emit_round_trip() {
        let r = Repr::parse(&Packet::new_unchecked(&REQUEST[..])).unwrap();
        let mut b = [0xa5u8; 30];
        assert_eq!(r.emit(&mut b).unwrap(), 28);
        assert_eq!(&b[..28], &REQUEST);
        assert_eq!(&b[28..], &[0xa5, 0xa5]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::truncated(Layer::Arp, 28, 27)
        );
        let mut b = REQUEST;
        b[3] = 0xdd; // IPv6-ish protocol type
        let e = Repr::parse(&Packet::new_unchecked(&b[..])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported(0x08dd));
        assert_eq!(e.offset, 2);
        let mut b = REQUEST;
        b[4] = 8;
        assert!(Repr::parse(&Packet::new_unchecked(&b[..])).is_err());
    }
}
