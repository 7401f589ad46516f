//! ICMPv4 messages (RFC 792, RFC 1191): echo, destination unreachable (with the next-hop MTU of
//! "fragmentation needed"), time exceeded, and access to the IPv4 header quoted in error messages.
//!
//! A view must wrap exactly the ICMP message (the IPv4 payload): the checksum covers the whole buffer.

use super::checksum;
use super::ipv4::{self, protocol};
use super::{get_u16, get_u32, set_u16, set_u32, Error, Layer, Result};
use std::net::Ipv4Addr;

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Rest of header (4 bytes, meaning depends on type).
    pub const REST: Field = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
    /// Next-hop MTU of "fragmentation needed" (type 3 code 4).
    pub const NEXT_HOP_MTU: Field = 6..8;
    /// Start of the data (echo payload, or the quoted IPv4 header of an error).
    pub const DATA: usize = 8;
}

/// Header length (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// Message types.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Codes of destination unreachable.
pub mod unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (carries the next-hop MTU).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of time exceeded.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// The flow an ICMP error refers to, read from its quoted IPv4 header and first L4 bytes.
///
/// The addresses and ports are those of the *original* packet (sent by the receiver of the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerFlow {
    /// Quoted source address.
    pub src_addr: Ipv4Addr,
    /// Quoted destination address.
    pub dst_addr: Ipv4Addr,
    /// Quoted protocol.
    pub protocol: u8,
    /// Quoted (source, destination) ports for TCP/UDP, or (identifier, identifier) for an ICMP
    /// echo; `None` if the quote is too short or another protocol.
    pub ports: Option<(u16, u16)>,
    /// Offset of the quoted IPv4 header within the ICMP message (always 8).
    pub ip_offset: usize,
    /// Offset of the quoted L4 header within the ICMP message.
    pub l4_offset: usize,
}

/// A view of an ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    icmp_shared_getters!();

    /// Checks that the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Error::truncated(Layer::Icmp, HEADER_LEN, len))
        } else {
            Ok(())
        }
    }

    /// Next-hop MTU (meaningful for destination unreachable / fragmentation needed).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }
    /// True for error messages that quote an IPv4 header (types 3, 4, 5, 11, 12).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            msg_type::DEST_UNREACHABLE
                | msg_type::SOURCE_QUENCH
                | msg_type::REDIRECT
                | msg_type::TIME_EXCEEDED
                | msg_type::PARAM_PROBLEM
        )
    }
    /// True when the checksum over the whole message is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
    /// The quoted IPv4 header of an error message (header-checked only; its payload is clamped).
    #[inline]
    pub fn inner_ipv4(&self) -> Result<ipv4::Packet<&[u8]>> {
        ipv4::Packet::new_checked_header(self.data()).map_err(|e| Error {
            layer: Layer::Icmp,
            ..e.shifted(field::DATA)
        })
    }
    /// The flow the error refers to: quoted addresses, protocol and ports.
    #[inline]
    pub fn inner_flow(&self) -> Result<InnerFlow> {
        let ip = self.inner_ipv4()?;
        let hl = ip.header_len();
        let l4 = &self.data()[hl..];
        let proto = ip.protocol();
        let ports = match proto {
            protocol::TCP | protocol::UDP if l4.len() >= 4 => {
                Some((get_u16(l4, 0..2), get_u16(l4, 2..4)))
            }
            protocol::ICMP if l4.len() >= 6 => {
                let id = get_u16(l4, 4..6);
                Some((id, id))
            }
            _ => None,
        };
        Ok(InnerFlow {
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            protocol: proto,
            ports,
            ip_offset: field::DATA,
            l4_offset: field::DATA + hl,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    icmp_shared_setters!();

    /// Sets next-hop MTU (bytes 4..6 are left as they are; zero them for a fresh message).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, v)
    }
    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 0x1234 seq 1 with 4 data bytes; checksum computed by hand:
    // 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0x1_0f9b? -> folded, complemented below.
    fn echo() -> [u8; 12] {
        let mut b = [8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];
        let s: u32 = 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364;
        let s = (s & 0xffff) + (s >> 16);
        b[2..4].copy_from_slice(&(!(s as u16)).to_be_bytes());
        b
    }

    #[test]
    fn echo_fields() {
        let b = echo();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_echo_request());
        assert!(!p.is_error());
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum());
        let c = p.checksum();
        let mut q = b;
        let mut p = Packet::new_unchecked(&mut q[..]);
        p.fill_checksum();
        assert_eq!(p.checksum(), c);
        p.rewrite_type_code(msg_type::ECHO_REPLY, 0);
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), 0);
    }

    #[test]
    fn frag_needed_inner_flow() {
        let mut b = [0xa5u8; 8 + 20 + 8];
        // Quoted IPv4/UDP header: 10.0.0.1:5000 -> 10.0.0.2:53.
        let ip = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: protocol::UDP,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
            payload_len: 1500,
        };
        ip.emit(&mut b[8..]).unwrap();
        b[28..32].copy_from_slice(&[0x13, 0x88, 0x00, 0x35]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(msg_type::DEST_UNREACHABLE);
        p.set_code(unreachable::FRAG_NEEDED);
        p.set_rest_of_header(0);
        p.set_next_hop_mtu(1400);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(&b[4..8], &[0, 0, 0x05, 0x78]);
        let f = p.inner_flow().unwrap();
        assert_eq!(f.src_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(f.dst_addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(f.protocol, protocol::UDP);
        assert_eq!(f.ports, Some((5000, 53)));
        assert_eq!(f.l4_offset, 28);
        assert_eq!(p.inner_ipv4().unwrap().total_len(), 1520);
        // A quote cut inside the IPv4 header is an ICMP-layer error with an offset in the message.
        let e = Packet::new_checked(&b[..20])
            .unwrap()
            .inner_flow()
            .unwrap_err();
        assert_eq!(e.layer, Layer::Icmp);
        assert_eq!(e.offset, 20);
        // A quote with too few L4 bytes has no ports.
        let f = Packet::new_checked(&b[..30]).unwrap().inner_flow().unwrap();
        assert_eq!(f.ports, None);
    }

    #[test]
    fn too_short() {
        assert_eq!(
            Packet::new_checked(&[0u8; 7][..]).unwrap_err(),
            Error::truncated(Layer::Icmp, 8, 7)
        );
    }
}
