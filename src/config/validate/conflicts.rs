//! Conflicts between rules: the same (frontend, protocol, port) claimed twice (port ranges and
//! HA ports included), and two non-floating rules sending to the same (member address,
//! protocol, backend port).

use std::collections::HashMap;
use std::net::IpAddr;

use super::{expand, proto_name, BackendUse, ConfigError, FrontendRules, Owner, Validator};
use crate::config::model::Protocol;

impl<'a> Validator<'a> {
    /// Unique (frontend, protocol, port); HA ports only with floating-IP rules.
    pub(super) fn frontend_conflicts(&mut self) {
        let c = self.c;
        let mut keys: HashMap<(&str, u8, u32), Owner> = HashMap::new();
        // frontend -> (owner of HA rule, all rules as (owner, floating))
        let mut per_fe: HashMap<&str, FrontendRules> = HashMap::new();
        for (i, r) in c.load_balancing_rules.iter().enumerate() {
            let owner = Owner {
                table: "load_balancing_rules",
                index: i,
                name: r.name.clone(),
            };
            let entry = per_fe.entry(&r.frontend).or_default();
            entry.1.push((owner.clone(), r.enable_floating_ip));
            if r.frontend_port == 0 {
                if r.protocol == Protocol::All {
                    entry.0.push(owner.clone());
                    self.claim(&mut keys, &r.frontend, 0, 0, 0, &owner, "frontend_port");
                }
                continue;
            }
            for p in expand(r.protocol) {
                self.claim(
                    &mut keys,
                    &r.frontend,
                    p,
                    r.frontend_port,
                    r.frontend_port,
                    &owner,
                    "frontend_port",
                );
            }
        }
        for (i, r) in c.inbound_nat_rules.iter().enumerate() {
            let owner = Owner {
                table: "inbound_nat_rules",
                index: i,
                name: r.name.clone(),
            };
            per_fe
                .entry(&r.frontend)
                .or_default()
                .1
                .push((owner.clone(), r.enable_floating_ip));
            let (lo, hi, field) = match (
                r.frontend_port,
                r.frontend_port_range_start,
                r.frontend_port_range_end,
            ) {
                (Some(p), None, None) => (p, p, "frontend_port"),
                (None, Some(s), Some(e)) if s <= e => (s, e, "frontend_port_range_start"),
                _ => continue,
            };
            for p in expand(r.protocol) {
                self.claim(&mut keys, &r.frontend, p, lo, hi, &owner, field);
            }
        }
        let mut fes: Vec<_> = per_fe.into_iter().collect();
        fes.sort_by_key(|(f, _)| *f);
        for (fe, (ha, rules)) in fes {
            let Some(ha_owner) = ha.first() else { continue };
            if rules.len() < 2 {
                continue;
            }
            for (owner, floating) in &rules {
                if !floating {
                    self.err(
                        ConfigError::new(
                            owner.table,
                            format!(
                                "frontend \"{fe}\" has the HA-ports rule {}; every rule on that frontend, the HA-ports rule included, must set enable_floating_ip = true",
                                ha_owner.describe()
                            ),
                        )
                        .entry(owner.index, Some(&owner.name))
                        .field("enable_floating_ip")
                        .value("false"),
                    );
                }
            }
        }
    }

    /// Claims frontend ports lo..=hi of `proto` (0 = HA ports) for `owner`.
    #[allow(clippy::too_many_arguments)]
    fn claim<'k>(
        &mut self,
        keys: &mut HashMap<(&'k str, u8, u32), Owner>,
        fe: &'k str,
        proto: u8,
        lo: u32,
        hi: u32,
        owner: &Owner,
        field: &str,
    ) {
        for port in lo..=hi.min(65535) {
            if let Some(prev) = keys.get(&(fe, proto, port)) {
                let what = if proto == 0 {
                    format!(
                        "frontend \"{fe}\" already has the HA-ports rule {}",
                        prev.describe()
                    )
                } else if lo == hi {
                    format!(
                        "frontend \"{fe}\" {} port {port} is already used by {}",
                        proto_name(proto),
                        prev.describe()
                    )
                } else {
                    format!(
                        "port range {lo}..={hi} overlaps {} on frontend \"{fe}\" {} port {port}",
                        prev.describe(),
                        proto_name(proto)
                    )
                };
                let value = lo.to_string();
                self.err(
                    ConfigError::new(owner.table, what)
                        .entry(owner.index, Some(&owner.name))
                        .field(field)
                        .value(value),
                );
                return;
            }
            keys.insert((fe, proto, port), owner.clone());
        }
    }

