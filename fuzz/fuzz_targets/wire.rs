//! Fuzz target: arbitrary bytes as a received frame, walked through every wire view the way the
//! classifier and the slow path do: Ethernet (+ one 802.1Q tag), then ARP, IPv4 (whole packet
//! and header-only, as quoted in ICMP errors) or IPv6 (its extension-header walk), then TCP, UDP,
//! ICMP or ICMPv6 (the flow an error quotes, Neighbour Discovery options), and the IPv6 builders
//! that answer or encapsulate such frames.
//!
//! Contract checked: once a `new_checked` constructor succeeded, no getter, setter or checksum
//! helper of that view panics, whatever the bytes; a `Repr` parsed from a view emits bytes that
//! parse back to the same `Repr`; filled and incrementally updated checksums verify.
//!
//! Run: `scripts/fuzz.sh wire`, or `cargo fuzz run -s none wire` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipmux::wire::builder::{self, EncapSpecV6, Icmpv6ErrorKind, L2Spec};
use vipmux::wire::ipv6::{self, next_header};
use vipmux::wire::{
    checksum, ethertype, protocol, ArpPacket, ArpRepr, EthernetFrame, EthernetRepr, IcmpPacket,
    Icmpv6Packet, Ipv4Addr, Ipv4Packet, Ipv4Repr, Ipv6Addr, Ipv6Packet, Ipv6Repr, MacAddr, NdRepr,
    PacketBuf, TcpPacket, UdpPacket, VecBuf,
};

fuzz_target!(|data: &[u8]| {
    // Views over a mutable copy, so setters run on the same bytes the getters read.
    let mut frame = data.to_vec();
    walk_frame(&mut frame);
    // The IPv4 parser is also reached without an Ethernet header (ICMP quotes, decapsulation).
    let mut packet = data.to_vec();
    walk_ipv4(&mut packet);
    walk_ipv4_header(data);
    let mut packet = data.to_vec();
    walk_ipv6(&mut packet);
    build_ipv6(data);
});

fn walk_frame(frame: &mut [u8]) {
    let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
        return;
    };
    let _ = (
        eth.dst_addr(),
        eth.src_addr(),
        eth.ethertype(),
        eth.payload().len(),
    );
    let _ = (
        eth.is_vlan_tagged(),
        eth.vlan_tci(),
        eth.dst_addr().is_broadcast(),
    );
    let l3 = match eth.l3() {
        Ok(l3) => l3,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = l3.vlan_id();
    assert!(l3.offset <= frame.len(), "l3 offset past the frame");
    if let Ok(repr) = EthernetRepr::parse(&eth) {
        let mut out = [0u8; 18];
        let n = repr
            .emit(&mut out)
            .expect("an 18-byte buffer holds any Ethernet header");
        assert_eq!(n, repr.header_len());
        let back = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..n]).expect("emitted"))
            .expect("an emitted Ethernet header parses");
        assert_eq!(back, repr, "Ethernet repr round trip");
    }
    {
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        let (src, dst) = (eth.src_addr(), eth.dst_addr());
        eth.swap_addrs();
        eth.swap_addrs();
        eth.set_src_addr(src);
        eth.set_dst_addr(dst);
        if let Some(tci) = l3.vlan_tci {
            assert!(eth.set_vlan_tci(tci), "a tagged frame keeps its tag");
        }
        let _ = eth.payload_mut().len();
    }
    let rest = &mut frame[l3.offset..];
    match l3.ethertype {
        ethertype::ARP => walk_arp(rest),
        ethertype::IPV4 => {
            walk_ipv4(rest);
            walk_ipv4_header(rest);
        }
        ethertype::IPV6 => walk_ipv6(rest),
        _ => {}
    }
}

