//! Reads an output frame back with an independent parser (etherparse, plus the 4-byte GUE header
//! by hand) and compares it with the expected [`Frame`] layer by layer, field by field, each
//! assertion named — then byte for byte.

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, TcpHeader, UdpHeader};
use std::net::Ipv4Addr;
use vipmux::wire::MacAddr;

use super::frame::{flags, Encapsulation, Frame, Transport, Tunnel, GUE_HEADER_LEN, PROTO_IPIP};

/// Asserts `out` is `want`: Ethernet, the tunnel (outer IPv4, UDP, GUE) if any, IPv4, TCP/UDP and
/// payload field by field with every checksum verified, and finally the exact bytes.
pub fn assert_frame(out: &[u8], want: &Frame) {
    let (eth, rest) = Ethernet2Header::from_slice(out).expect("Ethernet header");
    assert_eq!(
        MacAddr(eth.destination),
        want.eth_dst,
        "Ethernet destination"
    );
    assert_eq!(MacAddr(eth.source), want.eth_src, "Ethernet source");
    assert_eq!(eth.ether_type, EtherType::IPV4, "Ethernet type");
    let inner = match &want.tunnel {
        Some(t) => assert_tunnel(rest, t, want.ip_packet().len()),
        None => rest,
    };
    assert_packet(inner, want);
    assert_eq!(out, want.bytes(), "the frame byte for byte");
}

/// The named fields of an IPv4 header one layer expects.
struct Ipv4Want {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ident: u16,
    df: bool,
    protocol: IpNumber,
    payload_len: usize,
}

/// Checks one IPv4 header (`layer` names it in messages); returns it and what follows it.
fn assert_ipv4<'a>(bytes: &'a [u8], want: &Ipv4Want, layer: &str) -> (Ipv4Header, &'a [u8]) {
    assert_eq!(
        bytes.first().map(|b| b >> 4),
        Some(4),
        "{layer} IPv4 version"
    );
    let (h, rest) =
        Ipv4Header::from_slice(bytes).unwrap_or_else(|e| panic!("{layer} IPv4 header: {e}"));
    assert_eq!(h.ihl(), 5, "{layer} IPv4 IHL (no options)");
    assert_eq!(Ipv4Addr::from(h.source), want.src, "{layer} IPv4 source");
    assert_eq!(
        Ipv4Addr::from(h.destination),
        want.dst,
        "{layer} IPv4 destination"
    );
    assert_eq!(h.time_to_live, want.ttl, "{layer} IPv4 TTL");
    assert_eq!(h.protocol, want.protocol, "{layer} IPv4 protocol");
    assert_eq!(h.identification, want.ident, "{layer} IPv4 identification");
    assert_eq!(h.dont_fragment, want.df, "{layer} IPv4 DF");
    assert!(!h.more_fragments, "{layer} IPv4 MF clear");
    assert_eq!(h.fragment_offset.value(), 0, "{layer} IPv4 fragment offset");
    assert_eq!(
        usize::from(h.total_len),
        20 + want.payload_len,
        "{layer} IPv4 total length"
    );
    assert_eq!(
        usize::from(h.total_len),
        bytes.len(),
        "{layer} IPv4 total length covers the rest of the frame"
    );
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "{layer} IPv4 header checksum valid"
    );
    (h, rest)
}

