//! The importer's model: what was read from the template, before it is written as TOML.
//!
//! It is closer to the template than to [`crate::config::Config`]: it keeps what the output needs
//! as comments (a frontend's missing address and why, NIC IP configurations that are members
//! without an address, single-VM NAT rules) and the settings as Azure gave them (minutes).

use std::net::IpAddr;

/// A frontend IP configuration.
#[derive(Debug)]
pub(super) struct Fe {
    /// Its name.
    pub(super) name: String,
    /// Its address (IPv4 or IPv6), when the input (or the operator) gives it.
    pub(super) addr: Option<IpAddr>,
    /// Whether it is IPv6 (its address, or `privateIPAddressVersion = IPv6` without one).
    pub(super) ipv6: bool,
    /// Why the address is missing (placeholder comment).
    pub(super) missing: Option<String>,
}

/// A pool member with an address.
#[derive(Debug)]
pub(super) struct Mem {
    /// Its name (the backend address's, or `member-N`).
    pub(super) name: String,
    /// Its address (IPv4 or IPv6).
    pub(super) addr: IpAddr,
    /// `up` or `down`; `None` when Azure says `None` or nothing.
    pub(super) admin_state: Option<&'static str>,
}

/// A pool member whose address the input does not give (a placeholder in the output).
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// The member's name in the output.
    pub(super) name: String,
    /// What it is in the template (`NIC IP configuration nic1/ipconfig1`, a scale-set instance);
    /// empty when the input names no member of the pool at all.
    pub(super) what: String,
}

/// A backend address pool.
#[derive(Debug)]
pub(super) struct Pool {
    /// Its name.
    pub(super) name: String,
    /// Members with an address.
    pub(super) members: Vec<Mem>,
    /// Members without an address here (NIC IP configurations, scale-set instances).
    pub(super) pending: Vec<Pending>,
}

impl Pool {
    /// Whether a member (with or without an address) is named `name`.
    pub(super) fn has_member(&self, name: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.name.eq_ignore_ascii_case(name))
            || self
                .pending
                .iter()
                .any(|m| m.name.eq_ignore_ascii_case(name))
    }
}

/// A health probe.
#[derive(Debug)]
pub(super) struct ProbeM {
    /// Its name.
    pub(super) name: String,
    /// `tcp`, `http` or `https`.
    pub(super) protocol: &'static str,
    /// The probed port.
    pub(super) port: Option<u32>,
    /// The HTTP(S) path.
    pub(super) request_path: Option<String>,
    /// Seconds between probes.
    pub(super) interval: Option<u32>,
    /// Consecutive results that change the state.
    pub(super) threshold: Option<u32>,
}

/// Fields shared by load-balancing and inbound NAT rules.
#[derive(Debug, Default)]
pub(super) struct Common {
    /// The rule's name.
    pub(super) name: String,
    /// Its frontend's name.
    pub(super) frontend: String,
    /// `tcp`, `udp` or `all`.
    pub(super) protocol: &'static str,
    /// The members' port.
    pub(super) backend_port: Option<u32>,
    /// Floating IP (direct server return).
    pub(super) floating: bool,
    /// Idle timeout in minutes.
    pub(super) idle: Option<u32>,
    /// TCP reset on idle timeout.
    pub(super) reset: bool,
}

/// A load-balancing rule.
#[derive(Debug)]
pub(super) struct LbRule {
    /// The fields it shares with NAT rules.
    pub(super) c: Common,
    /// The frontend port (0 with protocol `all` = HA ports).
    pub(super) frontend_port: Option<u32>,
    /// Its backend pool.
    pub(super) pool: String,
    /// Its probe.
    pub(super) probe: Option<String>,
    /// `source_ip` or `source_ip_protocol`; `None` = the default 5-tuple.
    pub(super) distribution: Option<&'static str>,
}

/// An inbound NAT rule.
#[derive(Debug)]
pub(super) enum NatRule {
    /// Single-VM rule whose target is a NIC IP configuration: emitted with its target when the
    /// template makes that NIC a member of a pool, else commented out.
    Single {
        /// The fields it shares with load-balancing rules.
        c: Common,
        /// The frontend port.
        frontend_port: Option<u32>,
        /// The target NIC IP configuration (`nic/ipconfig`), when the input shows it.
        nic: Option<String>,
        /// The target as a pool member (`pool`, `member`), when the template says it.
        target: Option<(String, String)>,
    },
    /// A port range over the members of a pool.
    Range {
        /// The fields it shares with load-balancing rules.
        c: Common,
        /// First frontend port.
        start: Option<u32>,
        /// Last frontend port.
        end: Option<u32>,
        /// The pool whose members take the ports.
        pool: String,
    },
}

/// An outbound rule (of one family: an Azure rule with frontends of both is split in two).
#[derive(Debug, Clone)]
pub(super) struct Outbound {
    /// Its name.
    pub(super) name: String,
    /// Its frontends (all IPv4 or all IPv6).
    pub(super) frontends: Vec<String>,
    /// The pool whose members get SNAT.
    pub(super) pool: String,
    /// `tcp`, `udp` or `all`.
    pub(super) protocol: Option<&'static str>,
    /// Ports allocated to each member.
    pub(super) ports: Option<u32>,
    /// Idle timeout in minutes.
    pub(super) idle: Option<u32>,
    /// TCP reset on idle timeout.
    pub(super) reset: bool,
}

/// Everything read from one load balancer.
#[derive(Debug, Default)]
pub(super) struct Model {
    /// Frontends, IPv4 and IPv6.
    pub(super) frontends: Vec<Fe>,
    /// Backend pools.
    pub(super) pools: Vec<Pool>,
    /// Probes.
    pub(super) probes: Vec<ProbeM>,
    /// Load-balancing rules.
    pub(super) lb_rules: Vec<LbRule>,
    /// Inbound NAT rules.
    pub(super) nat_rules: Vec<NatRule>,
    /// Outbound rules.
    pub(super) outbound: Vec<Outbound>,
    /// Some probe asked for `noHealthyBackendsBehavior = AllProbedUp`.
    pub(super) all_probed_up: bool,
    /// Single-VM NAT rules a NIC names (`loadBalancerInboundNatRules`): rule, pool, member.
    pub(super) nat_targets: Vec<NatTarget>,
    /// Inbound NAT pools' members: the NAT pool and the backend pool that holds its instances.
    pub(super) nat_pool_members: Vec<(String, String)>,
}

/// A single-VM NAT rule's target as the NIC side of the template names it.
#[derive(Debug)]
pub(super) struct NatTarget {
    /// The NAT rule's name.
    pub(super) rule: String,
    /// `nic/ipconfig` of the target.
    pub(super) nic: String,
    /// The pool and member name it has in the output, when the NIC is in a pool.
    pub(super) member: Option<(String, String)>,
}

impl Model {
    /// Whether any frontend or member is IPv6 (the interface then needs an `address6`).
    pub(super) fn has_ipv6(&self) -> bool {
        self.frontends.iter().any(|f| f.ipv6)
            || self
                .pools
                .iter()
                .any(|p| p.members.iter().any(|m| m.addr.is_ipv6()))
    }

    /// The pools that serve floating-IP rules (they need a DSR encapsulation).
    pub(super) fn floating_pools(&self) -> std::collections::BTreeSet<&str> {
        self.lb_rules
            .iter()
            .filter(|r| r.c.floating)
            .map(|r| r.pool.as_str())
            .chain(self.nat_rules.iter().filter_map(|r| match r {
                NatRule::Range { c, pool, .. } if c.floating => Some(pool.as_str()),
                _ => None,
            }))
            .collect()
    }
}