fn walk_arp(bytes: &mut [u8]) {
    let Ok(p) = ArpPacket::new_checked(&*bytes) else {
        return;
    };
    let _ = (
        p.hardware_type(),
        p.protocol_type(),
        p.hardware_len(),
        p.protocol_len(),
    );
    let _ = (p.is_ethernet_ipv4(), p.operation());
    let _ = (
        p.sender_hw_addr(),
        p.sender_ip(),
        p.target_hw_addr(),
        p.target_ip(),
    );
    let parsed = ArpRepr::parse(&p);
    if let Ok(repr) = parsed {
        let mut out = [0u8; 28];
        let n = repr.emit(&mut out).expect("28 bytes hold an ARP packet");
        let back = ArpRepr::parse(&ArpPacket::new_checked(&out[..n]).expect("emitted"))
            .expect("an emitted ARP packet parses");
        assert_eq!(back, repr, "ARP repr round trip");
    }
    let mut p = ArpPacket::new_unchecked(&mut *bytes);
    let (op, sha, sip) = (p.operation(), p.sender_hw_addr(), p.sender_ip());
    p.set_operation(op);
    p.set_sender_hw_addr(sha);
    p.set_sender_ip(sip);
    p.set_target_hw_addr(MacAddr([0; 6]));
    p.set_target_ip(Ipv4Addr::UNSPECIFIED);
}

/// A received IPv4 packet: whole-packet check, then its L4 payload.
fn walk_ipv4(bytes: &mut [u8]) {
    let (src, dst, proto, payload_range) = {
        let Ok(ip) = Ipv4Packet::new_checked(&*bytes) else {
            return;
        };
        read_ipv4(&ip);
        let total = ip.total_len() as usize;
        let hl = ip.header_len();
        assert!(hl <= total && total <= bytes.len(), "checked lengths hold");
        assert_eq!(
            ip.payload().len(),
            total - hl,
            "payload is header..total length"
        );
        if let Ok(repr) = Ipv4Repr::parse(&ip) {
            let mut out = [0u8; 20];
            if repr.emit(&mut out).is_ok() {
                let mut whole = out.to_vec();
                whole.resize(20 + repr.payload_len, 0);
                let back = Ipv4Repr::parse(&Ipv4Packet::new_checked(&whole[..]).expect("emitted"))
                    .expect("an emitted IPv4 header parses");
                assert_eq!(back, repr, "IPv4 repr round trip");
                assert!(Ipv4Packet::new_checked(&whole[..])
                    .unwrap()
                    .verify_checksum());
            }
        }
        (ip.src_addr(), ip.dst_addr(), ip.protocol(), hl..total)
    };
    {
        let mut ip = Ipv4Packet::new_checked(&mut *bytes).expect("checked above");
        let old = ip.rewrite_dst_addr(Ipv4Addr::new(10, 0, 0, 1));
        ip.rewrite_dst_addr(old);
        let old = ip.rewrite_src_addr(Ipv4Addr::new(10, 0, 0, 2));
        ip.rewrite_src_addr(old);
        let ttl = ip.ttl();
        ip.decrement_ttl();
        ip.rewrite_ttl(ttl);
        let _ = (ip.header_mut().len(), ip.payload_mut().len());
        ip.fill_checksum();
        assert!(ip.verify_checksum(), "a filled checksum verifies");
    }
    let seg = &mut bytes[payload_range];
    match proto {
        protocol::TCP => walk_tcp(seg, src, dst),
        protocol::UDP => walk_udp(seg, src, dst),
        protocol::ICMP => walk_icmp(seg),
        _ => {}
    }
}

/// An IPv4 header whose payload may be cut short (quoted in an ICMP error, or a fragment).
fn walk_ipv4_header(bytes: &[u8]) {
    if let Ok(ip) = Ipv4Packet::new_checked_header(bytes) {
        read_ipv4(&ip);
    }
}