/// Checks the outer headers of `t`; returns the inner packet.
fn assert_tunnel<'a>(bytes: &'a [u8], t: &Tunnel, inner_len: usize) -> &'a [u8] {
    let encap_len = match t.encapsulation {
        Encapsulation::Ipip => 0,
        Encapsulation::Gue { .. } => 8 + GUE_HEADER_LEN,
    };
    let want = Ipv4Want {
        src: t.src,
        dst: t.dst,
        ttl: t.ttl,
        ident: t.ident,
        df: t.df,
        protocol: match t.encapsulation {
            Encapsulation::Ipip => IpNumber::IPV4,
            Encapsulation::Gue { .. } => IpNumber::UDP,
        },
        payload_len: encap_len + inner_len,
    };
    let (_, rest) = assert_ipv4(bytes, &want, "outer");
    let Encapsulation::Gue { sport, dport } = t.encapsulation else {
        return rest;
    };
    assert!(rest.len() >= encap_len, "room for UDP + GUE");
    let (u, rest) = UdpHeader::from_slice(rest).expect("outer UDP header");
    assert_eq!(u.source_port, sport, "outer UDP source port");
    assert_eq!(u.destination_port, dport, "outer UDP destination port");
    assert_eq!(
        usize::from(u.length),
        8 + rest.len(),
        "outer UDP length covers GUE and the inner packet"
    );
    assert_eq!(u.checksum, 0, "outer UDP checksum 0 (none)");
    let gue = &rest[..GUE_HEADER_LEN];
    assert_eq!(gue[0] >> 6, 0, "GUE version");
    assert_eq!(gue[0] & 0x20, 0, "GUE C bit (data message)");
    assert_eq!(gue[0] & 0x1f, 0, "GUE hlen (no extension fields)");
    assert_eq!(gue[1], PROTO_IPIP, "GUE protocol (IPv4)");
    assert_eq!(&gue[2..4], &[0, 0], "GUE flags");
    &rest[GUE_HEADER_LEN..]
}

/// Checks the (inner) IPv4 packet of `want`: IPv4, TCP or UDP, payload.
fn assert_packet(bytes: &[u8], want: &Frame) {
    let l4_len = match want.transport {
        Transport::Tcp { .. } => 20,
        Transport::Udp => 8,
    };
    let layer = if want.tunnel.is_some() {
        "inner"
    } else {
        "the"
    };
    let ip_want = Ipv4Want {
        src: want.src,
        dst: want.dst,
        ttl: want.ttl,
        ident: want.ident,
        df: want.df,
        protocol: match want.transport {
            Transport::Tcp { .. } => IpNumber::TCP,
            Transport::Udp => IpNumber::UDP,
        },
        payload_len: l4_len + want.payload.len(),
    };
    let (ip, rest) = assert_ipv4(bytes, &ip_want, layer);
    let payload = match want.transport {
        Transport::Tcp {
            seq,
            ack,
            flags: bits,
            window,
        } => {
            let (t, payload) = TcpHeader::from_slice(rest).expect("TCP header");
            assert_eq!(t.source_port, want.sport, "TCP source port");
            assert_eq!(t.destination_port, want.dport, "TCP destination port");
            assert_eq!(t.sequence_number, seq, "TCP sequence number");
            assert_eq!(t.acknowledgment_number, ack, "TCP acknowledgment number");
            assert_eq!(t.header_len(), 20, "TCP data offset (no options)");
            assert_eq!(t.syn, bits & flags::SYN != 0, "TCP SYN");
            assert_eq!(t.ack, bits & flags::ACK != 0, "TCP ACK");
            assert_eq!(t.rst, bits & flags::RST != 0, "TCP RST");
            assert_eq!(t.fin, bits & flags::FIN != 0, "TCP FIN");
            assert_eq!(t.psh, bits & flags::PSH != 0, "TCP PSH");
            assert_eq!(t.window_size, window, "TCP window");
            let valid = t.calc_checksum_ipv4(&ip, payload).expect("TCP checksum");
            assert_eq!(t.checksum, valid, "TCP checksum valid");
            payload
        }
        Transport::Udp => {
            let (u, payload) = UdpHeader::from_slice(rest).expect("UDP header");
            assert_eq!(u.source_port, want.sport, "UDP source port");
            assert_eq!(u.destination_port, want.dport, "UDP destination port");
            assert_eq!(usize::from(u.length), 8 + want.payload.len(), "UDP length");
            let valid = u.calc_checksum_ipv4(&ip, payload).expect("UDP checksum");
            assert_eq!(u.checksum, valid, "UDP checksum valid");
            payload
        }
    };
    assert_eq!(payload, &want.payload[..], "{layer} payload");
}
