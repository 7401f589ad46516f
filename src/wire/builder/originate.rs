//! Frames the appliance originates itself (the slow path's answers): TCP RST, ICMP echo reply
//! (in place), ICMP errors quoting the offending packet, ARP request and reply (in place).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::spec::{FrameSpec, L4Spec};
use super::{room, L2Spec, DEFAULT_TTL};
use crate::wire::arp;
use crate::wire::ethernet::{self, ethertype, MacAddr};
use crate::wire::icmp::{self, msg_type};
use crate::wire::ipv4::{self, protocol};
use crate::wire::tcp::Flags;
use crate::wire::{Error, ErrorKind, Layer, Result};

/// Builds a TCP RST (with ACK and `ack` if given) from `src` to `dst`, TTL 64, window 0.
pub fn tcp_rst(
    out: &mut [u8],
    l2: &L2Spec,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: Option<u32>,
) -> Result<usize> {
    let mut spec = FrameSpec::tcp(
        src,
        dst,
        if ack.is_some() {
            Flags::RST | Flags::ACK
        } else {
            Flags::RST
        },
    );
    spec.src_mac = l2.src_mac;
    spec.dst_mac = l2.dst_mac;
    spec.vlan = l2.vlan;
    spec.proto = L4Spec::Tcp {
        sport: src.port(),
        dport: dst.port(),
        seq,
        ack: ack.unwrap_or(0),
        flags: if ack.is_some() {
            Flags::RST | Flags::ACK
        } else {
            Flags::RST
        },
        window: 0,
    };
    spec.try_build(out)
}

/// Parses an Ethernet (+VLAN) / IPv4 frame; returns (L3 offset, IPv4 total length).
fn ipv4_in_frame(frame: &[u8]) -> Result<(usize, usize)> {
    let f = ethernet::Frame::new_checked(frame)?;
    let l3 = f.l3()?;
    if l3.ethertype != ethertype::IPV4 {
        return Err(Error::new(
            Layer::Ethernet,
            ErrorKind::Unsupported(l3.ethertype),
            l3.offset - 2,
        ));
    }
    let ip = ipv4::Packet::new_checked(&frame[l3.offset..]).map_err(|e| e.shifted(l3.offset))?;
    Ok((l3.offset, ip.total_len() as usize))
}

/// Turns an Ethernet/IPv4 ICMP echo request into its reply in place: swaps MACs and addresses,
/// sets TTL 64, type 0, and updates both checksums incrementally. Returns the reply length (the
/// frame without trailing padding).
pub fn icmp_echo_reply_in_place(frame: &mut [u8]) -> Result<usize> {
    let (l3, total) = ipv4_in_frame(frame)?;
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..l3 + total]);
    if ip.protocol() != protocol::ICMP {
        return Err(Error::new(
            Layer::Ipv4,
            ErrorKind::Unsupported(ip.protocol() as u16),
            l3 + ipv4::field::PROTOCOL,
        ));
    }
    let hl = ip.header_len();
    {
        let mut icmp =
            icmp::Packet::new_checked(ip.payload_mut()).map_err(|e| e.shifted(l3 + hl))?;
        if !icmp.is_echo_request() {
            return Err(Error::new(
                Layer::Icmp,
                ErrorKind::Unsupported(icmp.msg_type() as u16),
                l3 + hl,
            ));
        }
        icmp.rewrite_type_code(msg_type::ECHO_REPLY, 0);
    }
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(d); // swapping two summed words leaves the header checksum unchanged
    ip.set_dst_addr(s);
    ip.rewrite_ttl(DEFAULT_TTL);
    ethernet::Frame::new_unchecked(&mut frame[..]).swap_addrs();
    Ok(l3 + total)
}

/// An ICMP error to originate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable with a code from [`icmp::unreachable`] (port, host, protocol ...).
    DestUnreachable(u8),
    /// Destination unreachable, fragmentation needed and DF set, with the usable next-hop MTU.
    FragNeeded {
        /// Next-hop MTU to report.
        mtu: u16,
    },
    /// Time exceeded with a code from [`icmp::time_exceeded`].
    TimeExceeded(u8),
}

