//! The IPv6 frames the wire builders produce, read by an independent dissector (tshark, from
//! `scripts/setup.sh`) with checksum validation on: Neighbour Solicitation and the Advertisement
//! answering it, an unsolicited Advertisement, an ICMPv6 echo reply, Packet Too Big quoting a
//! datagram, IPv6-in-IPv6, GUE over IPv6 and a NAT66-rewritten TCP segment; and the frames the data
//! path's IPv6 pieces make of classified packets: NAT66 toward a member and back, GUE over IPv6
//! with the backend port, and an idle reset. Every TCP, UDP and ICMPv6 checksum must be reported
//! good and no frame malformed. Without tshark the test is
//! skipped, except where prerequisites are required (`tests/prereq`: under `CI=true`), where it fails.

mod prereq;

use std::io::Write;
use std::net::Ipv6Addr;
use std::process::Command;

use vipmux::config::DsrEncapsulation;
use vipmux::dataplane::classify6::{classify6, AddressList6};
use vipmux::dataplane::expiry6::tcp_rst6;
use vipmux::dataplane::rewrite6::{reply_to_client6, to_member6, Target6};
use vipmux::dataplane::route::Hop;
use vipmux::dataplane::Verdict;
use vipmux::wire::builder::{self, EncapSpecV6, Endpoint, Icmpv6ErrorKind, L2Spec};
use vipmux::wire::ipv6::next_header;
use vipmux::wire::{
    ethertype, Icmpv6Packet, Ipv6Packet, Ipv6Repr, MacAddr, PacketBuf, TcpFlags, TcpPacket,
    UdpPacket, VecBuf,
};

const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x80);
const MEMBER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 0x11);
const MUX_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

/// An IPv6 packet carrying `l4` (its checksum filled here) of upper-layer `nh`.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 40 + l4.len()];
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: nh,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: l4.len(),
    }
    .emit(&mut b)
    .unwrap();
    b[40..].copy_from_slice(l4);
    let seg = &mut b[40..];
    match nh {
        next_header::TCP => TcpPacket::new_unchecked(seg).fill_checksum_v6(src, dst),
        next_header::UDP => UdpPacket::new_unchecked(seg).fill_checksum_v6(src, dst),
        _ => Icmpv6Packet::new_unchecked(seg).fill_checksum(src, dst),
    }
    b
}

/// `packet` behind an Ethernet header.
fn framed(packet: &[u8]) -> Vec<u8> {
    let mut buf = VecBuf::with_room(64, packet, 0);
    let l2 = L2Spec {
        src_mac: PEER_MAC,
        dst_mac: MUX_MAC,
        vlan: None,
    };
    builder::prepend_ethernet(&mut buf, &l2, ethertype::IPV6).unwrap();
    buf.to_vec()
}

/// A TCP SYN 40000 -> 80 (20-byte header) and a UDP datagram 40001 -> 40002 with 40 bytes.
fn segments() -> (Vec<u8>, Vec<u8>) {
    let mut tcp = vec![0u8; 20];
    let mut t = TcpPacket::new_unchecked(&mut tcp[..]);
    t.set_src_port(40000);
    t.set_dst_port(80);
    t.set_seq_number(7);
    t.set_header_len(20);
    t.set_flags(TcpFlags::SYN);
    t.set_window(65535);
    let mut udp = vec![0x61u8; 48];
    let mut u = UdpPacket::new_unchecked(&mut udp[..]);
    u.set_src_port(40001);
    u.set_dst_port(40002);
    u.set_len(48);
    (tcp, udp)
}

/// Every frame to check, with what it is.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut out = [0u8; 1600];
    let n = builder::neighbor_solicit(&mut out, PEER_MAC, None, CLIENT, VIP).unwrap();
    let ns = out[..n].to_vec();
    let n = builder::neighbor_advert_reply(&mut out, &ns, MUX_MAC).unwrap();
    v.push(("neighbour advertisement", out[..n].to_vec()));
    v.push(("neighbour solicitation", ns));
    let n = builder::unsolicited_advert(&mut out, MUX_MAC, Some(7), VIP).unwrap();
    v.push(("unsolicited advertisement", out[..n].to_vec()));
    let echo = [128u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let mut f = framed(&ipv6_packet(CLIENT, VIP, next_header::ICMPV6, &echo));
    let n = builder::icmpv6_echo_reply_in_place(&mut f).unwrap();
    v.push(("echo reply", f[..n].to_vec()));
    let (tcp, udp) = segments();
    let datagram = ipv6_packet(CLIENT, VIP, next_header::UDP, &udp);
    let l2 = L2Spec {
        src_mac: MUX_MAC,
        dst_mac: PEER_MAC,
        vlan: None,
    };
    let kind = Icmpv6ErrorKind::PacketTooBig { mtu: 1280 };
    let n = builder::icmpv6_error(&mut out, &l2, VIP, kind, &datagram).unwrap();
    v.push(("packet too big", out[..n].to_vec()));
    let spec = EncapSpecV6 {
        outer_src: VIP,
        outer_dst: MEMBER,
        hop_limit: 64,
    };
    let mut buf = VecBuf::with_room(128, &datagram, 0);
    builder::prepend_ip6ip6(&mut buf, &spec, 0x1234).unwrap();
    v.push(("ip6ip6", framed(buf.data())));
    let mut buf = VecBuf::with_room(128, &datagram, 0);
    builder::prepend_gue6(&mut buf, &spec, 0x1234).unwrap();
    v.push(("gue over ipv6", framed(buf.data())));
    let mut syn = ipv6_packet(CLIENT, VIP, next_header::TCP, &tcp);
    builder::rewrite_endpoint_v6(&mut syn, Endpoint::Dst, MEMBER, Some(8080)).unwrap();
    v.push(("nat66 syn", framed(&syn)));
    assert!(Ipv6Packet::new_checked(&datagram[..]).is_ok());
    v.push(("ipv6 packet", framed(&datagram)));
    v.extend(data_path_frames(&tcp, &udp));
    v
}

