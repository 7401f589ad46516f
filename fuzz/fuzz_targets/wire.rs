//! Fuzz target: arbitrary bytes as a received frame, walked through every wire view the way the
//! classifier and the slow path do: Ethernet (+ one 802.1Q tag), then ARP or IPv4 (whole packet
//! and header-only, as quoted in ICMP errors), then TCP, UDP or ICMP (and the flow an ICMP error
//! quotes).
//!
//! Contract checked: once a `new_checked` constructor succeeded, no getter, setter or checksum
//! helper of that view panics, whatever the bytes; a `Repr` parsed from a view emits bytes that
//! parse back to the same `Repr`; filled and incrementally updated checksums verify.
//!
//! Run: `scripts/fuzz.sh wire`, or `cargo fuzz run -s none wire` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipmux::wire::{
    checksum, ethertype, protocol, ArpPacket, ArpRepr, EthernetFrame, EthernetRepr, IcmpPacket,
    Ipv4Addr, Ipv4Packet, Ipv4Repr, MacAddr, TcpPacket, UdpPacket,
};

fuzz_target!(|data: &[u8]| {
    // Views over a mutable copy, so setters run on the same bytes the getters read.
    let mut frame = data.to_vec();
    walk_frame(&mut frame);
    // The IPv4 parser is also reached without an Ethernet header (ICMP quotes, decapsulation).
    let mut packet = data.to_vec();
    walk_ipv4(&mut packet);
    walk_ipv4_header(data);
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