impl IcmpErrorKind {
    /// Port unreachable.
    pub const PORT_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::PORT);
    /// Host unreachable.
    pub const HOST_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::HOST);
    /// Protocol unreachable.
    pub const PROTOCOL_UNREACHABLE: IcmpErrorKind =
        IcmpErrorKind::DestUnreachable(icmp::unreachable::PROTOCOL);
    /// TTL exceeded in transit.
    pub const TTL_EXCEEDED: IcmpErrorKind = IcmpErrorKind::TimeExceeded(icmp::time_exceeded::TTL);

    #[inline]
    fn type_code_rest(self) -> (u8, u8, u32) {
        match self {
            IcmpErrorKind::DestUnreachable(c) => (msg_type::DEST_UNREACHABLE, c, 0),
            IcmpErrorKind::FragNeeded { mtu } => (
                msg_type::DEST_UNREACHABLE,
                icmp::unreachable::FRAG_NEEDED,
                mtu as u32,
            ),
            IcmpErrorKind::TimeExceeded(c) => (msg_type::TIME_EXCEEDED, c, 0),
        }
    }
}

/// Length of the quote an ICMP error carries for `original`: its IPv4 header + 8 bytes, clamped to
/// what is there.
#[inline]
fn quote_len(original: &[u8]) -> Result<usize> {
    let ip = ipv4::Packet::new_checked_header(original)?;
    Ok((ip.header_len() + 8).min(original.len()))
}

/// Builds an Ethernet/IPv4/ICMP error from `src_ip` to the source of `original` (the offending IPv4
/// packet, starting at its header), quoting its IPv4 header + 8 bytes. Whether an error may be sent
/// at all (not for ICMP errors, non-first fragments, broadcasts; rate limits) is the caller's call.
pub fn icmp_error(
    out: &mut [u8],
    l2: &L2Spec,
    src_ip: Ipv4Addr,
    kind: IcmpErrorKind,
    original: &[u8],
) -> Result<usize> {
    let q = quote_len(original)?;
    let dst_ip = ipv4::Packet::new_unchecked(original).src_addr();
    let l3 = l2.header_len();
    let n = l3 + ipv4::HEADER_LEN + icmp::HEADER_LEN + q;
    room(out, n)?;
    let out = &mut out[..n];
    l2.emit(out, ethertype::IPV4)?;
    ipv4::Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        protocol: protocol::ICMP,
        ttl: DEFAULT_TTL,
        tos: 0,
        ident: 0,
        dont_frag: false,
        payload_len: icmp::HEADER_LEN + q,
    }
    .emit(&mut out[l3..])?;
    let (t, c, rest) = kind.type_code_rest();
    let mut p = icmp::Packet::new_unchecked(&mut out[l3 + ipv4::HEADER_LEN..]);
    p.set_msg_type(t);
    p.set_code(c);
    p.set_rest_of_header(rest);
    p.data_mut().copy_from_slice(&original[..q]);
    p.fill_checksum();
    Ok(n)
}

/// Turns an Ethernet (+VLAN) ARP request into the reply from `our_mac` in place (the requested
/// address is answered as ours; checking that it is ours is the caller's job). Returns the reply
/// length: the ARP end, padded with zeros to 60 bytes when the buffer allows.
pub fn arp_reply_in_place(frame: &mut [u8], our_mac: MacAddr) -> Result<usize> {
    let f = ethernet::Frame::new_checked(&frame[..])?;
    let l3 = f.l3()?;
    if l3.ethertype != ethertype::ARP {
        return Err(Error::new(
            Layer::Ethernet,
            ErrorKind::Unsupported(l3.ethertype),
            l3.offset - 2,
        ));
    }
    let a = arp::Packet::new_checked(&frame[l3.offset..]).map_err(|e| e.shifted(l3.offset))?;
    let req = arp::Repr::parse(&a).map_err(|e| e.shifted(l3.offset))?;
    if req.operation != arp::OP_REQUEST {
        return Err(Error::new(
            Layer::Arp,
            ErrorKind::Unsupported(req.operation),
            l3.offset + arp::field::OPER.start,
        ));
    }
    arp::Repr {
        operation: arp::OP_REPLY,
        sender_hw_addr: our_mac,
        sender_ip: req.target_ip,
        target_hw_addr: req.sender_hw_addr,
        target_ip: req.sender_ip,
    }
    .emit(&mut frame[l3.offset..])?;
    let mut f = ethernet::Frame::new_unchecked(&mut frame[..]);
    f.set_dst_addr(req.sender_hw_addr);
    f.set_src_addr(our_mac);
    Ok(pad_min(frame, l3.offset + arp::PACKET_LEN))
}

/// Zero-pads `frame[len..60]` if the buffer allows; returns the padded length.
#[inline]
fn pad_min(frame: &mut [u8], len: usize) -> usize {
    let padded = ethernet::MIN_FRAME_LEN.min(frame.len()).max(len);
    frame[len..padded].fill(0);
    padded
}

