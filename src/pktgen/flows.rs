//! The generator's flows: targets (a rule's frontend ip:port) from a compiled snapshot, and the
//! client addressing that maps a flow index to a client ip:port and back in O(1).
//!
//! Clients live in 198.18.0.0/15 (RFC 2544 benchmarking range): flow `i` is
//! `198.18.0.1 + (i % 4096)` port `1024 + i / 4096`, so a returned frame's source finds its flow
//! without a hash table, and 4096 distinct client addresses spread even 2-tuple distributions.
//! Flows only use 198.18.0.0/16; SYN-flood sources are drawn from the other half, 198.19.0.0/16,
//! so a returned frame tells by its source whether it belongs to a flow or to the flood.
//!
//! IPv6 flows (`--family 6`) use the same numbering inside 2001:2::/48 (RFC 5180's benchmarking
//! range): the client of flow `i` is 2001:2::/96 followed by flow `i`'s IPv4 client address
//! ([`client6_of`]), so both families share one mapping, and a flood source stays a flood source.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

use crate::balance::snapshot::{RuleId, RuleKind, Snapshot, IPPROTO_TCP, IPPROTO_UDP};
use crate::config::Protocol;
use serde::Serialize;

/// First client address (198.18.0.1).
pub const CLIENT_BASE: u32 = u32::from_be_bytes([198, 18, 0, 1]);
/// Distinct client addresses used by flows.
pub const CLIENT_ADDRS: u32 = 4096;
/// First client port.
pub const CLIENT_PORT_BASE: u16 = 1024;
/// The most flows the addressing can express.
pub const MAX_FLOWS: u32 = CLIENT_ADDRS * (65535 - CLIENT_PORT_BASE as u32 + 1);
/// The client network 198.18.0.0/15 (flows and synflood sources).
pub const CLIENT_NET: u32 = u32::from_be_bytes([198, 18, 0, 0]);
/// Mask of [`CLIENT_NET`].
pub const CLIENT_MASK: u32 = 0xfffe_0000;
/// Where synflood sources come from: 198.19.0.0/16, the half of [`CLIENT_NET`] no flow uses.
pub const FLOOD_NET: u32 = u32::from_be_bytes([198, 19, 0, 0]);
/// Mask of [`FLOOD_NET`].
pub const FLOOD_MASK: u32 = 0xffff_0000;
/// Destination port used for HA-ports rules (which match every port).
pub const HA_PORTS_DST: u16 = 80;

/// One destination the generator sends to: a rule's frontend address, port and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipTarget {
    /// The rule whose frontend this is.
    pub rule: RuleId,
    /// The VIP (IPv4, or IPv6 with `--family 6`).
    pub vip: IpAddr,
    /// Frontend port.
    pub port: u16,
    /// IP protocol (TCP or UDP).
    pub proto: u8,
}

/// Why no targets could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

fn proto_of(p: Protocol) -> u8 {
    match p {
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Tcp | Protocol::All => IPPROTO_TCP,
    }
}

/// Which address family the generator's flows use (`--family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
pub enum Family {
    /// IPv4 flows to the IPv4 frontends.
    #[default]
    #[value(name = "4")]
    #[serde(rename = "4")]
    V4,
    /// IPv6 flows (clients in 2001:2::/96) to the IPv6 frontends.
    #[value(name = "6")]
    #[serde(rename = "6")]
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// The IPv4 targets of a snapshot ([`targets_of`] with [`Family::V4`]).
pub fn targets(snapshot: &Snapshot, only: Option<&str>) -> Result<Vec<VipTarget>, TargetError> {
    targets_of(snapshot, only, Family::V4)
}

/// The targets of a snapshot in `family`: every load-balancing rule's frontend ip:port, or only
/// those of the rule named `only` (any kind; a port-range NAT rule gives one target per occupied
/// slot). Rules of the other family give no target.
pub fn targets_of(
    snapshot: &Snapshot,
    only: Option<&str>,
    family: Family,
) -> Result<Vec<VipTarget>, TargetError> {
    let mut out = Vec::new();
    for r in &snapshot.rules {
        let vip = r.frontend_addr;
        if Family::of(vip) != family {
            continue;
        }
        let chosen = match only {
            Some(name) => r.name == name,
            None => r.kind == RuleKind::LoadBalancing,
        };
        if !chosen {
            continue;
        }
        let proto = proto_of(r.protocol);
        match r.kind {
            RuleKind::InboundNatRange => {
                for (slot, m) in r.slots.iter().enumerate() {
                    let port = usize::from(r.frontend_port) + slot;
                    if let (Some(_), Ok(port)) = (m, u16::try_from(port)) {
                        out.push(VipTarget {
                            rule: r.id,
                            vip,
                            port,
                            proto,
                        });
                    }
                }
            }
            _ => out.push(VipTarget {
                rule: r.id,
                vip,
                port: if r.ha_ports {
                    HA_PORTS_DST
                } else {
                    r.frontend_port
                },
                proto,
            }),
        }
    }
    if out.is_empty() {
        return Err(TargetError(match only {
            Some(name) => {
                format!("no rule named {name:?} of IP{family:?} with a usable frontend port")
            }
            None => format!("the configuration has no IP{family:?} load-balancing rule to send to"),
        }));
    }
    Ok(out)
}

/// N flows over a list of targets: flow `i` goes to target `i % targets`.
#[derive(Debug, Clone)]
pub struct FlowSet {
    /// Number of flows.
    pub count: u32,
    /// The targets, in the order flows cycle through them.
    pub targets: Vec<VipTarget>,
}

impl FlowSet {
    /// `count` flows (clamped to 1..=[`MAX_FLOWS`]) over `targets` (must not be empty).
    pub fn new(count: u32, targets: Vec<VipTarget>) -> FlowSet {
        FlowSet {
            count: count.clamp(1, MAX_FLOWS),
            targets,
        }
    }