    /// Unique (member address, protocol, backend port) among non-floating rules.
    pub(super) fn backend_conflicts(&mut self) {
        let c = self.c;
        // member address -> [(proto (0 = HA: every protocol and port), port, owner)]
        let mut dests: HashMap<IpAddr, Vec<(u8, u32, Owner)>> = HashMap::new();
        let pools = &self.pools_by_name;
        let pool = |n: &str| pools.get(n).copied();
        let mut work: Vec<BackendUse> = Vec::new();
        for (i, r) in c.load_balancing_rules.iter().enumerate() {
            if r.enable_floating_ip {
                continue;
            }
            let Some(p) = pool(&r.backend_pool) else {
                continue;
            };
            let ha = r.frontend_port == 0 && r.protocol == Protocol::All;
            let bp = if ha {
                0
            } else {
                r.backend_port.unwrap_or(r.frontend_port)
            };
            let ms = p
                .members
                .iter()
                .map(|m| (m.name.clone(), m.address))
                .collect();
            let owner = Owner {
                table: "load_balancing_rules",
                index: i,
                name: r.name.clone(),
            };
            work.push((owner, ms, r.protocol, bp, ha));
        }
        for (i, r) in c.inbound_nat_rules.iter().enumerate() {
            if r.enable_floating_ip {
                continue;
            }
            let ms: Vec<(String, IpAddr)> = match (&r.target, &r.backend_pool) {
                (Some(t), None) => pool(&t.pool)
                    .and_then(|p| p.members.iter().find(|m| m.name == t.member))
                    .map(|m| vec![(m.name.clone(), m.address)])
                    .unwrap_or_default(),
                (None, Some(p)) => pool(p)
                    .map(|p| {
                        p.members
                            .iter()
                            .map(|m| (m.name.clone(), m.address))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => continue,
            };
            let owner = Owner {
                table: "inbound_nat_rules",
                index: i,
                name: r.name.clone(),
            };
            work.push((owner, ms, r.protocol, r.backend_port, false));
        }
        for (owner, members, protocol, bp, ha) in work {
            let protos: Vec<u8> = if ha { vec![0] } else { expand(protocol) };
            'members: for (mname, addr) in members {
                let list = dests.entry(addr).or_default();
                for &proto in &protos {
                    let clash = list.iter().find(|(p2, port2, o2)| {
                        !(o2.table == owner.table && o2.index == owner.index)
                            && (proto == 0 || *p2 == 0 || (*p2 == proto && *port2 == bp))
                    });
                    if let Some((_, _, prev)) = clash {
                        let what = if proto == 0 {
                            "every port".to_string()
                        } else {
                            format!("{} port {bp}", proto_name(proto))
                        };
                        let msg = format!(
                            "member \"{mname}\" ({addr}) {what} is already the backend destination of non-floating {}; each non-floating rule needs a unique backend destination (use another backend_port or enable_floating_ip)",
                            prev.describe()
                        );
                        let field = if owner.table == "load_balancing_rules" && ha {
                            "frontend_port"
                        } else {
                            "backend_port"
                        };
                        self.errors.push(
                            ConfigError::new(owner.table, msg)
                                .entry(owner.index, Some(&owner.name))
                                .field(field)
                                .value(bp.to_string()),
                        );
                        break 'members;
                    }
                }
                for &proto in &protos {
                    list.push((proto, bp, owner.clone()));
                }
            }
        }
    }
}
