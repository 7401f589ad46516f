//! IPv6 flows through the pipeline on real DPDK mbufs over a `net_ring` loop: a client's NAT66
//! SYN and the member's reply, and a floating-IP packet put into GUE over IPv6 in the mbuf's own
//! headroom, each sent into the ring, received, processed, sent again and received back, then
//! read with an independent parser (etherparse: addresses, ports, every checksum).

mod dataplane_common;
mod dpdk_profiles;

use dataplane_common::VM6_2;
use dataplane_common::{frame6, ip6, pipeline, World, CLIENT6, OWN6, VIP6_NAT, VIP6_TUN};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::net::Ipv6Addr;
use vipmux::dataplane::Verdict;
use vipmux::dpdk::{Burst, Mbuf, Mempool, Port, PortConfig, QueueId, RxQueue, TxQueue};

/// The member the MUX must choose, as a literal.
///
/// Obtained once by running vipmux's distribution hash (the seeded 5-tuple hash of the balance
/// hash module over the IPv6 tuple, `hash_seed = 0x5eedcafe` as in the fixture) and the Maglev
/// table of pool "web6" (two members, equal weights) over exactly this tuple. Two MUXes with the
/// same seed must pick the same member, so a change to the hash, the seed handling or the Maglev
/// permutation must change it deliberately. Never recompute it from the code under test.
mod pinned {
    /// Rule "nat6": 2001:db8::1:40000 → 2001:db8:0:1::2:80 TCP.
    pub const NAT6_40000: &str = super::VM6_2;
}

/// Sends `f` into the ring and returns the mbuf received from it.
fn through_ring(pool: &Mempool, tx: &mut TxQueue, rx: &mut RxQueue, f: &[u8]) -> Mbuf {
    let mut b = Burst::new();
    let mut m: Mbuf = pool.alloc().expect("mbuf");
    assert!(m.extend_from_slice(f));
    b.push(m).expect("room");
    send(tx, &mut b);
    receive(rx)
}

fn send(tx: &mut TxQueue, b: &mut Burst) {
    for _ in 0..1000 {
        if b.is_empty() {
            return;
        }
        tx.tx_burst_keep(b);
    }
    panic!("the ring refused the frame");
}

fn receive(rx: &mut RxQueue) -> Mbuf {
    let mut b = Burst::new();
    for _ in 0..1_000_000 {
        if rx.rx_burst(&mut b) > 0 {
            return b.pop().expect("a frame");
        }
    }
    panic!("the ring delivered nothing");
}

/// The outer IPv6 addresses and transport ports of `f`, checking the transport checksum.
fn endpoints(f: &[u8]) -> (Ipv6Addr, u16, Ipv6Addr, u16) {
    let s = SlicedPacket::from_ethernet(f).expect("parses");
    let Some(NetSlice::Ipv6(v6)) = &s.net else {
        panic!("not IPv6")
    };
    let h = v6.header().to_header();
    let (sp, dp) = match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = t
                .to_header()
                .calc_checksum_ipv6(&h, t.payload())
                .expect("sum");
            assert_eq!(c, t.checksum(), "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            let c = u
                .to_header()
                .calc_checksum_ipv6(&h, u.payload())
                .expect("sum");
            assert_eq!(c, u.checksum(), "UDP checksum");
            (u.source_port(), u.destination_port())
        }
        other => panic!("no TCP/UDP: {other:?}"),
    };
    (
        Ipv6Addr::from(h.source),
        sp,
        Ipv6Addr::from(h.destination),
        dp,
    )
}

#[test]
fn ipv6_flows_through_the_pipeline_on_real_mbufs() {
    let eal = dpdk_profiles::ring_pair_eal("tests/dpdk_pipeline6.rs");
    let pool = Mempool::create(eal, "pipeline6", 1023, 64, 2176, None).expect("mempool");
    let port = Port::open(eal, "net_ring0", &PortConfig::default(), &pool).expect("port");
    let mut rx = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut tx = port.tx_queue(QueueId(0)).expect("tx queue");

    let world = World::dual_stack();
    let view = world.view();
    let mut p = pipeline();
    // Received from the ring, processed, sent back into the ring and received again.
    let mut run = |f: &[u8]| -> (Verdict, Vec<u8>) {
        let mut m = [through_ring(&pool, &mut tx, &mut rx, f)];
        let mut v = [Verdict::Drop(vipmux::dataplane::DropReason::TxFull)];
        p.process(&view, 0, &mut m, &mut v, 1);
        let [m] = m;
        let mut b = Burst::new();
        b.push(m).expect("room");
        send(&mut tx, &mut b);
        (v[0], receive(&mut rx).data().to_vec())
    };
    let fwd = Verdict::Forward { port: 0 };
    // NAT66: client → VIP:80 becomes client → member:8080, the member of pool "web6" the
    // distribution hash names.
    let (v, out) = run(&frame6(CLIENT6, 40000, VIP6_NAT, 80, 6, true));
    assert_eq!(v, fwd);
    let (src, sport, member, dport) = endpoints(&out);
    assert_eq!((src, sport, dport), (ip6(CLIENT6), 40000, 8080), "NAT66");
    assert_eq!(member, ip6(pinned::NAT6_40000), "the member the hash names");
    // The member's reply: member:8080 → client becomes VIP:80 → client.
    let member = member.to_string();
    let (v, out) = run(&frame6(&member, 8080, CLIENT6, 40000, 6, false));
    assert_eq!(v, fwd);
    assert_eq!(
        endpoints(&out),
        (ip6(VIP6_NAT), 80, ip6(CLIENT6), 40000),
        "NAT66 reply"
    );
    // Floating IP in GUE over IPv6: the outer UDP to the tunnel member, the inner packet as sent.
    let query = frame6(CLIENT6, 5353, VIP6_TUN, 443, 17, false);
    let (v, out) = run(&query);
    assert_eq!(v, fwd);
    assert_eq!(
        out.len(),
        query.len() + 40 + 8 + 4,
        "IPv6 + UDP + GUE in front"
    );
    let (osrc, _, odst, odport) = endpoints(&out);
    assert_eq!((osrc, odst, odport), (ip6(OWN6), ip6(VM6_2), 6080));
    assert_eq!(
        &out[14 + 40 + 8 + 4..],
        &query[14..],
        "the inner packet unchanged"
    );
    drop((rx, tx));
    port.close().expect("close");
}
