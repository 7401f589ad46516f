//! In-place NAT of one endpoint of an IPv4 packet (address and, for TCP/UDP, port) with
//! incremental checksum updates.

use std::net::Ipv4Addr;

use crate::wire::ipv4::{self, protocol};
use crate::wire::{tcp, udp};
use crate::wire::{Error, ErrorKind, Layer, Result};

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

#[cfg(test)]
mod tests {
    use super::super::testing::{etherparse_check, A, B};
    use super::super::FrameSpec;
    use super::*;
    use crate::wire::tcp::Flags;
    use etherparse::{NetSlice, TransportSlice};
    use std::net::SocketAddrV4;

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
}
