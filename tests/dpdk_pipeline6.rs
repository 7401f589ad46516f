//! IPv6 flows through the pipeline on real DPDK mbufs over a `net_ring` loop: a client's NAT66
//! SYN and the member's reply, and a floating-IP packet put into GUE over IPv6 in the mbuf's own
//! headroom, each sent into the ring, received, processed, sent again and received back, then
//! read with an independent parser (etherparse: addresses, ports, every checksum).

mod dpdk_profiles;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, Ipv6Addr};
use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::{EgressPort, NeighbourMap, Pipeline, PipelineConfig, Verdict, View};
use vipmux::dpdk::{Burst, Mbuf, Mempool, Port, PortConfig, QueueId, RxQueue, TxQueue};
use vipmux::wire::MacAddr;

const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const CLIENT: &str = "2001:db8::1";
const VIP: &str = "2001:db8:0:1::2";
const MEMBER: &str = "fd00:1::11";
const TUNNEL: &str = "fd00:1::41";

const CONFIG: &str = r#"
[appliance]
name = "ring6"

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"
address6 = "fd00:1::2/64"
gateway6 = "fe80::1"

[[frontends]]
name = "fe6"
address = "2001:db8:0:1::2"

[[backend_pools]]
name = "web6"
members = [{ name = "vm1", address = "fd00:1::11" }]

[[backend_pools]]
name = "gue6"
dsr_encapsulation = "gue"
members = [{ name = "g1", address = "fd00:1::41" }]

[[load_balancing_rules]]
name = "web6"
frontend = "fe6"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web6"

[[load_balancing_rules]]
name = "dns6"
frontend = "fe6"
protocol = "udp"
frontend_port = 53
backend_pool = "gue6"
enable_floating_ip = true
"#;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().expect("address")
}

/// An Ethernet/IPv6 TCP SYN or UDP frame.
fn frame(src: &str, sport: u16, dst: &str, dport: u16, udp: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], PORT_MAC.0).ipv6(
        ip(src).octets(),
        ip(dst).octets(),
        64,
    );
    let mut out = Vec::new();
    if udp {
        b.udp(sport, dport).write(&mut out, b"query").expect("udp");
    } else {
        b.tcp(sport, dport, 100, 1000)
            .syn()
            .write(&mut out, &[])
            .expect("tcp");
    }
    out
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

    let config = Config::from_str(CONFIG, "ring6.toml").unwrap_or_else(|e| panic!("{e}"));
    let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
    let six = ["fe80::1", MEMBER, TUNNEL].map(|a| (ip(a), MacAddr([2, 0, 0, 0, 6, 1]), 0));
    let neighbours = NeighbourMap::from_entries(vec![], 1).with_ipv6(six.to_vec());
    let ports = [EgressPort {
        mac: PORT_MAC,
        addr: Ipv4Addr::new(10, 1, 0, 2),
        mtu: 1500,
    }];
    let view = View {
        snapshot: &snapshot,
        neighbours: &neighbours,
        ports: &ports,
    };
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 1024,
        flow_capacity6: None,
    });
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
    // NAT66: client → VIP:80 becomes client → member:8080.
    let (v, out) = run(&frame(CLIENT, 40000, VIP, 80, false));
    assert_eq!(v, fwd);
    assert_eq!(
        endpoints(&out),
        (ip(CLIENT), 40000, ip(MEMBER), 8080),
        "NAT66 to the member"
    );
    // The member's reply: member:8080 → client becomes VIP:80 → client.
    let (v, out) = run(&frame(MEMBER, 8080, CLIENT, 40000, false));
    assert_eq!(v, fwd);
    assert_eq!(
        endpoints(&out),
        (ip(VIP), 80, ip(CLIENT), 40000),
        "NAT66 reply"
    );
    // Floating IP in GUE over IPv6: the outer UDP to the tunnel member, the inner packet as sent.
    let query = frame(CLIENT, 5353, VIP, 53, true);
    let (v, out) = run(&query);
    assert_eq!(v, fwd);
    assert_eq!(
        out.len(),
        query.len() + 40 + 8 + 4,
        "IPv6 + UDP + GUE in front"
    );
    let (osrc, _, odst, odport) = endpoints(&out);
    assert_eq!((osrc, odst, odport), (ip("fd00:1::2"), ip(TUNNEL), 6080));
    assert_eq!(
        &out[14 + 40 + 8 + 4..],
        &query[14..],
        "the inner packet unchanged"
    );
    drop((rx, tx));
    port.close().expect("close");
}
