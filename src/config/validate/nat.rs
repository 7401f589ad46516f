//! Inbound NAT rules (docs/design.md §2.2): the single form (one frontend port to one member)
//! and the range form (a frontend port range over a pool), their mappings and backend ports.

use super::{list, port_ok, q, ConfigError, Validator};
use crate::config::model::{DsrEncapsulation, InboundNatRule, Member};

/// The table of inbound NAT rules.
const NAT: &str = "inbound_nat_rules";

/// An error about the `i`-th inbound NAT rule `r`.
fn nat_error(i: usize, r: &InboundNatRule, m: String) -> ConfigError {
    ConfigError::new(NAT, m).entry(i, Some(&r.name))
}

impl<'a> Validator<'a> {
    pub(super) fn nat_rules(&mut self) {
        let c = self.c;
        self.names(NAT, c.inbound_nat_rules.iter().map(|r| r.name.as_str()));
        for (i, r) in c.inbound_nat_rules.iter().enumerate() {
            self.nat_rule(i, r);
        }
    }

    /// One inbound NAT rule: its form (one member or a port range over a pool), the mapping of
    /// that form, the backend port, the idle timeout and floating IP.
    fn nat_rule(&mut self, i: usize, r: &'a InboundNatRule) {
        let e = |m: String| nat_error(i, r, m);
        self.frontend_ref(NAT, i, &r.name, "frontend", &r.frontend);
        let single = r.frontend_port.is_some() || r.target.is_some();
        let range = r.frontend_port_range_start.is_some()
            || r.frontend_port_range_end.is_some()
            || r.backend_pool.is_some();
        if single && range {
            self.err(e(
                "use either frontend_port + target (one member) or frontend_port_range_start/end + backend_pool (a pool), not both".into(),
            ));
        } else if !single && !range {
            self.err(e(
                "missing the mapping: give frontend_port + target = { pool, member }, or frontend_port_range_start/end + backend_pool".into(),
            ));
        }
        let (dsr, members) = if single && !range {
            self.nat_single(i, r)
        } else if range && !single {
            self.nat_range(i, r)
        } else {
            (DsrEncapsulation::None, Vec::new())
        };
        let pool_ref = match (&r.target, &r.backend_pool) {
            (Some(t), _) => Some((&t.pool, "target.pool")),
            (None, Some(p)) => Some((p, "backend_pool")),
            (None, None) => None,
        };
        if let Some((pool, field)) = pool_ref.filter(|_| !members.is_empty()) {
            if let Some(pool) = self.pools_by_name.get(pool.as_str()).copied() {
                let fe = &r.frontend;
                self.rule_family(NAT, i, &r.name, fe, field, pool, &members);
            }
        }
        if !port_ok(r.backend_port) {
            self.err(
                e("must be 1..=65535".into())
                    .field("backend_port")
                    .value(r.backend_port.to_string()),
            );
        }
        self.idle(
            NAT,
            i,
            &r.name,
            r.idle_timeout_minutes,
            r.idle_timeout_seconds,
            100,
        );
        if r.enable_floating_ip && dsr == DsrEncapsulation::None {
            self.floating_on_link(NAT, i, &r.name, &members);
        }
    }

    /// The one-member form (`frontend_port` + `target`); returns the target pool's DSR
    /// encapsulation and the member, when they resolve.
    fn nat_single(
        &mut self,
        i: usize,
        r: &'a InboundNatRule,
    ) -> (DsrEncapsulation, Vec<&'a Member>) {
        let e = |m: String| nat_error(i, r, m);
        let mut members: Vec<&Member> = Vec::new();
        let mut dsr = DsrEncapsulation::None;
        match r.frontend_port {
            None => self.err(
                e("required with target: the frontend port, 1..=65535".into())
                    .field("frontend_port"),
            ),
            Some(p) if !port_ok(p) => self.err(
                e("must be 1..=65535".into())
                    .field("frontend_port")
                    .value(p.to_string()),
            ),
            _ => {}
        }
        match &r.target {
            None => self.err(
                e(
                    "required with frontend_port: target = { pool = \"...\", member = \"...\" }"
                        .into(),
                )
                .field("target"),
            ),
            Some(t) => {
                if let Some(pool) = self.pool_ref(NAT, i, &r.name, "target.pool", &t.pool) {
                    dsr = pool.dsr_encapsulation;
                    match pool.members.iter().find(|m| m.name == t.member) {
                        Some(m) => members.push(m),
                        None => {
                            let valid = list(pool.members.iter().map(|m| m.name.as_str()));
                            self.err(
                                e(format!(
                                    "no such member in pool \"{}\"; its members: {valid}",
                                    pool.name
                                ))
                                .field("target.member")
                                .value(q(&t.member)),
                            );
                        }
                    }
                }
            }
        }
        (dsr, members)
    }

    /// The port-range form (`frontend_port_range_start/end` + `backend_pool`); returns the
    /// pool's DSR encapsulation and members, when it resolves.
    fn nat_range(
        &mut self,
        i: usize,
        r: &'a InboundNatRule,
    ) -> (DsrEncapsulation, Vec<&'a Member>) {
        let e = |m: String| nat_error(i, r, m);
        let mut members: Vec<&Member> = Vec::new();
        let mut dsr = DsrEncapsulation::None;
        let start = r.frontend_port_range_start;
        let end = r.frontend_port_range_end;
        self.nat_range_ports(i, r);
        match &r.backend_pool {
            None => self.err(
                e("required in the port-range form: the pool whose members take the slots".into())
                    .field("backend_pool"),
            ),
            Some(p) => {
                if let Some(pool) = self.pool_ref(NAT, i, &r.name, "backend_pool", p) {
                    dsr = pool.dsr_encapsulation;
                    members.extend(pool.members.iter());
                    if let (Some(s), Some(en)) = (start, end) {
                        let slots = (en as usize + 1).saturating_sub(s as usize);
                        if en >= s && slots < pool.members.len() {
                            self.err(
                                e(format!(
                                    "the range holds {slots} ports but pool \"{}\" has {} members; make the range at least as large as the pool",
                                    pool.name,
                                    pool.members.len()
                                ))
                                .field("frontend_port_range_end")
                                .value(en.to_string()),
                            );
                        }
                    }
                }
            }
        }
        (dsr, members)
    }

    /// The bounds of a port range: both present, valid ports, in order.
    fn nat_range_ports(&mut self, i: usize, r: &InboundNatRule) {
        let e = |m: String| nat_error(i, r, m);
        let start = r.frontend_port_range_start;
        let end = r.frontend_port_range_end;
        for (field, v) in [
            ("frontend_port_range_start", start),
            ("frontend_port_range_end", end),
        ] {
            match v {
                None => {
                    self.err(e("required in the port-range form, 1..=65535".into()).field(field))
                }
                Some(p) if !port_ok(p) => self.err(
                    e("must be 1..=65535".into())
                        .field(field)
                        .value(p.to_string()),
                ),
                _ => {}
            }
        }
        if let (Some(s), Some(en)) = (start, end) {
            if port_ok(s) && port_ok(en) && en < s {
                self.err(
                    e(format!("must be >= frontend_port_range_start ({s})"))
                        .field("frontend_port_range_end")
                        .value(en.to_string()),
                );
            }
        }
    }
}
