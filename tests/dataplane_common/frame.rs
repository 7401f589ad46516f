//! Frames built from named fields, independently of vipmux's own packet code: headers are written
//! by etherparse, so an input or an expected output never depends on the code under test.
//!
//! ```ignore
//! let syn = Frame::tcp().from(CLIENT, 40000).to(VIP_NAT, 80).flags(SYN).seq(1000);
//! let want = syn.clone().eth(PORT_MAC, mac_of(VM1)).to(VM1, 8080).ttl(63);
//! ```

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, TcpHeader, UdpHeader};
use std::net::Ipv4Addr;
use vipmux::wire::MacAddr;

use super::{GW_MAC, PORT_MAC};

/// TCP flag bits as they sit in byte 13 of the TCP header (RFC 9293).
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is significant.
    pub const ACK: u8 = 0x10;
}

/// IPv4 identification of every input frame the builder makes (outputs copy it).
pub const INPUT_IDENT: u16 = 0x1234;
/// TCP window of every input frame the builder makes.
pub const INPUT_WINDOW: u16 = 8192;
/// TTL of an input frame as it arrives at the MUX.
pub const INPUT_TTL: u8 = 64;

/// The transport header of a [`Frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP with its sequence space, flag bits (see [`flags`]) and window.
    Tcp {
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
    },
    /// UDP (checksum always computed).
    Udp,
}

/// How a [`Tunnel`] carries the inner IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    /// IP-in-IP: outer protocol 4, the inner packet right behind.
    Ipip,
    /// UDP (checksum 0) + a 4-byte GUE version 0 header carrying protocol 4.
    Gue { sport: u16, dport: u16 },
}

/// The outer IPv4 header (and UDP/GUE) in front of a tunnelled packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ident: u16,
    pub df: bool,
    pub encapsulation: Encapsulation,
}

impl Tunnel {
    /// An IP-in-IP outer header from `src` to `dst` (TTL 64, ident 0, DF clear until set).
    pub fn ipip(src: Ipv4Addr, dst: Ipv4Addr) -> Tunnel {
        Tunnel {
            src,
            dst,
            ttl: 64,
            ident: 0,
            df: false,
            encapsulation: Encapsulation::Ipip,
        }
    }

    /// A GUE outer header from `src` to `dst`, UDP ports `sport` → `dport`.
    pub fn gue(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Tunnel {
        Tunnel {
            encapsulation: Encapsulation::Gue { sport, dport },
            ..Tunnel::ipip(src, dst)
        }
    }

    /// The outer TTL.
    pub fn ttl(mut self, ttl: u8) -> Tunnel {
        self.ttl = ttl;
        self
    }

    /// The outer identification.
    pub fn ident(mut self, ident: u16) -> Tunnel {
        self.ident = ident;
        self
    }

    /// The outer DF bit.
    pub fn df(mut self, df: bool) -> Tunnel {
        self.df = df;
        self
    }
}

/// An Ethernet + IPv4 + TCP/UDP frame (optionally tunnelled), every field named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub tunnel: Option<Tunnel>,
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub ttl: u8,
    pub ident: u16,
    pub df: bool,
    pub transport: Transport,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A TCP frame as the gateway hands it to the MUX port: gateway MAC → port MAC, TTL 64,
    /// identification 0x1234, DF, window 8192, no flags, seq and ack 0, addresses unspecified.
    pub fn tcp() -> Frame {
        Frame {
            eth_src: GW_MAC,
            eth_dst: PORT_MAC,
            tunnel: None,
            src: Ipv4Addr::UNSPECIFIED,
            sport: 0,
            dst: Ipv4Addr::UNSPECIFIED,
            dport: 0,
            ttl: INPUT_TTL,
            ident: INPUT_IDENT,
            df: true,
            transport: Transport::Tcp {
                seq: 0,
                ack: 0,
                flags: 0,
                window: INPUT_WINDOW,
            },
            payload: Vec::new(),
        }
    }

    /// A UDP frame with the same defaults as [`Frame::tcp`].
    pub fn udp() -> Frame {
        Frame {
            transport: Transport::Udp,
            ..Frame::tcp()
        }
    }

    /// The IPv4 source and transport source port.
    pub fn from(mut self, ip: Ipv4Addr, port: u16) -> Frame {
        self.src = ip;
        self.sport = port;
        self
    }

    /// The IPv4 destination and transport destination port.
    pub fn to(mut self, ip: Ipv4Addr, port: u16) -> Frame {
        self.dst = ip;
        self.dport = port;
        self
    }

    /// The Ethernet source and destination.
    pub fn eth(mut self, src: MacAddr, dst: MacAddr) -> Frame {
        self.eth_src = src;
        self.eth_dst = dst;
        self
    }

    /// The (inner) IPv4 TTL.
    pub fn ttl(mut self, ttl: u8) -> Frame {
        self.ttl = ttl;
        self
    }

