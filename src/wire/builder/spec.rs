//! [`FrameSpec`]: whole Ethernet (+VLAN) / IPv4 / TCP|UDP|ICMP-echo frames with correct
//! checksums, for tests and the traffic generator (never for received input).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{room, L2Spec, DEFAULT_TTL};
use crate::wire::ethernet::{ethertype, MacAddr};
use crate::wire::icmp::{self, msg_type};
use crate::wire::ipv4::{self, protocol};
use crate::wire::tcp::{self, Flags};
use crate::wire::{udp, Result};

/// The transport part of a [`FrameSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Spec {
    /// A TCP segment without options.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flags.
        flags: Flags,
        /// Window.
        window: u16,
    },
    /// A UDP datagram with checksum.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// An ICMP echo request or reply.
    IcmpEcho {
        /// Request (type 8) or reply (type 0).
        request: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
}

impl L4Spec {
    /// IP protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        match self {
            L4Spec::Tcp { .. } => protocol::TCP,
            L4Spec::Udp { .. } => protocol::UDP,
            L4Spec::IcmpEcho { .. } => protocol::ICMP,
        }
    }
    /// Header length.
    #[inline]
    pub fn header_len(&self) -> usize {
        match self {
            L4Spec::Tcp { .. } => tcp::HEADER_LEN,
            L4Spec::Udp { .. } => udp::HEADER_LEN,
            L4Spec::IcmpEcho { .. } => icmp::HEADER_LEN,
        }
    }
}

/// A whole Ethernet (+VLAN) / IPv4 / TCP|UDP|ICMP-echo frame to build, with correct checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec<'a> {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// 802.1Q TCI, if tagged.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// TTL.
    pub ttl: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// DF flag.
    pub dont_frag: bool,
    /// Transport header.
    pub proto: L4Spec,
    /// Transport payload.
    pub payload: &'a [u8],
}

impl<'a> FrameSpec<'a> {
    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    /// A TCP frame with test MACs 02:..:01 -> 02:..:02, TTL 64, DF, seq 1, ack 0, window 65535.
    pub fn tcp(src: SocketAddrV4, dst: SocketAddrV4, flags: Flags) -> Self {
        FrameSpec {
            src_mac: Self::MAC_A,
            dst_mac: Self::MAC_B,
            vlan: None,
            src_ip: *src.ip(),
            dst_ip: *dst.ip(),
            ttl: DEFAULT_TTL,
            ident: 0,
            dont_frag: true,
            proto: L4Spec::Tcp {
                sport: src.port(),
                dport: dst.port(),
                seq: 1,
                ack: 0,
                flags,
                window: 0xffff,
            },
            payload: &[],
        }
    }