fn read_ipv4(ip: &Ipv4Packet<&[u8]>) {
    let _ = (
        ip.version(),
        ip.header_len(),
        ip.tos(),
        ip.dscp(),
        ip.ecn(),
        ip.total_len(),
    );
    let _ = (
        ip.ident(),
        ip.flags_frag_word(),
        ip.dont_frag(),
        ip.more_frags(),
    );
    let _ = (
        ip.frag_offset(),
        ip.is_fragment(),
        ip.ttl(),
        ip.protocol(),
        ip.checksum(),
    );
    let _ = (
        ip.src_addr(),
        ip.dst_addr(),
        ip.verify_checksum(),
        ip.pseudo_header_sum(),
    );
    let _ = (ip.header().len(), ip.options().len(), ip.payload().len());
}

fn walk_tcp(seg: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let Ok(t) = TcpPacket::new_checked(&*seg) else {
        return;
    };
    let _ = (
        t.src_port(),
        t.dst_port(),
        t.seq_number(),
        t.ack_number(),
        t.header_len(),
    );
    let _ = (
        t.flags(),
        t.fin(),
        t.syn(),
        t.rst(),
        t.ack(),
        t.window(),
        t.checksum(),
    );
    let _ = (
        t.urgent(),
        t.options().len(),
        t.payload().len(),
        t.segment_len(),
    );
    let _ = t.verify_checksum(src, dst);
    assert!(t.header_len() <= seg.len());
    let mut t = TcpPacket::new_checked(&mut *seg).expect("checked above");
    t.fill_checksum(src, dst);
    assert!(
        t.verify_checksum(src, dst),
        "a filled TCP checksum verifies"
    );
    let old = t.rewrite_dst_port(8080);
    t.rewrite_dst_port(old);
    let old = t.rewrite_src_port(4242);
    t.rewrite_src_port(old);
    t.update_checksum_for_addr(dst, Ipv4Addr::new(10, 1, 0, 11));
    t.update_checksum_for_addr(Ipv4Addr::new(10, 1, 0, 11), dst);
    assert!(
        t.verify_checksum(src, dst),
        "incremental updates keep the TCP checksum valid"
    );
    let _ = t.payload_mut().len();
}

fn walk_udp(seg: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let Ok(u) = UdpPacket::new_checked(&*seg) else {
        return;
    };
    let _ = (
        u.src_port(),
        u.dst_port(),
        u.len(),
        u.checksum(),
        u.payload().len(),
    );
    let _ = u.verify_checksum(src, dst);
    let mut u = UdpPacket::new_checked(&mut *seg).expect("checked above");
    u.fill_checksum(src, dst);
    assert!(
        u.verify_checksum(src, dst),
        "a filled UDP checksum verifies"
    );
    let old = u.rewrite_dst_port(53);
    u.rewrite_dst_port(old);
    let old = u.rewrite_src_port(5353);
    u.rewrite_src_port(old);
    u.update_checksum_for_addr(dst, Ipv4Addr::new(10, 1, 0, 12));
    u.update_checksum_for_addr(Ipv4Addr::new(10, 1, 0, 12), dst);
    assert!(
        u.verify_checksum(src, dst),
        "incremental updates keep the UDP checksum valid"
    );
    let _ = u.payload_mut().len();
}

fn walk_icmp(msg: &mut [u8]) {
    let Ok(p) = IcmpPacket::new_checked(&*msg) else {
        return;
    };
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest_of_header(),
        p.echo_ident(),
    );
    let _ = (
        p.echo_seq_no(),
        p.next_hop_mtu(),
        p.is_echo_request(),
        p.is_error(),
    );
    let _ = (p.data().len(), p.verify_checksum());
    if let Ok(inner) = p.inner_ipv4() {
        read_ipv4(&inner);
    }
    if let Ok(flow) = p.inner_flow() {
        assert!(
            flow.l4_offset <= msg.len(),
            "quoted L4 offset inside the message"
        );
    }
    let _ = checksum::checksum(msg);
    let mut p = IcmpPacket::new_checked(&mut *msg).expect("checked above");
    let (t, c) = (p.msg_type(), p.code());
    p.rewrite_type_code(t, c);
    p.fill_checksum();
    assert!(p.verify_checksum(), "a filled ICMP checksum verifies");
    let _ = p.data_mut().len();
}

