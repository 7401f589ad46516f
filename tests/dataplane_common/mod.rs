//! Shared fixtures of the dataplane integration tests: a configuration with every rule kind
//! (`tests/fixtures/dataplane_every_rule.toml`), a published neighbour map, the port table, frame
//! builders ([`frame`]: named fields, written by etherparse), the independent read-back of an
//! output frame ([`layers`]) and the IPv6 fixtures ([`six`]).
#![allow(dead_code)]

pub mod frame;
pub mod layers;
pub mod six;

#[allow(unused_imports)]
pub use frame::{flags, Frame, Tunnel};
#[allow(unused_imports)]
pub use layers::assert_frame;
#[allow(unused_imports)]
pub use six::*;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, SocketAddrV4};
use vipmux::balance::{Health, ProbeState, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::NeighbourMap;
use vipmux::dataplane::{EgressPort, Pipeline, PipelineConfig, Verdict, View};
use vipmux::slowpath::{NeighbourTable, NeighbourTimers, SlowPathInterface};
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

/// The standard configuration: every rule kind and delivery mode (see the fixture's header).
pub const CONFIG: &str = include_str!("../fixtures/dataplane_every_rule.toml");

/// The standard configuration edited as a TOML document (e.g. one `[appliance]` key changed, a
/// table appended), serialized back to text.
pub fn config_with(edit: impl FnOnce(&mut toml::Table)) -> String {
    let mut t: toml::Table = CONFIG.parse().expect("the standard configuration is TOML");
    edit(&mut t);
    toml::to_string(&t).expect("serialize the configuration")
}

/// The standard configuration with one outbound rule (`rule`: its fields).
pub fn config_with_outbound(rule: toml::Table) -> String {
    config_with(|t| {
        t.insert(
            "outbound_rules".into(),
            vec![toml::Value::from(rule)].into(),
        );
    })
}

/// The table `name` of a configuration document (e.g. `appliance`).
pub fn table<'a>(t: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    t.get_mut(name)
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("no [{name}]"))
}

/// Everything a `View` borrows.
pub struct World {
    pub config: Config,
    pub health: Health,
    pub snapshot: Snapshot,
    pub neighbours: NeighbourMap,
    pub ports: Vec<EgressPort>,
}

impl World {
    pub fn new(text: &str) -> World {
        let config = Config::from_str(text, "test.toml").expect("valid config");
        let health = Health::all_up(&config);
        let snapshot = Snapshot::compile(&config, &health);
        let mut t = NeighbourTable::new(
            vec![SlowPathInterface::new(
                "dc",
                PORT_MAC,
                PORT_ADDR,
                24,
                Some(GW),
            )],
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
            ports: vec![EgressPort {
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
}

pub fn pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 4096,
        flow_capacity6: None,
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