    /// A UDP frame with the same defaults as [`FrameSpec::tcp`].
    pub fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &'a [u8]) -> Self {
        FrameSpec {
            proto: L4Spec::Udp {
                sport: src.port(),
                dport: dst.port(),
            },
            payload,
            ..Self::tcp(src, dst, Flags::NONE)
        }
    }

    /// An ICMP echo request with the same defaults as [`FrameSpec::tcp`].
    pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq_no: u16) -> Self {
        FrameSpec {
            proto: L4Spec::IcmpEcho {
                request: true,
                ident,
                seq_no,
            },
            ..Self::tcp(
                SocketAddrV4::new(src, 0),
                SocketAddrV4::new(dst, 0),
                Flags::NONE,
            )
        }
    }

    /// Offset of the IPv4 header in the built frame.
    #[inline]
    pub fn l3_offset(&self) -> usize {
        L2Spec {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan: self.vlan,
        }
        .header_len()
    }

    /// Offset of the transport header in the built frame.
    #[inline]
    pub fn l4_offset(&self) -> usize {
        self.l3_offset() + ipv4::HEADER_LEN
    }

    /// Length of the built frame (no padding to 60 bytes is added).
    #[inline]
    pub fn len(&self) -> usize {
        self.l4_offset() + self.proto.header_len() + self.payload.len()
    }

    /// Always false: a frame has at least its headers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame into the front of `out`; returns its length or a `NoRoom` error.
    pub fn try_build(&self, out: &mut [u8]) -> Result<usize> {
        let n = self.len();
        room(out, n)?;
        let out = &mut out[..n];
        let l2 = L2Spec {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan: self.vlan,
        };
        let l3 = l2.emit(out, ethertype::IPV4)?;
        let l4_len = n - l3 - ipv4::HEADER_LEN;
        ipv4::Repr {
            src_addr: self.src_ip,
            dst_addr: self.dst_ip,
            protocol: self.proto.protocol(),
            ttl: self.ttl,
            tos: 0,
            ident: self.ident,
            dont_frag: self.dont_frag,
            payload_len: l4_len,
        }
        .emit(&mut out[l3..])?;
        let seg = &mut out[l3 + ipv4::HEADER_LEN..];
        match self.proto {
            L4Spec::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
            } => {
                tcp::Repr {
                    src_port: sport,
                    dst_port: dport,
                    seq_number: seq,
                    ack_number: ack,
                    flags,
                    window,
                }
                .emit(seg, self.src_ip, self.dst_ip, self.payload)?;
            }
            L4Spec::Udp { sport, dport } => {
                udp::Repr {
                    src_port: sport,
                    dst_port: dport,
                }
                .emit(seg, self.src_ip, self.dst_ip, self.payload)?;
            }
            L4Spec::IcmpEcho {
                request,
                ident,
                seq_no,
            } => {
                let mut p = icmp::Packet::new_unchecked(seg);
                p.set_msg_type(if request {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                });
                p.set_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(self.payload);
                p.fill_checksum();
            }
        }
        Ok(n)
    }

    /// Writes the frame into `out`; panics if `out` is shorter than [`FrameSpec::len`]
    /// (a convenience for tests and the generator, never for received input).
    pub fn build(&self, out: &mut [u8]) -> usize {
        match self.try_build(out) {
            Ok(n) => n,
            Err(e) => panic!("FrameSpec::build: {e}"),
        }
    }

    /// The frame as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.build(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{etherparse_check, A, B, MAC1, MAC2};
    use super::*;
    use crate::wire::ethernet;
    use etherparse::TransportSlice;

    #[test]
    fn frame_spec_tcp_fixture() {
        let mut spec = FrameSpec::tcp(
            SocketAddrV4::new(A, 40000),
            SocketAddrV4::new(B, 80),
            Flags::SYN,
        );
        spec.ident = 0x0102;
        spec.src_mac = MAC1;
        spec.dst_mac = MAC2;
        let mut out = [0xa5u8; 64];
        let n = spec.build(&mut out);
        assert_eq!(n, 54);
        assert_eq!(&out[54..], &[0xa5; 10]);
        #[rustfmt::skip]
        let expect_prefix: [u8; 38] = [
            0x02, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x28, 0x01, 0x02, 0x40, 0x00, 0x40, 0x06, 0, 0, // checksum below
            10, 1, 0, 1, 10, 2, 0, 2,
            0x9c, 0x40, 0x00, 0x50,
        ];
        let mut x = out;
        x[24] = 0;
        x[25] = 0;
        assert_eq!(&x[..38], &expect_prefix);
        assert_eq!(
            &out[38..50],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff]
        );
        let s = etherparse_check(&out[..n]);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.syn() && !t.ack());
        assert_eq!((t.source_port(), t.destination_port()), (40000, 80));
    }

    #[test]
    fn frame_spec_variants_cross_check() {
        let payload = b"hello, world";
        let specs = [
            FrameSpec {
                vlan: Some(0x0064),
                payload,
                ..FrameSpec::tcp(
                    SocketAddrV4::new(A, 1),
                    SocketAddrV4::new(B, 2),
                    Flags::PSH | Flags::ACK,
                )
            },
            FrameSpec::udp(
                SocketAddrV4::new(A, 5353),
                SocketAddrV4::new(B, 53),
                payload,
            ),
            FrameSpec {
                vlan: Some(7),
                ..FrameSpec::udp(SocketAddrV4::new(A, 5353), SocketAddrV4::new(B, 53), &[])
            },
            FrameSpec {
                payload,
                ..FrameSpec::echo_request(A, B, 9, 10)
            },
        ];
        for spec in specs {
            let v = spec.to_vec();
            assert_eq!(v.len(), spec.len());
            let s = etherparse_check(&v);
            let vlan_id = match &s.vlan {
                Some(etherparse::VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
                _ => None,
            };
            assert_eq!(vlan_id, spec.vlan);
            // Our own parser agrees.
            let f = ethernet::Frame::new_checked(&v[..]).unwrap();
            let l3 = f.l3().unwrap();
            assert_eq!(l3.offset, spec.l3_offset());
            let ip = ipv4::Packet::new_checked(&v[l3.offset..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.protocol(), spec.proto.protocol());
            match spec.proto {
                L4Spec::Tcp { .. } => {
                    let t = tcp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(t.verify_checksum(A, B));
                    assert_eq!(t.payload(), spec.payload);
                }
                L4Spec::Udp { .. } => {
                    let u = udp::Packet::new_checked(ip.payload()).unwrap();
                    assert_ne!(u.checksum(), 0);
                    assert!(u.verify_checksum(A, B));
                    assert_eq!(u.payload(), spec.payload);
                }
                L4Spec::IcmpEcho { .. } => {
                    let i = icmp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(i.verify_checksum() && i.is_echo_request());
                    assert_eq!(i.data(), spec.payload);
                }
            }
        }
        let spec = FrameSpec::udp(SocketAddrV4::new(A, 1), SocketAddrV4::new(B, 2), payload);
        assert!(spec.try_build(&mut [0u8; 20]).is_err());
        assert!(!spec.is_empty());
    }
}