    /// Client address and port of flow `i`.
    #[inline]
    pub fn client(&self, i: u32) -> SocketAddrV4 {
        client_of(i)
    }

    /// The target of flow `i`.
    #[inline]
    pub fn target(&self, i: u32) -> &VipTarget {
        &self.targets[i as usize % self.targets.len()]
    }

    /// The flow whose client is `ip:port`, if it is one of ours.
    #[inline]
    pub fn index_of(&self, ip: Ipv4Addr, port: u16) -> Option<u32> {
        flow_index(ip, port, self.count)
    }
}

/// The flow of `count` whose endpoint ([`client_of`]) is `ip:port`, if any.
#[inline]
pub fn flow_index(ip: Ipv4Addr, port: u16, count: u32) -> Option<u32> {
    let off = u32::from(ip).wrapping_sub(CLIENT_BASE);
    if off >= CLIENT_ADDRS || port < CLIENT_PORT_BASE {
        return None;
    }
    let i = u32::from(port - CLIENT_PORT_BASE) * CLIENT_ADDRS + off;
    (i < count).then_some(i)
}

/// Client address and port of flow `i` (see the module doc).
#[inline]
pub fn client_of(i: u32) -> SocketAddrV4 {
    let ip = Ipv4Addr::from(CLIENT_BASE + i % CLIENT_ADDRS);
    let port = CLIENT_PORT_BASE.saturating_add(u16::try_from(i / CLIENT_ADDRS).unwrap_or(u16::MAX));
    SocketAddrV4::new(ip, port)
}

/// True when `ip` is in the client network (198.18.0.0/15).
#[inline]
pub fn is_client_addr(ip: Ipv4Addr) -> bool {
    u32::from(ip) & CLIENT_MASK == CLIENT_NET
}

/// True when `ip` is a synflood source (198.19.0.0/16), never a flow's client.
#[inline]
pub fn is_flood_addr(ip: Ipv4Addr) -> bool {
    u32::from(ip) & FLOOD_MASK == FLOOD_NET
}

/// The IPv6 client network 2001:2::/96 that [`client6_of`] embeds IPv4 client addresses in.
pub const CLIENT6_PREFIX: u128 = 0x2001_0002_0000_0000_0000_0000_0000_0000;

/// The IPv6 form of a client (or flood) address: [`CLIENT6_PREFIX`] followed by `v4`.
#[inline]
pub fn client6_of(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from(CLIENT6_PREFIX | u128::from(u32::from(v4)))
}

/// The IPv4 address a [`client6_of`] address embeds; `None` outside 2001:2::/96.
#[inline]
pub fn client4_of6(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let v = u128::from(ip);
    (v >> 32 == CLIENT6_PREFIX >> 32).then(|| Ipv4Addr::from(v as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mapping_round_trips() {
        let fs = FlowSet::new(
            100_000,
            vec![VipTarget {
                rule: RuleId(0),
                vip: Ipv4Addr::new(10, 1, 0, 100).into(),
                port: 80,
                proto: IPPROTO_TCP,
            }],
        );
        for i in [0, 1, 4095, 4096, 4097, 99_999] {
            let c = fs.client(i);
            assert!(is_client_addr(*c.ip()));
            assert!(!is_flood_addr(*c.ip()));
            assert_eq!(fs.index_of(*c.ip(), c.port()), Some(i), "flow {i}");
        }
        let c = client_of(100_000);
        assert_eq!(fs.index_of(*c.ip(), c.port()), None);
        assert_eq!(fs.index_of(Ipv4Addr::new(10, 0, 0, 1), 2000), None);
        assert_eq!(client_of(0), "198.18.0.1:1024".parse().unwrap());
        assert_eq!(client_of(4096), "198.18.0.1:1025".parse().unwrap());
        // Even the last flow the addressing can express stays out of the flood range.
        assert!(!is_flood_addr(*client_of(MAX_FLOWS - 1).ip()));
        assert!(is_flood_addr(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(!is_flood_addr(Ipv4Addr::new(198, 20, 0, 0)));
    }

    #[test]
    fn ipv6_clients_embed_the_ipv4_numbering() {
        let c = client6_of(*client_of(4097).ip());
        assert_eq!(c, "2001:2::c612:2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(client4_of6(c), Some(*client_of(4097).ip()));
        assert_eq!(client4_of6("2001:3::c612:2".parse().unwrap()), None);
        assert_eq!(client4_of6("2001:2::1:c612:2".parse().unwrap()), None);
    }

    #[test]
    fn targets_of_spec_example() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/spec-example.toml"
        ))
        .unwrap();
        let cfg = crate::config::Config::from_str(&text, "spec-example.toml").unwrap();
        let snap = Snapshot::compile(&cfg, &crate::balance::snapshot::Health::all_up(&cfg));
        let t = targets(&snap, None).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].vip, t[0].port),
            (Ipv4Addr::new(10, 1, 0, 100).into(), 80)
        );
        assert!(targets_of(&snap, None, Family::V6).is_err(), "no IPv6 rule");
        let range = targets(&snap, Some("ssh-pool")).unwrap();
        assert_eq!(range.len(), 2, "two members occupy two slots");
        assert_eq!(range[0].port, 50100);
        assert!(targets(&snap, Some("nope")).is_err());
    }
}