    /// The (inner) IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Frame {
        self.ident = ident;
        self
    }

    /// The TCP flag bits (see [`flags`]).
    pub fn flags(mut self, bits: u8) -> Frame {
        if let Transport::Tcp { flags, .. } = &mut self.transport {
            *flags = bits;
        }
        self
    }

    /// The TCP sequence number.
    pub fn seq(mut self, n: u32) -> Frame {
        if let Transport::Tcp { seq, .. } = &mut self.transport {
            *seq = n;
        }
        self
    }

    /// The TCP acknowledgment number.
    pub fn ack(mut self, n: u32) -> Frame {
        if let Transport::Tcp { ack, .. } = &mut self.transport {
            *ack = n;
        }
        self
    }

    /// The TCP window.
    pub fn window(mut self, w: u16) -> Frame {
        if let Transport::Tcp { window, .. } = &mut self.transport {
            *window = w;
        }
        self
    }

    /// The transport payload.
    pub fn payload(mut self, data: &[u8]) -> Frame {
        self.payload = data.to_vec();
        self
    }

    /// Carried inside `tunnel`.
    pub fn tunnelled(mut self, tunnel: Tunnel) -> Frame {
        self.tunnel = Some(tunnel);
        self
    }

    /// The (inner) IPv4 header, its checksum left for etherparse to compute on write.
    pub fn ipv4_header(&self) -> Ipv4Header {
        let (proto, l4_len) = match self.transport {
            Transport::Tcp { .. } => (IpNumber::TCP, 20),
            Transport::Udp => (IpNumber::UDP, 8),
        };
        ipv4_header(
            self.src,
            self.dst,
            proto,
            l4_len + self.payload.len(),
            (self.ttl, self.ident, self.df),
        )
    }

    /// The (inner) IPv4 packet: IPv4 + TCP/UDP + payload, every checksum computed.
    pub fn ip_packet(&self) -> Vec<u8> {
        let ip = self.ipv4_header();
        let mut v = Vec::new();
        ip.write(&mut v).unwrap();
        match self.transport {
            Transport::Tcp {
                seq,
                ack,
                flags: bits,
                window,
            } => {
                let mut t = TcpHeader::new(self.sport, self.dport, seq, window);
                t.acknowledgment_number = ack;
                t.fin = bits & flags::FIN != 0;
                t.syn = bits & flags::SYN != 0;
                t.rst = bits & flags::RST != 0;
                t.psh = bits & flags::PSH != 0;
                t.ack = bits & flags::ACK != 0;
                t.checksum = t.calc_checksum_ipv4(&ip, &self.payload).unwrap();
                t.write(&mut v).unwrap();
            }
            Transport::Udp => {
                UdpHeader::with_ipv4_checksum(self.sport, self.dport, &ip, &self.payload)
                    .unwrap()
                    .write(&mut v)
                    .unwrap();
            }
        }
        v.extend_from_slice(&self.payload);
        v
    }

    /// The whole frame: Ethernet, the tunnel headers if any, then the IPv4 packet.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        Ethernet2Header {
            source: self.eth_src.0,
            destination: self.eth_dst.0,
            ether_type: EtherType::IPV4,
        }
        .write(&mut v)
        .unwrap();
        let inner = self.ip_packet();
        if let Some(t) = &self.tunnel {
            v.extend_from_slice(&tunnel_headers(t, inner.len()));
        }
        v.extend_from_slice(&inner);
        v
    }
}

/// Length of the GUE header the tunnel writes (version 0, no extension fields).
pub const GUE_HEADER_LEN: usize = 4;

/// IPv4 protocol number of an IPv4 packet carried inside another (IP-in-IP).
pub const PROTO_IPIP: u8 = 4;

fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpNumber,
    payload_len: usize,
    (ttl, ident, df): (u8, u16, bool),
) -> Ipv4Header {
    let mut h = Ipv4Header::new(
        u16::try_from(payload_len).unwrap(),
        ttl,
        proto,
        src.octets(),
        dst.octets(),
    )
    .unwrap();
    h.identification = ident;
    h.dont_fragment = df;
    h
}

/// The outer IPv4 (and UDP + GUE) headers in front of an inner packet of `inner_len` bytes.
fn tunnel_headers(t: &Tunnel, inner_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let fields = (t.ttl, t.ident, t.df);
    match t.encapsulation {
        Encapsulation::Ipip => {
            ipv4_header(t.src, t.dst, IpNumber::IPV4, inner_len, fields)
                .write(&mut v)
                .unwrap();
        }
        Encapsulation::Gue { sport, dport } => {
            let udp_len = 8 + GUE_HEADER_LEN + inner_len;
            ipv4_header(t.src, t.dst, IpNumber::UDP, udp_len, fields)
                .write(&mut v)
                .unwrap();
            UdpHeader {
                source_port: sport,
                destination_port: dport,
                length: u16::try_from(udp_len).unwrap(),
                checksum: 0,
            }
            .write(&mut v)
            .unwrap();
            // GUE: version 0, C 0, hlen 0 | protocol | flags 0.
            v.extend_from_slice(&[0, PROTO_IPIP, 0, 0]);
        }
    }
    v
}
