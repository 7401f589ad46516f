//! What the checker's tests (IPv4, IPv6 and outbound) share: their configurations, the
//! generator's addresses, a checker over one rule's flows and the frames the generator sends.

use std::net::Ipv4Addr;

use super::{Checker, Expect, MismatchKind, Outcome};
use crate::balance::snapshot::{Health, Snapshot};
use crate::config::Config;
use crate::pktgen::flows::{targets_of, Family, FlowSet};
use crate::pktgen::frames::{build, FrameKind, Macs};
use crate::wire::MacAddr;

/// A configuration with a NAT rule over two on-link members and a floating-IP rule in IPIP
/// (the outbound tests add an outbound rule over pool "web").
pub(crate) const CONFIG: &str = r#"
[appliance]
name = "t"
[[interfaces]]
name = "dc"
port = "net_memif0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"
[[frontends]]
name = "fe"
address = "10.1.0.100"
interface = "dc"
[[backend_pools]]
name = "web"
members = [ { name = "vm1", address = "10.1.0.11" }, { name = "vm2", address = "10.1.0.12" } ]
[[backend_pools]]
name = "tun"
dsr_encapsulation = "ipip"
members = [ { name = "t1", address = "10.9.0.1" } ]
[[probes]]
name = "p"
protocol = "tcp"
port = 8080
[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
probe = "p"
[[load_balancing_rules]]
name = "tun"
frontend = "fe"
protocol = "tcp"
frontend_port = 443
backend_port = 443
backend_pool = "tun"
probe = "p"
enable_floating_ip = true
"#;

/// An IPv6 frontend with a NAT66 rule over two on-link members and a floating-IP rule (MAC
/// rewrite) over an on-link member.
pub(crate) const CONFIG6: &str = r#"
[appliance]
name = "t"
[[interfaces]]
name = "dc"
port = "net_memif0"
address = "10.1.0.2/24"
address6 = "2001:db8:1::2/64"
gateway6 = "2001:db8:1::1"
[[frontends]]
name = "fe6"
address = "2001:db8:1::100"
interface = "dc"
[[backend_pools]]
name = "web6"
members = [ { name = "vm1", address = "2001:db8:1::11" }, { name = "vm2", address = "2001:db8:1::12" } ]
[[backend_pools]]
name = "dsr6"
members = [ { name = "d1", address = "2001:db8:1::21" } ]
[[probes]]
name = "p"
protocol = "tcp"
port = 8080
[[load_balancing_rules]]
name = "web6"
frontend = "fe6"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web6"
probe = "p"
[[load_balancing_rules]]
name = "dsr6"
frontend = "fe6"
protocol = "tcp"
frontend_port = 443
backend_port = 443
backend_pool = "dsr6"
probe = "p"
enable_floating_ip = true
"#;

/// The generator's MAC address.
pub(crate) const GEN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
/// The device's MAC address (where the generator sends).
pub(crate) const DUT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// The snapshot of `config` with every member up.
pub(crate) fn snapshot(config: &str) -> Snapshot {
    let cfg = Config::from_str(config, "test.toml").expect("config");
    Snapshot::compile(&cfg, &Health::all_up(&cfg))
}

/// The MACs of the generator's frames.
pub(crate) fn macs() -> Macs {
    Macs {
        src: GEN_MAC,
        dst: DUT_MAC,
    }
}

/// A checker expecting rewrites of 8 flows to the `family` targets of `rule` in `config`.
pub(crate) fn checker(config: &str, family: Family, rule: &str) -> Checker {
    checker_with(config, family, Some(rule), 8, Expect::Rewrite, false)
}

/// A checker expecting `expect` of `flows` flows to the `family` targets of `rule` (of every
/// rule when `None`) in `config`, with SYN-flood sources when `synflood`.
pub(crate) fn checker_with(
    config: &str,
    family: Family,
    rule: Option<&str>,
    flows: u32,
    expect: Expect,
    synflood: bool,
) -> Checker {
    let snap = snapshot(config);
    let targets = targets_of(&snap, rule, family).expect("targets");
    let flows = FlowSet::new(flows, targets);
    let own_ip = Ipv4Addr::new(10, 1, 0, 254);
    Checker::new(snap, flows, expect, synflood, GEN_MAC, own_ip)
}

/// The `kind` frame of `len` bytes the generator sends for `flow`.
pub(crate) fn sent(c: &Checker, flow: u32, kind: FrameKind, len: usize) -> Vec<u8> {
    let mut f = vec![0; len];
    let t = flow as usize % c.flows.targets.len();
    let client = c.flows.client(flow);
    build(
        &mut f,
        macs(),
        client,
        &c.flows.targets[t],
        t as u16,
        kind,
        1,
    );
    f
}

/// Asserts that `c`, verifying, finds each frame of `cases` a mismatch of its kind (in order).
pub(crate) fn assert_mismatches(c: &mut Checker, cases: Vec<(MismatchKind, Vec<u8>)>) {
    for (kind, mut f) in cases {
        assert_eq!(c.handle(&mut f, true), Outcome::Mismatch(kind), "{kind:?}");
    }
}
