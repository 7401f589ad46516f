//! Scale-out: announcing the VIPs to the routers through a BGP daemon.
//!
//! vipmux does not speak BGP itself. It decides, per VIP, whether this MUX should attract its
//! traffic ([`decide`](mod@decide), pure), and a daemon-specific driver behind the [`BgpSpeaker`] trait turns
//! the wanted set into the daemon's commands ([`exabgp`]: ExaBGP's process API, with the
//! `vipmux bgp-helper` process of [`helper`] as the bridge between the control socket and the
//! daemon). When vipmux dies the helper fails to reach it and exits, ExaBGP stops with it, and the
//! routers withdraw the routes with the session.

pub mod decide;
pub mod exabgp;
pub mod helper;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use decide::{
    decide, graceful_phase_open, AnnounceVerdict, Readiness, VipDecision, WithdrawReason,
};

/// One announcement: a VIP as a host route (/32 or /128) with its next hop and communities.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    /// The frontend's name.
    pub frontend: String,
    /// The VIP (announced as a /32 when IPv4, a /128 when IPv6).
    pub prefix: IpAddr,
    /// Next hop the routers forward the VIP's traffic to (of the VIP's family).
    pub next_hop: IpAddr,
    /// Standard communities `"ASN:VALUE"`.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// What the BGP helper reports with each `bgp` control request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpReport {
    /// Session state per peer address as the daemon last reported it (`up`, `down`, `connected`).
    #[serde(default)]
    pub sessions: std::collections::BTreeMap<String, String>,
    /// What the daemon was told to announce.
    #[serde(default)]
    pub announced: Vec<Route>,
}

impl Route {
    /// The announced prefix, `VIP/32` or `VIP/128`.
    pub fn cidr(&self) -> String {
        let len = if self.prefix.is_ipv4() { 32 } else { 128 };
        format!("{}/{len}", self.prefix)
    }
}

/// A BGP daemon driver: keeps the daemon's announcements equal to the wanted set.
pub trait BgpSpeaker {
    /// Announces what `wanted` holds and the daemon lacks (or holds differently), withdraws what
    /// the daemon announces and `wanted` lacks; returns how many commands were sent.
    fn apply(&mut self, wanted: &[Route]) -> std::io::Result<usize>;
    /// What the daemon was last told to announce, by VIP.
    fn announced(&self) -> Vec<Route>;
}

/// GRACEFUL_SHUTDOWN well-known community (RFC 8326): routers lower the route's preference.
pub const GRACEFUL_SHUTDOWN: &str = "65535:0";

impl BgpReport {
    /// Whether the daemon was told to announce something, and every route of it with
    /// [`GRACEFUL_SHUTDOWN`] (a drain's graceful phase has reached the daemon).
    pub fn announces_graceful(&self) -> bool {
        !self.announced.is_empty()
            && self
                .announced
                .iter()
                .all(|r| r.communities.iter().any(|c| c == GRACEFUL_SHUTDOWN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(communities: &[&[&str]]) -> BgpReport {
        let announced = communities
            .iter()
            .enumerate()
            .map(|(i, cs)| Route {
                frontend: format!("fe{i}"),
                prefix: IpAddr::from([10, 9, 0, i as u8]),
                next_hop: IpAddr::from([10, 1, 0, 2]),
                communities: cs.iter().map(|c| c.to_string()).collect(),
            })
            .collect();
        BgpReport {
            announced,
            ..BgpReport::default()
        }
    }

    #[test]
    fn graceful_only_when_every_announced_route_carries_the_community() {
        assert!(
            report(&[&[GRACEFUL_SHUTDOWN], &["65010:1", GRACEFUL_SHUTDOWN]]).announces_graceful()
        );
        assert!(!report(&[&[GRACEFUL_SHUTDOWN], &["65010:1"]]).announces_graceful());
        assert!(!report(&[&[]]).announces_graceful());
        assert!(!report(&[]).announces_graceful(), "nothing announced");
    }
}
