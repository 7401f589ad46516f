//! The generator's flows: targets (a rule's frontend ip:port) from a compiled snapshot, and the
//! client addressing that maps a flow index to a client ip:port and back in O(1).
//!
//! Clients live in 198.18.0.0/15 (RFC 2544 benchmarking range): flow `i` is
//! `198.18.0.1 + (i % 4096)` port `1024 + i / 4096`, so a returned frame's source finds its flow
//! without a hash table, and 4096 distinct client addresses spread even 2-tuple distributions.
//! Flows only use 198.18.0.0/16; SYN-flood sources are drawn from the other half, 198.19.0.0/16,
//! so a returned frame tells by its source whether it belongs to a flow or to the flood.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use crate::balance::snapshot::{RuleId, RuleKind, Snapshot, IPPROTO_TCP, IPPROTO_UDP};
use crate::config::Protocol;

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
    /// The VIP.
    pub vip: Ipv4Addr,
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

/// The targets of a snapshot: every load-balancing rule's frontend ip:port, or only those of the
/// rule named `only` (any kind; a port-range NAT rule gives one target per occupied slot). The
/// generator speaks IPv4: IPv6 rules give no target.
pub fn targets(snapshot: &Snapshot, only: Option<&str>) -> Result<Vec<VipTarget>, TargetError> {
    let mut out = Vec::new();
    for r in &snapshot.rules {
        let IpAddr::V4(vip) = r.frontend_addr else {
            continue;
        };
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
            Some(name) => format!("no rule named {name:?} with a usable frontend port"),
            None => "the configuration has no load-balancing rule to send to".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mapping_round_trips() {
        let fs = FlowSet::new(
            100_000,
            vec![VipTarget {
                rule: RuleId(0),
                vip: Ipv4Addr::new(10, 1, 0, 100),
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
        assert_eq!((t[0].vip, t[0].port), (Ipv4Addr::new(10, 1, 0, 100), 80));
        let range = targets(&snap, Some("ssh-pool")).unwrap();
        assert_eq!(range.len(), 2, "two members occupy two slots");
        assert_eq!(range[0].port, 50100);
        assert!(targets(&snap, Some("nope")).is_err());
    }
}
