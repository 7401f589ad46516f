//! Address families (docs/design.md §2.2 rule 12, §2.5): an interface's IPv6 address and gateway, a pool's
//! members of one family, a rule's frontend and pool of one family (a dual-stack VIP is two
//! frontends), an outbound rule's frontends and pool of one family, and what is IPv4 only for now
//! (encapsulated floating IP).

use std::net::IpAddr;

use super::{list, q, unicast, ConfigError, Validator};
use crate::config::model::{family_name, BackendPool, Interface, Member, OutboundRule};

/// Whether `pool` holds members of both families (reported once, by `pool_family`).
fn mixed(pool: &BackendPool) -> bool {
    let mut members = pool.members.iter();
    members
        .next()
        .is_some_and(|first| members.any(|m| m.address.is_ipv4() != first.address.is_ipv4()))
}

/// Whether `ip` is an IPv6 link-local address (`fe80::/10`).
fn link_local6(ip: std::net::Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

impl<'a> Validator<'a> {
    /// `address6` and `gateway6` of the `i`-th interface.
    pub(super) fn interface6(&mut self, i: usize, itf: &Interface) {
        let e = |m: &str| ConfigError::new("interfaces", m).entry(i, Some(&itf.name));
        if let Some(a6) = itf.address6 {
            if a6.prefix_len == 0 {
                self.err(
                    e("prefix length must be 1..=128, e.g. \"fd00:1::2/64\"")
                        .field("address6")
                        .value(q(&a6.to_string())),
                );
            }
            if !unicast(IpAddr::V6(a6.addr)) || link_local6(a6.addr) {
                self.err(
                    e("must be a global or unique-local unicast address with its prefix, e.g. \"fd00:1::2/64\"")
                        .field("address6")
                        .value(q(&a6.to_string())),
                );
            }
        }
        let Some(gw) = itf.gateway6 else { return };
        let ok = match itf.address6 {
            None => {
                self.err(
                    e("gateway6 needs address6, the appliance's own IPv6 address on this port")
                        .field("gateway6")
                        .value(q(&gw.to_string())),
                );
                return;
            }
            Some(a6) => gw != a6.addr && (link_local6(gw) || a6.prefix_len > 0 && a6.contains(gw)),
        };
        if !ok {
            let a6 = itf.address6.map(|a| a.to_string()).unwrap_or_default();
            self.err(
                e(&format!(
                    "gateway6 must be a link-local address (fe80::/10) or another address inside the interface's prefix {a6}"
                ))
                .field("gateway6")
                .value(q(&gw.to_string())),
            );
        }
    }

    /// The members of the `i`-th pool are of one family (one error per pool).
    pub(super) fn pool_family(&mut self, i: usize, pool: &BackendPool) {
        let Some(first) = pool.members.first() else {
            return;
        };
        let other = pool
            .members
            .iter()
            .enumerate()
            .find(|(_, m)| m.address.is_ipv4() != first.address.is_ipv4());
        if let Some((j, m)) = other {
            let (fam, first_fam) = (family_name(m.address), family_name(first.address));
            self.err(
                ConfigError::new(
                    "backend_pools",
                    format!(
                        "{fam} address in a pool whose members[0] (\"{}\") is {first_fam}; a pool's members are of one family (put the {fam} members in a pool of their own)",
                        first.name
                    ),
                )
                .entry(i, Some(&pool.name))
                .field(format!("members[{j}].address"))
                .value(q(&m.address.to_string())),
            );
        }
    }

    /// A rule's frontend and the members it sends to are of one family. `field` names the rule's
    /// pool reference.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rule_family(
        &mut self,
        table: &str,
        i: usize,
        name: &str,
        frontend: &str,
        field: &str,
        pool: &BackendPool,
        members: &[&Member],
    ) {
        let Some(fe) = self.c.frontends.iter().find(|f| f.name == frontend) else {
            return;
        };
        if mixed(pool) {
            return;
        }
        let e = |m: String| ConfigError::new(table, m).entry(i, Some(name));
        if let Some(m) = members
            .iter()
            .find(|m| m.address.is_ipv4() != fe.address.is_ipv4())
        {
            self.err(
                e(format!(
                    "pool \"{}\" has {} members (\"{}\" is {}) but frontend \"{}\" is {} ({}); a rule's frontend and pool must be one family (a dual-stack frontend is two frontends, one per family, each with a rule over a pool of its family)",
                    pool.name,
                    family_name(m.address),
                    m.name,
                    m.address,
                    fe.name,
                    family_name(fe.address),
                    fe.address
                ))
                .field(field)
                .value(q(&pool.name)),
            );
        }
    }

    /// An outbound rule is of one family: its frontends and its pool's members (IPv4 or IPv6).
    pub(super) fn outbound_family(
        &mut self,
        i: usize,
        r: &OutboundRule,
        pool: Option<&BackendPool>,
    ) {
        let c = self.c;
        let e = |m: String| ConfigError::new("outbound_rules", m).entry(i, Some(&r.name));
        let fes: Vec<_> = r
            .frontends
            .iter()
            .enumerate()
            .filter_map(|(k, name)| Some((k, c.frontends.iter().find(|f| &f.name == name)?)))
            .collect();
        let pool = pool.filter(|p| !mixed(p));
        // The family is the pool's (its first member's), else the first frontend's.
        let first_member = pool.and_then(|p| p.members.first());
        let Some(v4) = first_member
            .map(|m| m.address.is_ipv4())
            .or_else(|| fes.first().map(|(_, f)| f.address.is_ipv4()))
        else {
            return;
        };
        let family = if v4 { "IPv4" } else { "IPv6" };
        let of_pool = first_member.map_or(String::new(), |m| {
            format!(
                " (pool \"{}\" has {family} members, \"{}\" is {})",
                r.backend_pool, m.name, m.address
            )
        });
        for (k, fe) in fes.iter().filter(|(_, f)| f.address.is_ipv4() != v4) {
            let valid = list(
                c.frontends
                    .iter()
                    .filter(|f| f.address.is_ipv4() == v4)
                    .map(|f| f.name.as_str()),
            );
            self.err(
                e(format!(
                    "frontend \"{}\" is {} ({}); an outbound rule is of one family{of_pool}; valid: an {family} frontend: {valid}",
                    fe.name,
                    family_name(fe.address),
                    fe.address
                ))
                .field(format!("frontends[{k}]"))
                .value(q(&fe.name)),
            );
        }
    }
}
