//! The IPv6 fixtures of the dataplane integration tests: the standard configuration made dual
//! stack with IPv6 rules of every kind ([`config6`]), its world with the IPv6 neighbours
//! published ([`World::dual_stack`]) and IPv6 frames written by etherparse ([`frame6`]).

use super::{World, CONFIG, PORT_MAC};
use etherparse::PacketBuilder;
use std::net::Ipv6Addr;
use vipmux::wire::MacAddr;

/// A client behind the gateway.
pub const CLIENT6: &str = "2001:db8::1";
/// The NAT66 frontend: TCP and UDP port 80 to pool "web6" port 8080 (reset on idle, 4 s).
pub const VIP6_NAT: &str = "2001:db8:0:1::2";
/// The HA-ports frontend (pool "ha6").
pub const VIP6_HA: &str = "2001:db8:0:1::3";
/// The tunnel frontend: TCP 443 in IPv6-in-IPv6 to "ipip6", UDP 443 in GUE to "gue6".
pub const VIP6_TUN: &str = "2001:db8:0:1::4";
/// The appliance's own IPv6 address on the interface.
pub const OWN6: &str = "fd00:1::2";
/// Members: VM6_1 and VM6_2 serve "web6" (VM6_1 also "ipip6", VM6_2 also "gue6"), VM6_3 "ha6".
pub const VM6_1: &str = "fd00:1::11";
/// See [`VM6_1`].
pub const VM6_2: &str = "fd00:1::12";
/// See [`VM6_1`].
pub const VM6_3: &str = "fd00:1::13";
/// The MAC every IPv6 neighbour has.
pub const NEIGHBOUR6_MAC: MacAddr = MacAddr([2, 0, 0, 0, 6, 1]);

/// The IPv6 frontends, pools and rules [`config6`] adds.
const RULES6: &str = r#"
[[frontends]]
name = "nat6"
address = "2001:db8:0:1::2"

[[frontends]]
name = "ha6"
address = "2001:db8:0:1::3"

[[frontends]]
name = "tun6"
address = "2001:db8:0:1::4"

[[backend_pools]]
name = "web6"
members = [{ name = "a", address = "fd00:1::11" }, { name = "b", address = "fd00:1::12" }]

[[backend_pools]]
name = "ha6"
members = [{ name = "c", address = "fd00:1::13" }]

[[backend_pools]]
name = "ipip6"
dsr_encapsulation = "ipip"
members = [{ name = "a", address = "fd00:1::11" }]

[[backend_pools]]
name = "gue6"
dsr_encapsulation = "gue"
members = [{ name = "b", address = "fd00:1::12" }]

[[load_balancing_rules]]
name = "nat6"
frontend = "nat6"
protocol = "all"
frontend_port = 80
backend_port = 8080
backend_pool = "web6"
idle_timeout_seconds = 4
enable_tcp_reset = true

[[load_balancing_rules]]
name = "ha6"
frontend = "ha6"
protocol = "all"
frontend_port = 0
backend_port = 0
backend_pool = "ha6"

[[load_balancing_rules]]
name = "ipip6"
frontend = "tun6"
protocol = "tcp"
frontend_port = 443
backend_pool = "ipip6"
enable_floating_ip = true

[[load_balancing_rules]]
name = "gue6"
frontend = "tun6"
protocol = "udp"
frontend_port = 443
backend_pool = "gue6"
enable_floating_ip = true
"#;

/// The standard configuration with an IPv6 address (and gateway fe80::1) on its interface and
/// IPv6 rules of every kind: NAT66 with reset on idle, HA ports, IPv6-in-IPv6, GUE over IPv6.
pub fn config6() -> String {
    let gw = "gateway = \"10.1.0.1\"";
    let six = format!("{gw}\naddress6 = \"{OWN6}/64\"\ngateway6 = \"fe80::1\"");
    CONFIG.replacen(gw, &six, 1) + RULES6
}

/// An IPv6 address of the fixtures.
pub fn ip6(s: &str) -> Ipv6Addr {
    s.parse().expect("an IPv6 address")
}

impl World {
    /// The world of [`config6`], its IPv6 neighbours (the gateway and the members) published.
    pub fn dual_stack() -> World {
        let mut w = World::new(&config6());
        let six = ["fe80::1", VM6_1, VM6_2, VM6_3].map(|a| (ip6(a), NEIGHBOUR6_MAC, 0));
        w.neighbours = w.neighbours.clone().with_ipv6(six.to_vec());
        w
    }
}

/// An Ethernet/IPv6 TCP (flags SYN when `syn`, else ACK) or UDP frame from `src:sport` to
/// `dst:dport` with the payload "data", gateway MAC → port MAC.
pub fn frame6(src: &str, sport: u16, dst: &str, dport: u16, proto: u8, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], PORT_MAC.0).ipv6(
        ip6(src).octets(),
        ip6(dst).octets(),
        64,
    );
    let mut out = Vec::new();
    if proto == 6 {
        let t = b.tcp(sport, dport, 1, 1000);
        let t = if syn { t.syn() } else { t.ack(7) };
        t.write(&mut out, b"data").expect("tcp");
    } else {
        b.udp(sport, dport).write(&mut out, b"data").expect("udp");
    }
    out
}