/// Builds a broadcast ARP request (who has `target_ip`? tell `sender_ip`), padded to 60 bytes.
/// A gratuitous ARP is a request with `target_ip == sender_ip`.
pub fn arp_request(
    out: &mut [u8],
    src_mac: MacAddr,
    vlan: Option<u16>,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<usize> {
    let l2 = L2Spec {
        src_mac,
        dst_mac: MacAddr::BROADCAST,
        vlan,
    };
    let l3 = l2.header_len();
    room(out, l3 + arp::PACKET_LEN)?;
    l2.emit(out, ethertype::ARP)?;
    arp::Repr {
        operation: arp::OP_REQUEST,
        sender_hw_addr: src_mac,
        sender_ip,
        target_hw_addr: MacAddr::ZERO,
        target_ip,
    }
    .emit(&mut out[l3..])?;
    Ok(pad_min(out, l3 + arp::PACKET_LEN))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{etherparse_check, l2, A, B, MAC1, MAC2};
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn rst_cross_check() {
        let mut out = [0xa5u8; 80];
        let n = tcp_rst(
            &mut out,
            &l2(Some(5)),
            SocketAddrV4::new(A, 80),
            SocketAddrV4::new(B, 40000),
            0x11223344,
            Some(0x55667788),
        )
        .unwrap();
        assert_eq!(n, 58);
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.rst() && t.ack() && !t.syn());
        assert_eq!(t.sequence_number(), 0x11223344);
        assert_eq!(t.acknowledgment_number(), 0x55667788);
        assert_eq!(t.window_size(), 0);
        let n = tcp_rst(
            &mut out,
            &l2(None),
            SocketAddrV4::new(A, 80),
            SocketAddrV4::new(B, 40000),
            5,
            None,
        )
        .unwrap();
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.rst() && !t.ack());
        assert_eq!(t.acknowledgment_number(), 0);
        assert!(tcp_rst(
            &mut out[..50],
            &l2(None),
            SocketAddrV4::new(A, 1),
            SocketAddrV4::new(B, 2),
            0,
            None
        )
        .is_err());
    }

    #[test]
    fn echo_reply_in_place() {
        for vlan in [None, Some(42)] {
            let spec = FrameSpec {
                vlan,
                ttl: 9,
                payload: b"ping-data",
                ..FrameSpec::echo_request(A, B, 0x77, 3)
            };
            let mut v = spec.to_vec();
            v.extend_from_slice(&[0, 0, 0]); // link padding
            let n = icmp_echo_reply_in_place(&mut v).unwrap();
            assert_eq!(n, spec.len());
            let s = etherparse_check(&v[..n]);
            let Some(NetSlice::Ipv4(ip)) = &s.net else {
                panic!()
            };
            assert_eq!(ip.header().source_addr(), B);
            assert_eq!(ip.header().destination_addr(), A);
            assert_eq!(ip.header().ttl(), DEFAULT_TTL);
            let f = ethernet::Frame::new_checked(&v[..]).unwrap();
            assert_eq!((f.src_addr(), f.dst_addr()), (spec.dst_mac, spec.src_mac));
            let i = icmp::Packet::new_checked(&v[spec.l4_offset()..n]).unwrap();
            assert_eq!(i.msg_type(), msg_type::ECHO_REPLY);
            assert_eq!((i.echo_ident(), i.echo_seq_no()), (0x77, 3));
            assert_eq!(i.data(), b"ping-data");
            assert!(i.verify_checksum());
            // A reply is not answered again.
            let e = icmp_echo_reply_in_place(&mut v).unwrap_err();
            assert_eq!(e.layer, Layer::Icmp);
        }
        let mut udp =
            FrameSpec::udp(SocketAddrV4::new(A, 1), SocketAddrV4::new(B, 2), &[]).to_vec();
        assert_eq!(
            icmp_echo_reply_in_place(&mut udp).unwrap_err().layer,
            Layer::Ipv4
        );
        assert!(icmp_echo_reply_in_place(&mut udp[..30]).is_err());
    }

    #[test]
    fn icmp_errors_quote_and_cross_check() {
        let payload = [0x42u8; 100];
        let orig = FrameSpec::udp(
            SocketAddrV4::new(A, 5000),
            SocketAddrV4::new(B, 53),
            &payload,
        )
        .to_vec();
        let orig_ip = &orig[14..];
        let kinds = [
            IcmpErrorKind::PORT_UNREACHABLE,
            IcmpErrorKind::HOST_UNREACHABLE,
            IcmpErrorKind::PROTOCOL_UNREACHABLE,
            IcmpErrorKind::FragNeeded { mtu: 1450 },
            IcmpErrorKind::TTL_EXCEEDED,
        ];
        let me = Ipv4Addr::new(192, 0, 2, 9);
        for kind in kinds {
            let mut out = [0xa5u8; 128];
            let n = icmp_error(&mut out, &l2(None), me, kind, orig_ip).unwrap();
            assert_eq!(n, 14 + 20 + 8 + 28);
            assert_eq!(&out[n..], &[0xa5; 128 - 70][..]);
            let s = etherparse_check(&out[..n]);
            let Some(NetSlice::Ipv4(ip)) = &s.net else {
                panic!()
            };
            assert_eq!(ip.header().source_addr(), me);
            assert_eq!(ip.header().destination_addr(), A);
            let i = icmp::Packet::new_checked(&out[34..n]).unwrap();
            assert!(i.verify_checksum());
            let (t, c, rest) = kind.type_code_rest();
            assert_eq!((i.msg_type(), i.code(), i.rest_of_header()), (t, c, rest));
            if let IcmpErrorKind::FragNeeded { mtu } = kind {
                assert_eq!(i.next_hop_mtu(), mtu);
                assert_eq!(&out[38..42], &[0, 0, 0x05, 0xaa]);
            }
            assert_eq!(i.data(), &orig_ip[..28]);
            let fl = i.inner_flow().unwrap();
            assert_eq!(
                (fl.src_addr, fl.dst_addr, fl.ports),
                (A, B, Some((5000, 53)))
            );
        }
        // Short original: quote what is there; garbage original: error.
        let mut out = [0u8; 128];
        let n = icmp_error(
            &mut out,
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            &orig_ip[..22],
        )
        .unwrap();
        assert_eq!(n, 14 + 20 + 8 + 22);
        assert!(icmp_error(
            &mut out,
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            &[0x45; 10]
        )
        .is_err());
        assert!(icmp_error(
            &mut out[..60],
            &l2(None),
            me,
            IcmpErrorKind::TTL_EXCEEDED,
            orig_ip
        )
        .is_err());
    }

    #[test]
    fn arp_request_and_reply() {
        let me = Ipv4Addr::new(10, 0, 0, 1);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        for vlan in [None, Some(3)] {
            let mut out = [0xa5u8; 64];
            let n = arp_request(&mut out, MAC1, vlan, me, vip).unwrap();
            assert_eq!(n, 60);
            assert!(out[l2(vlan).header_len() + 28..60].iter().all(|&b| b == 0));
            let f = ethernet::Frame::new_checked(&out[..n]).unwrap();
            assert!(f.dst_addr().is_broadcast());
            let l3 = f.l3().unwrap();
            assert_eq!(l3.ethertype, ethertype::ARP);
            let req =
                arp::Repr::parse(&arp::Packet::new_checked(&out[l3.offset..n]).unwrap()).unwrap();
            assert_eq!(
                (req.operation, req.sender_ip, req.target_ip),
                (arp::OP_REQUEST, me, vip)
            );
            // The request as seen by vipmux, answered in place.
            let m = arp_reply_in_place(&mut out[..n], MAC2).unwrap();
            assert_eq!(m, 60);
            let f = ethernet::Frame::new_checked(&out[..m]).unwrap();
            assert_eq!((f.src_addr(), f.dst_addr()), (MAC2, MAC1));
            let rep =
                arp::Repr::parse(&arp::Packet::new_checked(&out[l3.offset..m]).unwrap()).unwrap();
            assert_eq!(
                rep,
                arp::Repr {
                    operation: arp::OP_REPLY,
                    sender_hw_addr: MAC2,
                    sender_ip: vip,
                    target_hw_addr: MAC1,
                    target_ip: me,
                }
            );
            // etherparse agrees on the link layer (this version has no ARP parser).
            let s = SlicedPacket::from_ethernet(&out[..m]).unwrap();
            let Some(etherparse::LinkSlice::Ethernet2(e)) = s.link else {
                panic!("etherparse: not Ethernet II")
            };
            assert_eq!(e.source(), MAC2.0);
            assert!(s.net.is_none());
            // A reply is not a request.
            assert!(arp_reply_in_place(&mut out[..m], MAC2).is_err());
        }
        // Unpadded 42-byte request in a 42-byte buffer: reply stays 42.
        let mut out = [0u8; 42];
        arp_request(&mut out, MAC1, None, me, vip).unwrap();
        assert_eq!(arp_reply_in_place(&mut out, MAC2).unwrap(), 42);
    }
}
