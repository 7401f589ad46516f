//! Outbound rules (SNAT, docs/design.md §2.2 and §6.2): frontends, pools, allocated ports per
//! member and per worker, one rule per member address and protocol, idle timeouts.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{expand, proto_name, q, ConfigError, Owner, Validator};
use crate::config::model::{BackendPool, OutboundRule, Protocol};
use crate::config::snat_plan::{DEFAULT_SNAT_TABLE_MAX_POOL, SNAT_PORTS_PER_FRONTEND};

impl<'a> Validator<'a> {
    /// Every worker owns a sub-block of each member's SNAT block (docs/design.md §6.2), so a
    /// block needs at least one port per worker.
    fn snat_workers(&mut self, i: usize, r: &OutboundRule, pool: &BackendPool) {
        let ppm = crate::config::snat_plan::ports_per_member(r, pool.members.len());
        let workers = self.c.dataplane.workers;
        if ppm > 0 && u32::from(ppm) < workers {
            let msg = format!(
                "{ppm} SNAT ports per member cannot be split over the {workers} workers ([dataplane] workers): each worker owns a sub-block of every member's block; valid: at least {workers} ports per member (a multiple of 8), or fewer workers"
            );
            self.err(
                ConfigError::new("outbound_rules", msg)
                    .entry(i, Some(&r.name))
                    .field("allocated_outbound_ports")
                    .value(r.allocated_outbound_ports.to_string()),
            );
        }
    }

    pub(super) fn outbound_rules(&mut self) {
        let c = self.c;
        const T: &str = "outbound_rules";
        self.names(T, c.outbound_rules.iter().map(|r| r.name.as_str()));
        // (member address, tcp?, udp?) -> owner, for the one-rule-per-member check.
        let mut taken: HashMap<(IpAddr, u8), Owner> = HashMap::new();
        for (i, r) in c.outbound_rules.iter().enumerate() {
            let e = |m: String| ConfigError::new(T, m).entry(i, Some(&r.name));
            if r.frontends.is_empty() {
                self.err(
                    e("needs at least one frontend name".into())
                        .field("frontends")
                        .value("[]"),
                );
            }
            let mut seen: Vec<&str> = Vec::new();
            for (k, fe) in r.frontends.iter().enumerate() {
                let field = format!("frontends[{k}]");
                if seen.contains(&fe.as_str()) {
                    self.err(
                        e("frontend listed twice".into())
                            .field(field.clone())
                            .value(q(fe)),
                    );
                }
                seen.push(fe);
                self.frontend_ref(T, i, &r.name, &field, fe);
                let ha = c.load_balancing_rules.iter().enumerate().find(|(_, l)| {
                    &l.frontend == fe && l.frontend_port == 0 && l.protocol == Protocol::All
                });
                if let Some((k, l)) = ha {
                    self.err(
                        e(format!(
                            "frontend {} carries the HA-ports rule load_balancing_rules[{k}] (\"{}\"), which takes every port, so no SNAT port is left; valid: a frontend without an HA-ports rule",
                            q(fe),
                            l.name
                        ))
                        .field(field.clone())
                        .value(q(fe)),
                    );
                }
            }
            let pool = self.pool_ref(T, i, &r.name, "backend_pool", &r.backend_pool);
            self.outbound_family(i, r, pool);
            let a = r.allocated_outbound_ports;
            if a % 8 != 0 {
                self.err(
                    e("must be 0 (Azure's default table) or a multiple of 8".into())
                        .field("allocated_outbound_ports")
                        .value(a.to_string()),
                );
            }
            let nfe = r.frontends.len().max(1) as u64;
            if let Some(pool) = pool {
                let members = pool.members.len() as u64;
                let per_fe = u64::from(SNAT_PORTS_PER_FRONTEND);
                if a > 0 && u64::from(a) * members.max(1) > per_fe {
                    self.err(
                        e(format!(
                            "{a} ports x {} members = {} ports on each frontend IP, over its {per_fe} SNAT ports (each member gets {a} ports on every one of the rule's {nfe} frontend IPs, {} in all, at most {per_fe} x {nfe}); valid: at most {} ports per member, or fewer members",
                            members.max(1),
                            u64::from(a) * members.max(1),
                            u64::from(a) * members.max(1) * nfe,
                            (per_fe / members.max(1)) / 8 * 8
                        ))
                        .field("allocated_outbound_ports")
                        .value(a.to_string()),
                    );
                }
                self.snat_workers(i, r, pool);
                if a == 0 && pool.members.len() > DEFAULT_SNAT_TABLE_MAX_POOL {
                    self.err(
                        e(format!(
                            "the default SNAT table covers pools of up to {DEFAULT_SNAT_TABLE_MAX_POOL} members but pool \"{}\" has {}; set a multiple of 8",
                            pool.name,
                            pool.members.len()
                        ))
                        .field("allocated_outbound_ports")
                        .value("0"),
                    );
                }
                'members: for m in &pool.members {
                    for proto in expand(r.protocol) {
                        let owner = Owner {
                            table: T,
                            index: i,
                            name: r.name.clone(),
                        };
                        if let Some(prev) = taken.get(&(m.address, proto)) {
                            if prev.index != i {
                                self.err(
                                    e(format!(
                                        "member \"{}\" ({}) already gets {} SNAT from {}; a member may be in one outbound rule per protocol",
                                        m.name,
                                        m.address,
                                        proto_name(proto),
                                        prev.describe()
                                    ))
                                    .field("backend_pool")
                                    .value(q(&r.backend_pool)),
                                );
                                break 'members;
                            }
                        } else {
                            taken.insert((m.address, proto), owner);
                        }
                    }
                }
            }
            self.idle(
                T,
                i,
                &r.name,
                r.idle_timeout_minutes,
                r.idle_timeout_seconds,
                120,
            );
        }
    }
}
