//! Shared fixtures of the dataplane integration tests: a configuration with every rule kind, a
//! published neighbour map, the port table, frame builders and etherparse cross-checks.
#![allow(dead_code)]

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, SocketAddrV4};
use vipmux::balance::{Health, ProbeState, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::NeighbourMap;
use vipmux::dataplane::{Pipeline, PipelineConfig, PortInfo, Verdict, View};
use vipmux::slowpath::{InterfaceInfo, NeighbourTable, NeighbourTimers};
use vipmux::wire::{FrameSpec, MacAddr, PacketBuf, TcpFlags, VecBuf};

pub const PORT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xaa]);
pub const PORT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
pub const GW: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const GW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x50]);
/// A client on-link (two-arm style replies go straight to it).
pub const CLIENT_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 50);
/// A client behind the gateway.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

pub const VM1: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 11);
pub const VM2: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 12);
pub const VM3: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 13);
pub const FW1: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 21);
pub const TUN1: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 31);
pub const GUE1: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 41);

pub const VIP_NAT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
pub const VIP_FLOAT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 101);
pub const VIP_IPIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 102);
pub const VIP_GUE: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 103);
pub const VIP_HA: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 104);
pub const VIP_SIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 105);
pub const VIP_SIPP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 106);
pub const VIP_RST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 107);

/// MAC of a neighbour: 02:00:00:00:00:<last octet>.
pub fn mac_of(ip: Ipv4Addr) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, ip.octets()[3]])
}

pub const CONFIG: &str = r#"
[appliance]
name = "t"
hash_seed = 0x5eedcafe
missing_flow = "rehash"
no_healthy_backends = "drop"

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "nat"
address = "10.1.0.100"
interface = "dc"

[[frontends]]
name = "float"
address = "10.1.0.101"
interface = "dc"

[[frontends]]
name = "ipip"
address = "10.1.0.102"

[[frontends]]
name = "gue"
address = "10.1.0.103"

[[frontends]]
name = "ha"
address = "10.1.0.104"

[[frontends]]
name = "sip"
address = "10.1.0.105"

[[frontends]]
name = "sipp"
address = "10.1.0.106"

[[frontends]]
name = "rst"
address = "10.1.0.107"

[[backend_pools]]
name = "web"
members = [
  { name = "vm1", address = "10.1.0.11" },
  { name = "vm2", address = "10.1.0.12" },
  { name = "vm3", address = "10.1.0.13" },
]

[[backend_pools]]
name = "fw"
members = [ { name = "fw1", address = "10.1.0.21" } ]

[[backend_pools]]
name = "tun"
dsr_encapsulation = "ipip"
members = [ { name = "t1", address = "10.9.0.31" } ]

[[backend_pools]]
name = "guep"
dsr_encapsulation = "gue"
gue_port = 6081
members = [ { name = "g1", address = "10.9.0.41" } ]

[[probes]]
name = "p"
protocol = "tcp"
port = 8080

[[load_balancing_rules]]
name = "web"
frontend = "nat"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
probe = "p"
idle_timeout_seconds = 60

[[load_balancing_rules]]
name = "dns"
frontend = "nat"
protocol = "udp"
frontend_port = 53
backend_port = 5353
backend_pool = "web"
probe = "p"
idle_timeout_seconds = 30

[[load_balancing_rules]]
name = "float"
frontend = "float"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
enable_floating_ip = true
probe = "p"

[[load_balancing_rules]]
name = "ipip"
frontend = "ipip"
protocol = "tcp"
frontend_port = 443
backend_port = 443
backend_pool = "tun"
enable_floating_ip = true

[[load_balancing_rules]]
name = "gue"
frontend = "gue"
protocol = "all"
frontend_port = 443
backend_port = 443
backend_pool = "guep"
enable_floating_ip = true

[[load_balancing_rules]]
name = "ha"
frontend = "ha"
protocol = "all"
frontend_port = 0
backend_port = 0
backend_pool = "fw"

