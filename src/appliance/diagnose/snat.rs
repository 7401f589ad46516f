//! The `snat_exhausted` check: members whose new outbound connections found no free SNAT port,
//! with the ports they hold broken down by destination (from the workers' translations, walked
//! at control time).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::balance::snapshot::OutboundInfo;
use crate::balance::{MemberId, Snapshot};
use crate::control::report::DiagnoseReport;
use crate::dataplane::WorkerCounters;
use crate::flow::key::PROTO_UDP;
use crate::flow::Translation;

/// The workers' SNAT translations of both families, as listed at control time.
#[derive(Debug, Clone, Default)]
pub struct SnatListing {
    /// IPv4 translations.
    pub v4: Vec<Translation>,
    /// IPv6 translations.
    pub v6: Vec<Translation<u128>>,
}

impl SnatListing {
    /// Every translation's (member, frontend, SNAT port, remote, remote port, protocol), either
    /// family.
    fn ends(&self) -> impl Iterator<Item = (IpAddr, IpAddr, u16, IpAddr, u16, u8)> + '_ {
        let v4 = self.v4.iter().map(|t| {
            let a = |x: u32| IpAddr::V4(Ipv4Addr::from(x));
            let (m, f, r) = (a(t.member), a(t.frontend), a(t.remote));
            (m, f, t.snat_port, r, t.remote_port, t.proto)
        });
        let v6 = self.v6.iter().map(|t| {
            let a = |x: u128| IpAddr::V6(Ipv6Addr::from(x));
            let (m, f, r) = (a(t.member), a(t.frontend), a(t.remote));
            (m, f, t.snat_port, r, t.remote_port, t.proto)
        });
        v4.chain(v6)
    }
}

/// Destinations named per exhausted member (the busiest first).
pub const TOP_DESTINATIONS: usize = 5;

/// What the check suggests.
const FIX: &str = "raise allocated_outbound_ports (a multiple of 8), add frontend IPs to the outbound rule, or reuse connections";

/// Members whose new outbound connections found no free SNAT port since the previous call;
/// `translations` lists the workers' SNAT translations (called only when a member is named).
pub fn snat_check(
    report: &mut DiagnoseReport,
    snap: &Snapshot,
    delta: &WorkerCounters,
    window: Duration,
    translations: &dyn Fn() -> SnatListing,
) {
    if snap.outbound.is_empty() {
        let why = "not applicable: no outbound rules".into();
        report.add("snat_exhausted", "n/a", String::new(), why, "");
        return;
    }
    let mut listed: Option<SnatListing> = None;
    for o in &snap.outbound {
        for (member, ports) in o.ports_by_member() {
            let Some(s) = delta.snat.get(member.index()).filter(|s| s.exhausted > 0) else {
                continue;
            };
            let ts = listed.get_or_insert_with(translations);
            let (name, addr) = snap
                .member(member)
                .map_or(("?", IpAddr::V4(Ipv4Addr::UNSPECIFIED)), |m| {
                    (m.name.as_str(), m.addr)
                });
            let seen = format!(
                "{} new outbound connections found no free port in the last {}s ({} of {} ports in use; by destination: {})",
                s.exhausted,
                window.as_secs(),
                s.used_ports(),
                ports,
                by_destination(&ports_by_destination(ts, o, member, addr)),
            );
            report.add(
                "snat_exhausted",
                "warn",
                format!("member {name} of outbound rule {}", o.name),
                seen,
                FIX,
            );
        }
    }
}

/// A destination of outbound connections: `IP:port` for TCP, the IP for UDP (a member socket
/// keeps one SNAT port per destination IP).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    /// The remote address.
    pub addr: IpAddr,
    /// The remote port (TCP), `None` for UDP.
    pub port: Option<u16>,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{} tcp", std::net::SocketAddr::new(self.addr, p)),
            None => write!(f, "{} udp", self.addr),
        }
    }
}