/// A received IPv6 packet: checked lengths, the extension-header walk, then its upper layer.
fn walk_ipv6(bytes: &mut [u8]) {
    let (src, dst, upper) = {
        let Ok(ip) = Ipv6Packet::new_checked(&*bytes) else {
            if let Ok(h) = Ipv6Packet::new_checked_header(&*bytes) {
                let _ = (h.payload().len(), h.upper_layer());
            }
            return;
        };
        let _ = (
            ip.version(),
            ip.traffic_class(),
            ip.dscp(),
            ip.ecn(),
            ip.flow_label(),
        );
        let _ = (
            ip.payload_len(),
            ip.next_header(),
            ip.hop_limit(),
            ip.header().len(),
        );
        assert!(ip.total_len() <= bytes.len(), "checked lengths hold");
        assert_eq!(ip.payload().len(), ip.payload_len() as usize);
        if let Ok(repr) = Ipv6Repr::parse(&ip) {
            let mut whole = vec![0u8; ipv6::HEADER_LEN + repr.payload_len];
            repr.emit(&mut whole).expect("a parsed header emits");
            let back = Ipv6Repr::parse(&Ipv6Packet::new_checked(&whole[..]).expect("emitted"))
                .expect("an emitted IPv6 header parses");
            assert_eq!(back, repr, "IPv6 repr round trip");
        }
        let upper = match ip.upper_layer() {
            Ok(u) => u,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        assert!(
            upper.offset <= ip.total_len(),
            "the walk stays in the payload"
        );
        if upper.is_fragment() {
            return; // rejected like IPv4 fragments
        }
        (ip.src_addr(), ip.dst_addr(), upper)
    };
    {
        let mut ip = Ipv6Packet::new_checked(&mut *bytes).expect("checked above");
        let h = ip.hop_limit();
        ip.decrement_hop_limit();
        ip.set_hop_limit(h);
        let _ = ip.payload_mut().len();
    }
    let end = ipv6::HEADER_LEN + Ipv6Packet::new_unchecked(&*bytes).payload_len() as usize;
    let seg = &mut bytes[upper.offset..end];
    match upper.protocol {
        next_header::TCP => walk_tcp6(seg, src, dst),
        next_header::UDP => walk_udp6(seg, src, dst),
        next_header::ICMPV6 => walk_icmpv6(seg, src, dst),
        _ => {}
    }
}

fn walk_tcp6(seg: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let Ok(mut t) = TcpPacket::new_checked(&mut *seg) else {
        return;
    };
    let _ = t.verify_checksum_v6(src, dst);
    t.fill_checksum_v6(src, dst);
    assert!(
        t.verify_checksum_v6(src, dst),
        "a filled TCP checksum verifies"
    );
    let old = t.rewrite_dst_port(8080);
    t.rewrite_dst_port(old);
    t.update_checksum_for_addr_v6(dst, Ipv6Addr::LOCALHOST);
    t.update_checksum_for_addr_v6(Ipv6Addr::LOCALHOST, dst);
    assert!(
        t.verify_checksum_v6(src, dst),
        "NAT66 keeps the TCP checksum valid"
    );
}

fn walk_udp6(seg: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let Ok(mut u) = UdpPacket::new_checked(&mut *seg) else {
        return;
    };
    let _ = u.verify_checksum_v6(src, dst);
    u.fill_checksum_v6(src, dst);
    assert!(
        u.verify_checksum_v6(src, dst),
        "a filled UDP checksum verifies"
    );
    let old = u.rewrite_src_port(5353);
    u.rewrite_src_port(old);
    u.update_checksum_for_addr_v6(src, Ipv6Addr::LOCALHOST);
    u.update_checksum_for_addr_v6(Ipv6Addr::LOCALHOST, src);
    assert!(
        u.verify_checksum_v6(src, dst),
        "NAT66 keeps the UDP checksum valid"
    );
}

fn walk_icmpv6(msg: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let Ok(p) = Icmpv6Packet::new_checked(&*msg) else {
        return;
    };
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest_of_header(),
        p.mtu(),
    );
    let _ = (
        p.echo_ident(),
        p.echo_seq_no(),
        p.is_error(),
        p.data().len(),
    );
    let _ = (
        p.verify_checksum(src, dst),
        p.nd_flags(),
        p.nd_target(),
        p.nd_options().len(),
    );
    if let Ok(flow) = p.inner_flow() {
        assert!(
            flow.l4_offset <= msg.len(),
            "quoted L4 offset inside the message"
        );
    }
    let _ = p.nd_ll_addr(1);
    if let Ok(repr) = NdRepr::parse(&p) {
        let mut out = [0u8; 32];
        let n = repr
            .emit(&mut out, src, dst)
            .expect("32 bytes hold an ND message");
        let back = NdRepr::parse(&Icmpv6Packet::new_checked(&out[..n]).expect("emitted"));
        // Options other than the link-layer one are dropped; the repr is what was kept.
        assert_eq!(
            back.expect("an emitted ND message parses"),
            repr,
            "ND repr round trip"
        );
    }
    let mut p = Icmpv6Packet::new_checked(&mut *msg).expect("checked above");
    let (t, c) = (p.msg_type(), p.code());
    p.fill_checksum(src, dst);
    p.rewrite_type_code(t ^ 1, c);
    p.rewrite_type_code(t, c);
    assert!(
        p.verify_checksum(src, dst),
        "incremental updates keep the ICMPv6 checksum valid"
    );
}