[[load_balancing_rules]]
name = "sip"
frontend = "sip"
protocol = "tcp"
frontend_port = 80
backend_port = 8081
backend_pool = "web"
load_distribution = "source_ip"

[[load_balancing_rules]]
name = "sipp"
frontend = "sipp"
protocol = "tcp"
frontend_port = 80
backend_port = 8082
backend_pool = "web"
load_distribution = "source_ip_protocol"

[[load_balancing_rules]]
name = "rst"
frontend = "rst"
protocol = "tcp"
frontend_port = 80
backend_port = 8083
backend_pool = "web"
idle_timeout_seconds = 120
enable_tcp_reset = true

[[inbound_nat_rules]]
name = "rdp"
frontend = "nat"
protocol = "tcp"
frontend_port = 50001
target = { pool = "web", member = "vm1" }
backend_port = 3389

[[inbound_nat_rules]]
name = "ssh"
frontend = "nat"
protocol = "tcp"
frontend_port_range_start = 50100
frontend_port_range_end = 50199
backend_pool = "web"
backend_port = 22
"#;

/// Everything a `View` borrows.
pub struct World {
    pub config: Config,
    pub health: Health,
    pub snapshot: Snapshot,
    pub neighbours: NeighbourMap,
    pub ports: Vec<PortInfo>,
}

impl World {
    pub fn new(text: &str) -> World {
        let config = Config::from_str(text, "test.toml").expect("valid config");
        let health = Health::all_up(&config);
        let snapshot = Snapshot::compile(&config, &health);
        let mut t = NeighbourTable::new(
            vec![InterfaceInfo::new("dc", PORT_MAC, PORT_ADDR, 24, Some(GW))],
            NeighbourTimers::default(),
        );
        for ip in [GW, CLIENT_LOCAL, VM1, VM2, VM3, FW1] {
            t.learn(0, ip, mac_of(ip), 0, true);
        }
        let neighbours = t.snapshot();
        assert!(neighbours.get(VM1).is_some(), "neighbour learnt");
        World {
            config,
            health,
            snapshot,
            neighbours,
            ports: vec![PortInfo {
                mac: PORT_MAC,
                addr: PORT_ADDR,
                mtu: 1500,
            }],
        }
    }

    pub fn standard() -> World {
        Self::new(CONFIG)
    }

    pub fn view(&self) -> View<'_> {
        View {
            snapshot: &self.snapshot,
            neighbours: &self.neighbours,
            ports: &self.ports,
        }
    }

    /// Sets probe "p" for `addr` and recompiles (keeping Maglev continuity).
    pub fn set_health(&mut self, addr: Ipv4Addr, state: ProbeState) {
        self.health.set("p", addr, state);
        self.snapshot =
            Snapshot::compile_with_previous(&self.config, &self.health, Some(&self.snapshot));
    }

    /// Removes the neighbour map (nothing resolved).
    pub fn forget_neighbours(&mut self) {
        self.neighbours = NeighbourMap::default();
    }
}

pub fn pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 4096,
        recent_window_secs: 600,
    })
}

/// A TCP frame from `src` to `dst`, client MAC → port MAC.
pub fn tcp(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    FrameSpec {
        src_mac: GW_MAC,
        dst_mac: PORT_MAC,
        ident: 0x1234,
        payload,
        proto: vipmux::wire::L4Spec::Tcp {
            sport: src.port(),
            dport: dst.port(),
            seq,
            ack,
            flags,
            window: 8192,
        },
        ..FrameSpec::tcp(src, dst, flags)
    }
    .to_vec()
}

/// A UDP frame from `src` to `dst`.
pub fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    FrameSpec {
        src_mac: GW_MAC,
        dst_mac: PORT_MAC,
        ident: 0x1234,
        ..FrameSpec::udp(src, dst, payload)
    }
    .to_vec()
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// Runs one frame through the pipeline; returns the verdict and the output frame.
pub fn run(p: &mut Pipeline, w: &World, frame: &[u8], now: u32) -> (Verdict, Vec<u8>) {
    let mut bufs = [VecBuf::with_room(128, frame, 0)];
    let mut v = [Verdict::Drop(vipmux::dataplane::DropReason::TxFull)];
    p.process(&w.view(), 0, &mut bufs, &mut v, now);
    (v[0], bufs[0].data().to_vec())
}