/// The SNAT ports (frontend IP and port) `member` (address `addr`) holds in `o`'s blocks, per
/// destination, the most ports first (ties by destination).
pub fn ports_by_destination(
    translations: &SnatListing,
    o: &OutboundInfo,
    member: MemberId,
    addr: IpAddr,
) -> Vec<(Destination, usize)> {
    let blocks: Vec<_> = o.blocks.iter().filter(|b| b.member == member).collect();
    let mut ports: BTreeMap<Destination, BTreeSet<(IpAddr, u16)>> = BTreeMap::new();
    for (m, fe, snat_port, remote, remote_port, proto) in translations.ends() {
        if m != addr
            || !blocks
                .iter()
                .any(|b| b.frontend_addr == fe && b.contains(snat_port))
        {
            continue;
        }
        let dest = Destination {
            addr: remote,
            port: (proto != PROTO_UDP).then_some(remote_port),
        };
        ports.entry(dest).or_default().insert((fe, snat_port));
    }
    let mut out: Vec<(Destination, usize)> = ports.into_iter().map(|(d, p)| (d, p.len())).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// `10.9.0.10:7000 tcp 16, 10.9.0.10 udp 2` for the first [`TOP_DESTINATIONS`], then how many
/// more; "none listed" when there is none.
pub fn by_destination(dests: &[(Destination, usize)]) -> String {
    if dests.is_empty() {
        return "none listed".into();
    }
    let mut s: Vec<String> = dests
        .iter()
        .take(TOP_DESTINATIONS)
        .map(|(d, n)| format!("{d} {n}"))
        .collect();
    if dests.len() > TOP_DESTINATIONS {
        s.push(format!("and {} more", dests.len() - TOP_DESTINATIONS));
    }
    s.join(", ")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::flow::key::PROTO_TCP;

    /// Translations of member 10.1.0.11 (frontend 10.1.0.100, block from `first`): three TCP
    /// ports toward 192.0.2.1:443, one of them again toward 192.0.2.1:80, one UDP port toward
    /// two ports of 198.51.100.7; and two that are not the member's block (another member, a
    /// port outside).
    pub fn translations(first: u16) -> Vec<Translation> {
        let t = |member: [u8; 4], remote: [u8; 4], remote_port, proto, snat_port| Translation {
            member: u32::from(Ipv4Addr::from(member)),
            member_port: 40000,
            remote: u32::from(Ipv4Addr::from(remote)),
            remote_port,
            proto,
            frontend: u32::from(Ipv4Addr::new(10, 1, 0, 100)),
            snat_port,
            ..Translation::default()
        };
        let (m, other) = ([10, 1, 0, 11], [10, 1, 0, 12]);
        let (web, dns) = ([192, 0, 2, 1], [198, 51, 100, 7]);
        vec![
            t(m, web, 443, PROTO_TCP, first),
            t(m, web, 443, PROTO_TCP, first + 1),
            t(m, web, 443, PROTO_TCP, first + 2),
            t(m, web, 80, PROTO_TCP, first),
            t(m, dns, 53, PROTO_UDP, first + 3),
            t(m, dns, 5353, PROTO_UDP, first + 3),
            t(other, web, 443, PROTO_TCP, first + 3),
            t(m, web, 443, PROTO_TCP, 60000),
        ]
    }

    #[test]
    fn the_busiest_destinations_are_named_then_how_many_more() {
        let d = |i: u8, n| {
            let dest = Destination {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
                port: (i % 2 == 0).then_some(443),
            };
            (dest, n)
        };
        let dests: Vec<_> = (1..=7).map(|i| d(i, 10 - usize::from(i))).collect();
        assert_eq!(
            by_destination(&dests),
            "192.0.2.1 udp 9, 192.0.2.2:443 tcp 8, 192.0.2.3 udp 7, 192.0.2.4:443 tcp 6, \
             192.0.2.5 udp 5, and 2 more"
        );
        assert_eq!(by_destination(&dests[..1]), "192.0.2.1 udp 9");
        assert_eq!(by_destination(&[]), "none listed");
        let six = Destination {
            addr: "2001:db8::7".parse().unwrap(),
            port: Some(443),
        };
        assert_eq!(by_destination(&[(six, 3)]), "[2001:db8::7]:443 tcp 3");
    }
}