/// What the data path's IPv6 pieces make of a client's SYN and a member's reply.
fn data_path_frames(tcp: &[u8], udp: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&PEER_MAC.0);
    macs[6..].copy_from_slice(&MUX_MAC.0);
    let hop = Hop {
        port: 0,
        src_mac: MUX_MAC,
        dst_mac: PEER_MAC,
        macs,
        mtu: 1500,
        src_addr: 0,
    };
    let syn = framed(&ipv6_packet(CLIENT, VIP, next_header::TCP, tcp));
    let m = classify6(&syn, &AddressList6::default()).unwrap();
    let mut v = Vec::new();
    for (what, floating, encap) in [
        ("data path nat66", false, DsrEncapsulation::None),
        ("data path gue over ipv6", true, DsrEncapsulation::Gue),
    ] {
        let t = Target6 {
            addr: MEMBER.to_bits(),
            port: 8080,
            floating,
            encap,
            gue_port: builder::GUE_PORT,
            l4_delta: None,
        };
        let mut buf = VecBuf::with_room(128, &syn, 0);
        let out = to_member6(&mut buf, &m, &t, &hop, VIP.to_bits(), 0x77);
        assert_eq!(out, Verdict::Forward { port: 0 });
        v.push((what, buf.to_vec()));
    }
    let reply = framed(&ipv6_packet(MEMBER, CLIENT, next_header::UDP, udp));
    let m = classify6(&reply, &AddressList6::default()).unwrap();
    let mut buf = VecBuf::from_slice(&reply);
    let out = reply_to_client6(&mut buf, &m, VIP.to_bits(), 40080, &hop);
    assert_eq!(out, Verdict::Forward { port: 0 });
    v.push(("data path nat66 reply", buf.to_vec()));
    let mut out = [0u8; 128];
    let l2 = L2Spec {
        src_mac: MUX_MAC,
        dst_mac: PEER_MAC,
        vlan: Some(3),
    };
    let (vip, client) = (
        std::net::SocketAddrV6::new(VIP, 80, 0, 0),
        std::net::SocketAddrV6::new(CLIENT, 40000, 0, 0),
    );
    let n = tcp_rst6(&mut out, &l2, vip, client, 12345).unwrap();
    v.push(("data path idle reset", out[..n].to_vec()));
    v
}

/// A classic pcap file (Ethernet link type) holding `frames`.
fn pcap(frames: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for (i, (_, f)) in frames.iter().enumerate() {
        for w in [i as u32, 0, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    b
}

#[test]
fn tshark_finds_every_ipv6_checksum_good() {
    let frames = frames();
    let dir = std::env::temp_dir().join(format!("vipmux-wire6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ipv6.pcap");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(&pcap(&frames)))
        .unwrap();
    let run = Command::new("tshark")
        .args(["-n", "-V", "-o", "tcp.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE", "-r"])
        .arg(&file)
        .output();
    std::fs::remove_dir_all(&dir).ok();
    let out = match run {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        other => {
            let why = format!("tshark (installed by scripts/setup.sh) did not run: {other:?}");
            prereq::missing("tshark_finds_every_ipv6_checksum_good", &why);
            return;
        }
    };
    let frames_seen = out.matches("\nFrame ").count() + usize::from(out.starts_with("Frame "));
    assert_eq!(frames_seen, frames.len(), "{out}");
    for bad in ["Bad]", "Malformed", "incorrect", "Expert Info (Error"] {
        assert!(!out.contains(bad), "tshark says {bad:?}:\n{out}");
    }
    // One good checksum per TCP/UDP/ICMPv6 header: 3 ND, echo, PTB, inner UDP of two tunnels plus
    // the GUE UDP, the NAT66 SYN and the bare datagram; then the data path's NAT66 SYN, GUE UDP
    // (tshark shows what follows a GUE header as data), NAT66 reply and reset.
    let good = out.matches("[Checksum Status: Good]").count();
    assert_eq!(good, 14, "{out}");
    for what in [
        "Neighbor Solicitation",
        "Neighbor Advertisement",
        "Echo (ping) reply",
        "Packet Too Big",
        "Destination Port: 6080",
        "Destination Port: 8080",
        "Source Port: 40080",
        "Sequence Number (raw): 12345",
        "Flags: 0x004 (RST)",
    ] {
        assert!(out.contains(what), "no {what:?} in:\n{out}");
    }
}
