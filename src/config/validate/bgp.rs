//! Validation of `[bgp]` and the frontends' `announce` flags: AS numbers, router id, next hop,
//! communities, peers and hold times, each error naming the field, the bad value and what is valid.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::error::ConfigError;
use super::super::model::{Bgp, Config};

/// Highest 4-byte AS number.
pub const MAX_AS: u64 = u32::MAX as u64;

/// Every error of `[bgp]` and of `announce` on frontends.
pub(super) fn check(c: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    announce_flags(c, &mut errors);
    if let Some(bgp) = &c.bgp {
        identity(c, bgp, &mut errors);
        communities(bgp, &mut errors);
        peers(bgp, &mut errors);
    }
    errors
}

fn e(message: impl Into<String>, field: impl Into<String>, value: String) -> ConfigError {
    ConfigError::new("bgp", message).field(field).value(value)
}

fn unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

fn as_ok(asn: u64) -> bool {
    (1..=MAX_AS).contains(&asn)
}

/// `announce = true` needs a `[bgp]` table; an announced IPv6 VIP needs an IPv6 next hop.
fn announce_flags(c: &Config, errors: &mut Vec<ConfigError>) {
    for (i, fe) in c.frontends.iter().enumerate() {
        let bgp = c.bgp.as_ref();
        if fe.address.is_ipv6() && fe.announced(bgp) && next_hop6(c).is_none() {
            errors.push(
                ConfigError::new(
                    "frontends",
                    format!(
                        "IPv6 VIP {} is announced over BGP but there is no IPv6 next hop; valid: set [bgp] next_hop6, give an [[interfaces]] entry an address6, or set announce = false",
                        fe.address
                    ),
                )
                .entry(i, Some(&fe.name))
                .field("announce")
                .value(fe.announce.map_or("true (default)".into(), |a| a.to_string())),
            );
        }
        if c.bgp.is_some() {
            continue;
        }
        if fe.announce == Some(true) {
            errors.push(
                ConfigError::new(
                    "frontends",
                    "announcing needs a [bgp] table (add one, or remove `announce`)",
                )
                .entry(i, Some(&fe.name))
                .field("announce")
                .value("true"),
            );
        }
    }
}

/// `local_as`, `router_id`, `next_hop` (or an interface address to default it to).
fn identity(c: &Config, bgp: &Bgp, errors: &mut Vec<ConfigError>) {
    if !as_ok(bgp.local_as) {
        errors.push(e(
            "must be an AS number 1..=4294967295",
            "local_as",
            bgp.local_as.to_string(),
        ));
    }
    if !unicast(bgp.router_id) {
        errors.push(e(
            "must be a unicast IPv4 address, unique per MUX (usually its own address)",
            "router_id",
            format!("\"{}\"", bgp.router_id),
        ));
    }
    match bgp.next_hop {
        Some(nh) if !unicast(nh) => errors.push(e(
            "must be a unicast IPv4 address (the MUX's address the router forwards VIP traffic to)",
            "next_hop",
            format!("\"{nh}\""),
        )),
        Some(nh) if c.frontends.iter().any(|f| f.address4() == Some(nh)) => errors.push(e(
            "must not be a frontend address: the router would route the VIP to itself",
            "next_hop",
            format!("\"{nh}\""),
        )),
        None if c.interfaces.is_empty() => errors.push(
            ConfigError::new(
                "bgp",
                "no next hop: set `next_hop`, or define an [[interfaces]] entry whose address is used",
            )
            .field("next_hop"),
        ),
        _ => {}
    }
    if let Some(nh) = bgp.next_hop6 {
        if nh.is_unspecified() || nh.is_multicast() || nh.is_loopback() {
            errors.push(e(
                "must be a unicast IPv6 address (the MUX's address the router forwards IPv6 VIP traffic to)",
                "next_hop6",
                format!("\"{nh}\""),
            ));
        } else if c.frontends.iter().any(|f| f.address == IpAddr::V6(nh)) {
            errors.push(e(
                "must not be a frontend address: the router would route the VIP to itself",
                "next_hop6",
                format!("\"{nh}\""),
            ));
        }
    }
}

/// The IPv6 next hop announced for IPv6 VIPs: `[bgp] next_hop6`, else the `address6` of the
/// first interface that has one (`None` without `[bgp]`).
pub fn next_hop6(c: &Config) -> Option<Ipv6Addr> {
    let bgp = c.bgp.as_ref()?;
    bgp.next_hop6
        .or_else(|| c.interfaces.iter().find_map(|i| i.address6.map(|a| a.addr)))
}

/// Whether `s` is a standard community `"ASN:VALUE"` with both halves 0..=65535.
pub fn community_ok(s: &str) -> bool {
    let Some((a, b)) = s.split_once(':') else {
        return false;
    };
    let half = |x: &str| {
        !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()) && x.parse::<u16>().is_ok()
    };
    half(a) && half(b)
}

fn communities(bgp: &Bgp, errors: &mut Vec<ConfigError>) {
    for (i, s) in bgp.communities.iter().enumerate() {
        if !community_ok(s) {
            errors.push(e(
                "must be a standard community \"ASN:VALUE\", each half 0..=65535, e.g. \"65000:100\"",
                format!("communities[{i}]"),
                format!("\"{s}\""),
            ));
        }
    }
}

fn peers(bgp: &Bgp, errors: &mut Vec<ConfigError>) {
    if bgp.peers.is_empty() {
        errors.push(
            ConfigError::new(
                "bgp",
                "at least one [[bgp.peers]] entry (address, remote_as) is needed",
            )
            .field("peers"),
        );
    }
    let mut seen: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (i, p) in bgp.peers.iter().enumerate() {
        let f = |k: &str| format!("peers[{i}].{k}");
        if !unicast(p.address) {
            errors.push(e(
                "must be a unicast IPv4 address",
                f("address"),
                format!("\"{}\"", p.address),
            ));
        } else if let Some(first) = seen.get(&p.address) {
            errors.push(e(
                format!("duplicate peer; already defined by peers[{first}]"),
                f("address"),
                format!("\"{}\"", p.address),
            ));
        } else {
            seen.insert(p.address, i);
        }
        if !as_ok(p.remote_as) {
            errors.push(e(
                "must be an AS number 1..=4294967295",
                f("remote_as"),
                p.remote_as.to_string(),
            ));
        }
        if p.hold_time_seconds != 0 && !(3..=65535).contains(&p.hold_time_seconds) {
            errors.push(e(
                "must be 0 (no keepalives) or 3..=65535 seconds",
                f("hold_time_seconds"),
                p.hold_time_seconds.to_string(),
            ));
        }
    }
}
