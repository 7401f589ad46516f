//! In-place NAT66 of one endpoint of an IPv6 packet (address and, for TCP/UDP, port) with
//! incremental checksum updates: the IPv6 counterpart of [`super::nat`]. IPv6 has no header
//! checksum, but the pseudo-header makes the TCP, UDP and ICMPv6 checksums cover the addresses.

use std::net::Ipv6Addr;

use super::nat::Endpoint;
use crate::wire::ipv6::{self, next_header};
use crate::wire::{icmpv6, tcp, udp};
use crate::wire::{Error, ErrorKind, Layer, Result};

/// Checks the upper layer at `at` of `ip` before anything changes; a UDP checksum of 0 (invalid
/// over IPv6) is refused.
fn check_upper(ip: &[u8], protocol: u8, at: usize) -> Result<()> {
    let l4 = &ip[at..];
    match protocol {
        next_header::TCP => tcp::Packet::new_checked(l4).map(|_| ()),
        next_header::UDP => match udp::Packet::new_checked(l4) {
            Ok(u) if u.checksum() == 0 => Err(Error::new(
                Layer::Udp,
                ErrorKind::BadChecksum,
                udp::field::CHECKSUM.start,
            )),
            r => r.map(|_| ()),
        },
        next_header::ICMPV6 => icmpv6::Packet::new_checked(l4).map(|_| ()),
        _ => Ok(()),
    }
    .map_err(|e| e.shifted(at))
}

/// Rewrites the source or destination address (and, for TCP/UDP, port) of the IPv6 packet at the
/// front of `ip`, updating the TCP, UDP or ICMPv6 checksum incrementally after the extension-header
/// walk. Other upper layers get the address change only. Refused, with the packet untouched:
/// fragments (their upper-layer header is absent or partial), a failed walk, a truncated upper
/// layer, and UDP with a zero checksum.
pub fn rewrite_endpoint_v6(
    ip: &mut [u8],
    which: Endpoint,
    addr: Ipv6Addr,
    port: Option<u16>,
) -> Result<()> {
    let p = ipv6::Packet::new_checked(&*ip)?;
    let u = p.upper_layer()?;
    if let Some(f) = u.fragment {
        let kind = ErrorKind::Unsupported(next_header::FRAGMENT as u16);
        return Err(Error::new(Layer::Ipv6, kind, f.header_offset));
    }
    let end = p.total_len();
    check_upper(&ip[..end], u.protocol, u.offset)?;
    let mut p = ipv6::Packet::new_unchecked(&mut ip[..end]);
    let old = match which {
        Endpoint::Src => p.src_addr(),
        Endpoint::Dst => p.dst_addr(),
    };
    match which {
        Endpoint::Src => p.set_src_addr(addr),
        Endpoint::Dst => p.set_dst_addr(addr),
    }
    let l4 = &mut ip[u.offset..end];
    match u.protocol {
        next_header::TCP => {
            let mut t = tcp::Packet::new_unchecked(l4);
            t.update_checksum_for_addr_v6(old, addr);
            match (which, port) {
                (Endpoint::Src, Some(n)) => t.rewrite_src_port(n),
                (Endpoint::Dst, Some(n)) => t.rewrite_dst_port(n),
                _ => 0,
            };
        }
        next_header::UDP => {
            let mut d = udp::Packet::new_unchecked(l4);
            d.update_checksum_for_addr_v6(old, addr);
            match (which, port) {
                (Endpoint::Src, Some(n)) => d.rewrite_src_port(n),
                (Endpoint::Dst, Some(n)) => d.rewrite_dst_port(n),
                _ => 0,
            };
        }
        next_header::ICMPV6 => {
            icmpv6::Packet::new_unchecked(l4).update_checksum_for_addr_v6(old, addr)
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden6::{self, bytes, CLIENT, SERVER};

    const MEMBER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 0x42);

    /// The TCP, UDP and ICMPv6 checksums of `ip` verify for its addresses.
    fn upper_checksum_ok(ip: &[u8]) -> bool {
        let p = ipv6::Packet::new_checked(ip).unwrap();
        let (s, d) = (p.src_addr(), p.dst_addr());
        let (u, l4) = p.upper_layer_payload().unwrap();
        match u.protocol {
            next_header::TCP => tcp::Packet::new_checked(l4)
                .unwrap()
                .verify_checksum_v6(s, d),
            next_header::UDP => udp::Packet::new_checked(l4)
                .unwrap()
                .verify_checksum_v6(s, d),
            next_header::ICMPV6 => icmpv6::Packet::new_checked(l4)
                .unwrap()
                .verify_checksum(s, d),
            _ => unreachable!(),
        }
    }

    #[test]
    fn nat66_keeps_every_checksum_valid() {
        let echo = bytes(golden6::ECHO_REQUEST)[14..].to_vec();
        for g in [
            bytes(golden6::TCP_SYN),
            bytes(golden6::UDP_EXT),
            bytes(golden6::UDP),
            echo,
        ] {
            let mut b = g.clone();
            rewrite_endpoint_v6(&mut b, Endpoint::Dst, MEMBER, Some(8080)).unwrap();
            let p = ipv6::Packet::new_checked(&b[..]).unwrap();
            assert_eq!((p.src_addr(), p.dst_addr()), (CLIENT, MEMBER));
            assert!(upper_checksum_ok(&b));
            rewrite_endpoint_v6(&mut b, Endpoint::Src, SERVER, Some(443)).unwrap();
            assert!(upper_checksum_ok(&b));
            let p = ipv6::Packet::new_checked(&b[..]).unwrap();
            let (u, l4) = p.upper_layer_payload().unwrap();
            if u.protocol != next_header::ICMPV6 {
                assert_eq!(&l4[..4], &[1, 187, 0x1f, 0x90]);
            }
        }
    }

    #[test]
    fn refused_packets_are_left_untouched() {
        let frag = bytes(golden6::FRAGMENT);
        let mut b = frag.clone();
        let e = rewrite_endpoint_v6(&mut b, Endpoint::Dst, MEMBER, None).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Unsupported(44), 40));
        assert_eq!(b, frag);
        let mut zero = bytes(golden6::UDP);
        zero[46..48].copy_from_slice(&[0, 0]);
        let before = zero.clone();
        let e = rewrite_endpoint_v6(&mut zero, Endpoint::Dst, MEMBER, None).unwrap_err();
        assert_eq!(
            (e.layer, e.kind, e.offset),
            (Layer::Udp, ErrorKind::BadChecksum, 46)
        );
        assert_eq!(zero, before);
        let mut short = bytes(golden6::TCP_SYN);
        short.truncate(50);
        short[5] = 10;
        let e = rewrite_endpoint_v6(&mut short, Endpoint::Src, MEMBER, Some(1)).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Tcp, 50));
    }
}