/// The IPv6 builders on the input as a frame and as a packet: errors, never panics; what they
/// build parses.
fn build_ipv6(data: &[u8]) {
    let mut m = data.to_vec();
    if let Ok(n) = builder::icmpv6_echo_reply_in_place(&mut m) {
        assert!(n <= data.len());
    }
    let mut out = [0u8; 1400];
    if let Ok(n) = builder::neighbor_advert_reply(&mut out, data, MacAddr([2; 6])) {
        let eth = EthernetFrame::new_checked(&out[..n]).expect("an advert frame");
        let at = eth.l3().expect("its tag fits").offset;
        let ip = Ipv6Packet::new_checked(&out[at..n]).expect("an advert parses");
        let msg = Icmpv6Packet::new_checked(ip.payload()).expect("an ICMPv6 advert");
        assert!(msg.verify_checksum(ip.src_addr(), ip.dst_addr()));
    }
    let l2 = L2Spec {
        src_mac: MacAddr([2; 6]),
        dst_mac: MacAddr([4; 6]),
        vlan: None,
    };
    let kind = Icmpv6ErrorKind::PacketTooBig { mtu: 1280 };
    if let Ok(n) = builder::icmpv6_error(&mut out, &l2, Ipv6Addr::LOCALHOST, kind, data) {
        assert!(
            n - 14 <= ipv6::MIN_MTU,
            "an ICMPv6 error fits the minimum MTU"
        );
    }
    let spec = EncapSpecV6 {
        outer_src: Ipv6Addr::LOCALHOST,
        outer_dst: Ipv6Addr::UNSPECIFIED,
        hop_limit: 64,
    };
    let mut buf = VecBuf::from_slice(data);
    if builder::prepend_gue6(&mut buf, &spec, 9).is_ok() {
        let ip = Ipv6Packet::new_checked(buf.data()).expect("the outer header parses");
        let u = UdpPacket::new_checked(ip.payload()).expect("the outer UDP parses");
        assert!(u.verify_checksum_v6(spec.outer_src, spec.outer_dst));
    }
    let _ = builder::prepend_ip6ip6(&mut VecBuf::from_slice(data), &spec, 9);
    let mut m = data.to_vec();
    if builder::rewrite_endpoint_v6(
        &mut m,
        builder::Endpoint::Dst,
        Ipv6Addr::LOCALHOST,
        Some(80),
    )
    .is_err()
    {
        assert_eq!(m, data, "a refused NAT66 leaves the packet untouched");
    }
}