/// Checks a frame with etherparse (every checksum) and returns it parsed.
pub fn check(frame: &[u8]) -> SlicedPacket<'_> {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse parses the frame");
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = t
                .to_header()
                .calc_checksum_ipv4(&h, t.payload())
                .expect("tcp checksum");
            assert_eq!(c, t.checksum(), "TCP checksum");
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let c = u
                .to_header()
                .calc_checksum_ipv4(&h, u.payload())
                .expect("udp checksum");
            assert_eq!(c, u.checksum(), "UDP checksum");
        }
        _ => {}
    }
    s
}

/// Independent expected-frame builder (etherparse, full checksums).
pub mod expect {
    use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, TcpHeader, UdpHeader};
    use std::net::Ipv4Addr;
    use vipmux::wire::MacAddr;

    pub struct Ip {
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub ttl: u8,
        pub ident: u16,
        pub df: bool,
    }

    pub fn eth(src: MacAddr, dst: MacAddr) -> Vec<u8> {
        let mut v = Vec::new();
        Ethernet2Header {
            source: src.0,
            destination: dst.0,
            ether_type: EtherType::IPV4,
        }
        .write(&mut v)
        .unwrap();
        v
    }

    fn ipv4(ip: &Ip, proto: IpNumber, payload_len: usize) -> Ipv4Header {
        let mut h = Ipv4Header::new(
            payload_len as u16,
            ip.ttl,
            proto,
            ip.src.octets(),
            ip.dst.octets(),
        )
        .unwrap();
        h.identification = ip.ident;
        h.dont_fragment = ip.df;
        h
    }

    /// IPv4 + TCP packet (no Ethernet).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_packet(
        ip: &Ip,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        syn: bool,
        ackf: bool,
        rst: bool,
        psh: bool,
        window: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let h = ipv4(ip, IpNumber::TCP, 20 + payload.len());
        let mut t = TcpHeader::new(sport, dport, seq, window);
        t.acknowledgment_number = ack;
        t.syn = syn;
        t.ack = ackf;
        t.rst = rst;
        t.psh = psh;
        t.checksum = t.calc_checksum_ipv4(&h, payload).unwrap();
        let mut v = Vec::new();
        h.write(&mut v).unwrap();
        t.write(&mut v).unwrap();
        v.extend_from_slice(payload);
        v
    }

    /// IPv4 + UDP packet (no Ethernet).
    pub fn udp_packet(ip: &Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let h = ipv4(ip, IpNumber::UDP, 8 + payload.len());
        let u = UdpHeader::with_ipv4_checksum(sport, dport, &h, payload).unwrap();
        let mut v = Vec::new();
        h.write(&mut v).unwrap();
        u.write(&mut v).unwrap();
        v.extend_from_slice(payload);
        v
    }

    /// Outer IPv4 (protocol 4) in front of `inner`.
    pub fn ipip(outer: &Ip, inner: &[u8]) -> Vec<u8> {
        let h = ipv4(outer, IpNumber::IPV4, inner.len());
        let mut v = Vec::new();
        h.write(&mut v).unwrap();
        v.extend_from_slice(inner);
        v
    }

    /// Outer IPv4 + UDP (checksum 0) + GUE v0 header (proto 4) in front of `inner`.
    pub fn gue(outer: &Ip, sport: u16, dport: u16, inner: &[u8]) -> Vec<u8> {
        let udp_len = 8 + 4 + inner.len();
        let h = ipv4(outer, IpNumber::UDP, udp_len);
        let mut v = Vec::new();
        h.write(&mut v).unwrap();
        UdpHeader {
            source_port: sport,
            destination_port: dport,
            length: udp_len as u16,
            checksum: 0,
        }
        .write(&mut v)
        .unwrap();
        v.extend_from_slice(&[0, 4, 0, 0]);
        v.extend_from_slice(inner);
        v
    }
}
