//! Reading: from the selected load balancer's JSON to the importer's [`Model`], one step per
//! kind of sub-resource (frontends, pools, probes, load-balancing, inbound NAT and outbound
//! rules). Every reference is checked against the names defined before it.

use std::net::IpAddr;

use super::importer::{find_name, nic_label, quoted_list, Importer};
use super::json::Node;
use super::model::{Common, Fe, LbRule, Mem, Model, NatRule, Outbound, Pending, Pool, ProbeM};
use super::ImportError;
use crate::config::DsrEncapsulation;

/// Azure's rule protocols and vipmux's names for them.
const PROTO: &[(&str, &str)] = &[("Tcp", "tcp"), ("Udp", "udp"), ("All", "all")];

/// The names rules may refer to.
struct Defined {
    /// Every frontend's name.
    frontends: Vec<String>,
    /// The IPv6 frontends (an outbound rule's are split from its IPv4 ones).
    ipv6_frontends: Vec<String>,
    /// The backend pools' names.
    pools: Vec<String>,
    /// The probes' names.
    probes: Vec<String>,
}

impl<'a> Importer<'a, '_> {
    /// Reads the load balancer `lb` into the model.
    pub(super) fn read(&mut self, lb: &Node<'a>) -> Result<Model, ImportError> {
        let mut m = Model::default();
        self.report_unsupported(lb)?;
        for fe in lb.items("frontendIPConfigurations")? {
            let f = self.read_frontend(&fe)?;
            m.frontends.push(f);
        }
        self.check_overrides(&m)?;
        self.read_pools(lb, &mut m)?;
        for p in lb.items("probes")? {
            let probe = self.read_probe(&p, &mut m)?;
            m.probes.push(probe);
        }
        let names = |v6: bool| {
            m.frontends
                .iter()
                .filter(|f| f.ipv6 || !v6)
                .map(|f| f.name.clone())
                .collect()
        };
        let defined = Defined {
            frontends: names(false),
            ipv6_frontends: names(true),
            pools: m.pools.iter().map(|p| p.name.clone()).collect(),
            probes: m.probes.iter().map(|p| p.name.clone()).collect(),
        };
        self.read_rules(lb, &defined, &mut m)?;
        self.floating_needs_interface(&m);
        self.one_family_per_pool(&m);
        Ok(m)
    }

    /// A vipmux rule's frontend and pool are of one family: a pool that serves rules on IPv4
    /// and on IPv6 frontends (one Azure pool can, e.g. of the Global tier) needs splitting.
    fn one_family_per_pool(&mut self, m: &Model) {
        let ipv6 = |fe: &str| m.frontends.iter().find(|f| f.name == fe).map(|f| f.ipv6);
        let lb = m.lb_rules.iter().map(|r| (&r.pool, &r.c.frontend));
        let nat = m.nat_rules.iter().filter_map(|r| match r {
            NatRule::Range { c, pool, .. } => Some((pool, &c.frontend)),
            NatRule::Single { .. } => None,
        });
        let out = m
            .outbound
            .iter()
            .flat_map(|o| o.frontends.iter().map(move |f| (&o.pool, f)));
        let mut families: std::collections::BTreeMap<&str, (bool, bool)> = Default::default();
        for (pool, fe) in lb.chain(nat).chain(out) {
            let e = families.entry(pool.as_str()).or_default();
            match ipv6(fe) {
                Some(true) => e.1 = true,
                Some(false) => e.0 = true,
                None => {}
            }
        }
        for (pool, _) in families.into_iter().filter(|(_, f)| f.0 && f.1) {
            self.placeholders += 1;
            self.warn(format!(
                "pool \"{pool}\" serves rules on IPv4 and on IPv6 frontends; a vipmux rule's frontend and pool are of one family: split the pool into one per family and point each rule at its family's pool"
            ));
        }
    }

    /// Floating-IP pools delivered unencapsulated need their members on-link of an interface,
    /// which only the operator can declare: one placeholder.
    fn floating_needs_interface(&mut self, m: &Model) {
        let pools = m.floating_pools();
        if pools.is_empty() || self.opts.floating_ip_encapsulation != DsrEncapsulation::None {
            return;
        }
        self.placeholders += 1;
        self.warn(format!(
            "pools {} serve floating-IP rules, which Azure delivers unencapsulated (dsr_encapsulation = \"none\"): declare the [[interfaces]] entry whose subnet holds their members (FILL IN in the header), or rerun with --dsr-encapsulation ipip|gue if the members decapsulate",
            pools.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ")
        ));
    }

    /// The pools (the load balancer's, its child resources', and the members the NICs and scale
    /// sets of the template add), then a warning per pool with placeholder members.
    fn read_pools(&mut self, lb: &Node<'a>, m: &mut Model) -> Result<(), ImportError> {
        let mut pools = lb.items("backendAddressPools")?;
        pools.extend(self.children_of_type("backendAddressPools"));
        for p in pools {
            let pool = self.read_pool(&p)?;
            m.pools.push(pool);
        }
        self.read_resource_members(m)?;
        for pool in &m.pools {
            let v6 = pool.members.iter().filter(|x| x.addr.is_ipv6()).count();
            if v6 > 0 && v6 < pool.members.len() {
                // vipmux pools are of one family (a rule's frontend and pool are of one family).
                self.placeholders += 1;
                self.warn(format!(
                    "pool \"{}\" holds IPv4 and IPv6 members; a vipmux pool is of one family: split it into two pools, one per family, and give each family's rules its pool",
                    pool.name
                ));
            }
        }
        for pool in &mut m.pools {
            if pool.members.is_empty() && pool.pending.is_empty() {
                // Without members every rule of the pool drops its traffic: ask for them.
                self.placeholders += 1;
                self.warnings.push(format!(
                    "pool \"{}\": the input names no member (they are added outside it); fill in its members (a commented placeholder in the output)",
                    pool.name
                ));
                pool.pending.push(Pending {
                    name: "member-1".to_string(),
                    what: String::new(),
                });
            } else if !pool.pending.is_empty() {
                self.placeholders += pool.pending.len();
                self.warnings.push(format!(
                    "pool \"{}\": {} member(s) without an address in the input ({}); fill in their addresses (commented placeholders in the output)",
                    pool.name,
                    pool.pending.len(),
                    pool.pending.iter().map(|p| p.what.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The load-balancing, inbound NAT (the child resources' too), NAT pool and outbound rules.
    fn read_rules(
        &mut self,
        lb: &Node<'a>,
        defined: &Defined,
        m: &mut Model,
    ) -> Result<(), ImportError> {
        for r in lb.items("loadBalancingRules")? {
            if let Some(rule) = self.read_lb_rule(&r, defined)? {
                m.lb_rules.push(rule);
            }
        }
        let mut nat = lb.items("inboundNatRules")?;
        nat.extend(self.children_of_type("inboundNatRules"));
        for r in nat {
            if let Some(rule) = self.read_nat_rule(&r, defined, m)? {
                m.nat_rules.push(rule);
            }
        }
        for r in lb.items("inboundNatPools")? {
            if let Some(rule) = self.read_nat_pool(&r, defined, m)? {
                m.nat_rules.push(rule);
            }
        }
        for r in lb.items("outboundRules")? {
            let rules = self.read_outbound(&r, defined, m)?;
            m.outbound.extend(rules);
        }
        for c in self.children.clone() {
            let ty = c.get("type").and_then(|t| t.v.as_str()).unwrap_or("");
            let kind = ty.rsplit('/').next().unwrap_or("");
            if !kind.eq_ignore_ascii_case("inboundNatRules")
                && !kind.eq_ignore_ascii_case("backendAddressPools")
            {
                self.untranslated(format!(
                    "{}: child resource of type {ty} has no vipmux equivalent",
                    c.path
                ));
            }
        }
        Ok(())
    }

    /// The child resources whose type ends with `/kind` (or is `kind`, nested).
    fn children_of_type(&self, kind: &str) -> Vec<Node<'a>> {
        self.children
            .iter()
            .filter(|c| {
                let ty = c.get("type").and_then(|t| t.v.as_str()).unwrap_or("");
                ty.rsplit('/')
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
            .cloned()
            .collect()
    }

    /// Notes and placeholders about load-balancer-wide features vipmux does not import.
    fn report_unsupported(&mut self, lb: &Node<'a>) -> Result<(), ImportError> {
        if let Some(sku) = lb.get("sku") {
            let tier = sku.get("name").and_then(|n| n.v.as_str()).unwrap_or("");
            if tier.eq_ignore_ascii_case("Basic") {
                self.note("sku Basic: vipmux implements Standard SKU semantics");
            } else if tier.eq_ignore_ascii_case("Gateway") {
                self.untranslated("sku Gateway: gateway load balancer chaining is not supported; the rules are imported as ordinary rules");
            }
            let t = sku.get("tier").and_then(|n| n.v.as_str()).unwrap_or("");
            if t.eq_ignore_ascii_case("Global") {
                self.untranslated("sku tier Global (cross-region load balancer): vipmux balances within one region; its members (regional load balancers' frontends) are placeholders to replace with the regional backends");
            }
        }
        Ok(())
    }

    /// One frontend, IPv4 or IPv6.
    fn read_frontend(&mut self, fe: &Node<'a>) -> Result<Fe, ImportError> {
        let name = self.name_of(fe, "frontend IP configuration")?;
        let ipv6 = self
            .opt_string(fe, "privateIPAddressVersion")?
            .is_some_and(|v| v.eq_ignore_ascii_case("IPv6"));
        let private = self.opt_string(fe, "privateIPAddress")?;
        let over = self
            .opt_overrides()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .last()
            .map(|(_, a)| *a);
        let given = match over {
            Some(a) => Some(a),
            None => match private.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => Some(p.parse::<IpAddr>().map_err(|_| {
                    ImportError::new(
                        fe.path_of("privateIPAddress"),
                        format!("{p:?} is not an IP address"),
                    )
                })?),
                None => None,
            },
        };
        let mut f = Fe {
            name: name.clone(),
            addr: given,
            ipv6: given.map_or(ipv6, |a| a.is_ipv6()),
            missing: None,
        };
        if given.is_none() {
            f.missing = Some(self.missing_address(fe)?);
        }
        if let Some(why) = &f.missing {
            self.placeholders += 1;
            let family = if f.ipv6 { "IPv6 " } else { "" };
            self.warn(format!(
                "frontend \"{name}\": {why}; fill in its {family}address or rerun with --frontend-address {name}=IP"
            ));
        }
        if fe.get("gatewayLoadBalancer").is_some() {
            self.note(format!(
                "frontend \"{name}\": gatewayLoadBalancer chaining ignored"
            ));
        }
        Ok(f)
    }

    /// Why a frontend without a private address has no address in the input.
    fn missing_address(&self, fe: &Node<'a>) -> Result<String, ImportError> {
        Ok(
            if let Some((pip, _)) = self.ref_name(fe, "publicIPAddress")? {
                format!(
                "public IP address \"{pip}\" is referenced by id and its address is not in the input"
            )
            } else if let Some((pfx, _)) = self.ref_name(fe, "publicIPPrefix")? {
                format!(
                "public IP prefix \"{pfx}\" is referenced by id and its addresses are not in the input"
            )
            } else {
                "no privateIPAddress (dynamic allocation is decided by Azure at deployment)"
                    .to_string()
            },
        )
    }

    /// Every `--frontend-address` must name a frontend that was read.
    fn check_overrides(&self, m: &Model) -> Result<(), ImportError> {
        for (n, _) in self.opt_overrides() {
            let names: Vec<String> = m.frontends.iter().map(|f| f.name.clone()).collect();
            if find_name(&names, n).is_none() {
                return Err(ImportError::new(
                    "--frontend-address",
                    format!(
                        "no frontend named \"{n}\"; the load balancer's frontends: {}",
                        quoted_list(&names)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One backend pool: its addressed members and its NIC IP configuration members.
    fn read_pool(&mut self, p: &Node<'a>) -> Result<Pool, ImportError> {
        let name = self.name_of(p, "backend address pool")?;
        let mut pool = Pool {
            name: name.clone(),
            members: Vec::new(),
            pending: Vec::new(),
        };
        for (i, a) in p
            .items("loadBalancerBackendAddresses")?
            .into_iter()
            .enumerate()
        {
            self.read_backend_address(&a, i, &mut pool)?;
        }
        for c in p.items("backendIPConfigurations")? {
            let id = c
                .get("id")
                .and_then(|i| i.v.as_str())
                .unwrap_or("")
                .to_string();
            push_nic(&mut pool, &nic_label(&id));
        }
        if !p.items("tunnelInterfaces")?.is_empty() {
            self.note(format!(
                "pool \"{name}\": tunnelInterfaces (gateway load balancer) ignored"
            ));
        }
        Ok(pool)
    }

    /// The `i`-th backend address of `pool`: a member (IPv4 or IPv6) or a NIC IP configuration.
    fn read_backend_address(
        &mut self,
        a: &Node<'a>,
        i: usize,
        pool: &mut Pool,
    ) -> Result<(), ImportError> {
        let ip = self.opt_string(a, "ipAddress")?;
        let mname = self.opt_string(a, "name")?;
        let Some(ip) = ip.filter(|s| !s.is_empty()) else {
            if let Some(nic) = a.get("networkInterfaceIPConfiguration") {
                let (_, _) = self.ref_of(&nic)?;
                let label = nic_label(nic.get("id").and_then(|i| i.v.as_str()).unwrap_or(""));
                push_nic(pool, &label);
                return Ok(());
            }
            if let Some(fe) = a.get("loadBalancerFrontendIPConfiguration") {
                let (fe, _) = self.ref_of(&fe)?;
                let name = mname
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("member-{}", i + 1));
                pool.pending.push(Pending {
                    name,
                    what: format!("regional load balancer frontend {fe}"),
                });
                return Ok(());
            }
            return Err(ImportError::new(
                a.path_of("ipAddress"),
                "a backend address needs an ipAddress (or a networkInterfaceIPConfiguration)",
            ));
        };
        let addr: IpAddr = ip.parse().map_err(|_| {
            ImportError::new(
                a.path_of("ipAddress"),
                format!("{ip:?} is not an IP address"),
            )
        })?;
        let admin_state = self.enum_field(
            a,
            "adminState",
            &[("None", "none"), ("Up", "up"), ("Down", "down")],
        )?;
        let mut mname = mname
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("member-{}", i + 1));
        if pool.members.iter().any(|x| x.name == mname) {
            mname = format!("{mname}-{}", i + 1);
        }
        pool.members.push(Mem {
            name: mname,
            addr,
            admin_state: admin_state.filter(|s| *s != "none"),
        });
        Ok(())
    }

    /// One probe; `AllProbedUp` is recorded in `m` (it is appliance-wide in vipmux).
    fn read_probe(&mut self, p: &Node<'a>, m: &mut Model) -> Result<ProbeM, ImportError> {
        let name = self.name_of(p, "probe")?;
        let protocol = self.enum_field(
            p,
            "protocol",
            &[("Tcp", "tcp"), ("Http", "http"), ("Https", "https")],
        )?;
        let protocol = self.required(protocol, p, "protocol")?;
        let mut request_path = self.opt_string(p, "requestPath")?;
        if protocol == "tcp" && request_path.is_some() {
            self.note(format!(
                "probe \"{name}\": requestPath ignored on a Tcp probe"
            ));
            request_path = None;
        }
        let threshold = self.opt_u32(p, "probeThreshold")?;
        let number = self.opt_u32(p, "numberOfProbes")?;
        if let (Some(t), Some(n)) = (threshold, number) {
            if t != n {
                self.note(format!("probe \"{name}\": numberOfProbes {n} ignored; probeThreshold {t} used (as Azure does)"));
            }
        }
        if let Some(b) = self.opt_string(p, "noHealthyBackendsBehavior")? {
            if b.eq_ignore_ascii_case("AllProbedUp") {
                m.all_probed_up = true;
                self.warn(format!("probe \"{name}\": noHealthyBackendsBehavior AllProbedUp is appliance-wide in vipmux: set no_healthy_backends = \"all\" in [appliance]"));
            }
        }
        Ok(ProbeM {
            name,
            protocol,
            port: Some(self.required(self.opt_u32(p, "port")?, p, "port")?),
            request_path,
            // Azure probes every 15 s when the template does not say.
            interval: Some(self.opt_u32(p, "intervalInSeconds")?.unwrap_or(15)),
            threshold: threshold.or(number),
        })
    }

    /// One load-balancing rule; `None` when it is skipped (IPv6 frontend, no pool).
    fn read_lb_rule(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
    ) -> Result<Option<LbRule>, ImportError> {
        let name = self.name_of(r, "load-balancing rule")?;
        let Some(c) = self.common(r, &name, PROTO, defined)? else {
            return Ok(None);
        };
        let mut pool = self.ref_name(r, "backendAddressPool")?;
        let plural = r.items("backendAddressPools")?;
        if pool.is_none() {
            if let Some(first) = plural.first() {
                pool = Some(self.ref_of(first)?);
            }
        }
        if plural.len() > 1 {
            self.untranslated(format!(
                "load-balancing rule \"{name}\": {} backend pools; vipmux uses one, \"{}\"",
                plural.len(),
                pool.as_ref().map(|p| p.0.as_str()).unwrap_or("")
            ));
        }
        let Some((pool, pool_path)) = pool else {
            self.warn(format!(
                "load-balancing rule \"{name}\" has no backend pool and is skipped (it forwards nothing in Azure either)"
            ));
            return Ok(None);
        };
        let pool = self.check_ref(&pool, &pool_path, "backend pool", &defined.pools)?;
        let probe = match self.ref_name(r, "probe")? {
            Some((p, path)) => Some(self.check_ref(&p, &path, "probe", &defined.probes)?),
            None => None,
        };
        let distribution = self.enum_field(
            r,
            "loadDistribution",
            &[
                ("Default", "default"),
                ("SourceIP", "source_ip"),
                ("SourceIPProtocol", "source_ip_protocol"),
            ],
        )?;
        match self.opt_bool(r, "disableOutboundSnat")? {
            Some(true) => self.note(format!("load-balancing rule \"{name}\": disableOutboundSnat = true is vipmux's behaviour: members get outbound SNAT only through outbound rules")),
            Some(false) => self.untranslated(format!("load-balancing rule \"{name}\": disableOutboundSnat = false (outbound SNAT through this rule's frontend) is not supported; add an [[outbound_rules]] entry for the pool")),
            None => {}
        }
        let frontend_port = self.opt_u32(r, "frontendPort")?;
        let frontend_port = self.required(frontend_port, r, "frontendPort")?;
        Ok(Some(LbRule {
            c,
            frontend_port: Some(frontend_port),
            pool,
            probe,
            distribution: distribution.filter(|d| *d != "default"),
        }))
    }

    /// One inbound NAT rule: a port range over a pool, or a single-VM rule; `None` when it is
    /// skipped (IPv6 frontend).
    fn read_nat_rule(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
        m: &Model,
    ) -> Result<Option<NatRule>, ImportError> {
        let name = self.name_of(r, "inbound NAT rule")?;
        let Some(c) = self.common(r, &name, PROTO, defined)? else {
            return Ok(None);
        };
        let start = self.opt_u32(r, "frontendPortRangeStart")?;
        let end = self.opt_u32(r, "frontendPortRangeEnd")?;
        let pool = self.ref_name(r, "backendAddressPool")?;
        if start.is_some() || end.is_some() || pool.is_some() {
            let Some((pool, path)) = pool else {
                return Err(ImportError::new(
                    r.path_of("backendAddressPool"),
                    "required with frontendPortRangeStart/End: the pool whose members take the ports",
                ));
            };
            let pool = self.check_ref(&pool, &path, "backend pool", &defined.pools)?;
            let start = self.required(start, r, "frontendPortRangeStart")?;
            let end = self.required(end, r, "frontendPortRangeEnd")?;
            return Ok(Some(NatRule::Range {
                c,
                start: Some(start),
                end: Some(end),
                pool,
            }));
        }
        self.read_single_nat_rule(r, c, m).map(Some)
    }

    /// A single-VM inbound NAT rule (its target is a NIC IP configuration, named on the rule
    /// or, in templates, on the NIC).
    fn read_single_nat_rule(
        &mut self,
        r: &Node<'a>,
        c: Common,
        m: &Model,
    ) -> Result<NatRule, ImportError> {
        let frontend_port = self.opt_u32(r, "frontendPort")?;
        let frontend_port = self.required(frontend_port, r, "frontendPort")?;
        let from_nic = m
            .nat_targets
            .iter()
            .find(|t| t.rule.eq_ignore_ascii_case(&c.name));
        let nic = r
            .get("backendIPConfiguration")
            .and_then(|b| b.get("id"))
            .and_then(|i| i.v.as_str())
            .map(nic_label)
            .or_else(|| from_nic.map(|t| t.nic.clone()));
        let target = from_nic.and_then(|t| t.member.clone()).or_else(|| {
            let n = nic.as_ref()?;
            let what = format!("NIC IP configuration {n}");
            m.pools.iter().find_map(|p| {
                let mem = p.pending.iter().find(|x| x.what == what)?;
                Some((p.name.clone(), mem.name.clone()))
            })
        });
        if target.is_none() {
            self.placeholders += 1;
            self.warn(format!(
                "inbound NAT rule \"{}\": its target is {}, not a pool member; it is emitted commented out: add the VM as a member and set target = {{ pool, member }}",
                c.name,
                match &nic {
                    Some(n) => format!("NIC IP configuration {n}"),
                    None => "a NIC IP configuration that the input does not show".to_string(),
                }
            ));
        }
        Ok(NatRule::Single {
            c,
            frontend_port: Some(frontend_port),
            nic,
            target,
        })
    }

    /// One inbound NAT pool (scale sets): a port range rule over the backend pool that holds the
    /// scale set's instances; `None` when it is skipped (IPv6 frontend, no such pool).
    fn read_nat_pool(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
        m: &Model,
    ) -> Result<Option<NatRule>, ImportError> {
        let name = self.name_of(r, "inbound NAT pool")?;
        let Some(c) = self.common(r, &name, PROTO, defined)? else {
            return Ok(None);
        };
        let start = self.opt_u32(r, "frontendPortRangeStart")?;
        let start = self.required(start, r, "frontendPortRangeStart")?;
        let end = self.opt_u32(r, "frontendPortRangeEnd")?;
        let end = self.required(end, r, "frontendPortRangeEnd")?;
        let pool = m
            .nat_pool_members
            .iter()
            .find(|(np, p)| np.eq_ignore_ascii_case(&name) && !p.is_empty())
            .map(|(_, p)| p.clone());
        let Some(pool) = pool else {
            self.untranslated(format!(
                "inbound NAT pool \"{name}\" ({} ports {start}-{end} to port {}): no scale set of the input puts its instances in a backend pool of this load balancer, and vipmux maps a port range onto a pool's members",
                c.protocol,
                c.backend_port.unwrap_or(0)
            ));
            return Ok(None);
        };
        self.note(format!(
            "inbound NAT pool \"{name}\": imported as a port-range NAT rule over pool \"{pool}\" (the scale set's instances, in member order)"
        ));
        Ok(Some(NatRule::Range {
            c,
            start: Some(start),
            end: Some(end),
            pool,
        }))
    }

    /// One outbound rule: one vipmux rule per family of its frontends. With both, the IPv4
    /// frontends keep the rule's pool and the IPv6 ones become `NAME-v6` over the pool the
    /// load-balancing rules of those frontends send to (see [`Self::ipv6_pool_of`]).
    fn read_outbound(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
        m: &Model,
    ) -> Result<Vec<Outbound>, ImportError> {
        let name = self.name_of(r, "outbound rule")?;
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for f in r.items("frontendIPConfigurations")? {
            let (fe, path) = self.ref_of(&f)?;
            let fe = self.check_ref(&fe, &path, "frontend IP configuration", &defined.frontends)?;
            if defined.ipv6_frontends.contains(&fe) {
                v6.push(fe);
            } else {
                v4.push(fe);
            }
        }
        if v4.is_empty() && v6.is_empty() {
            self.warn(format!(
                "outbound rule \"{name}\" has no frontend and is skipped"
            ));
            return Ok(Vec::new());
        }
        let (pool, path) = self.required(
            self.ref_name(r, "backendAddressPool")?,
            r,
            "backendAddressPool",
        )?;
        let pool = self.check_ref(&pool, &path, "backend pool", &defined.pools)?;
        let base = Outbound {
            name,
            frontends: Vec::new(),
            pool,
            protocol: self.enum_field(r, "protocol", PROTO)?,
            ports: self.opt_u32(r, "allocatedOutboundPorts")?,
            idle: self.opt_u32(r, "idleTimeoutInMinutes")?,
            reset: self.opt_bool(r, "enableTcpReset")?.unwrap_or(false),
        };
        if v4.is_empty() || v6.is_empty() {
            let frontends = if v4.is_empty() { v6 } else { v4 };
            return Ok(vec![Outbound { frontends, ..base }]);
        }
        let mut rules = vec![Outbound {
            frontends: v4,
            ..base.clone()
        }];
        match self.ipv6_pool_of(m, &v6) {
            Some(pool) => {
                let name = format!("{}-v6", base.name);
                self.note(format!(
                    "outbound rule \"{}\": its IPv6 frontends ({}) are imported as outbound rule \"{name}\" over pool \"{pool}\", the pool their load-balancing rules use (a vipmux rule's frontends and pool are of one family)",
                    base.name,
                    v6.join(", ")
                ));
                rules.push(Outbound {
                    name,
                    frontends: v6,
                    pool,
                    ..base
                });
            }
            None => self.untranslated(format!(
                "outbound rule \"{}\": IPv6 frontends {} left out: a vipmux outbound rule's frontends and pool are of one family and no single pool serves rules on them; add an [[outbound_rules]] entry over the IPv6 pool",
                base.name,
                v6.join(", ")
            )),
        }
        Ok(rules)
    }

    /// The one pool the load-balancing and port-range NAT rules on `frontends` send to, if
    /// there is exactly one (the IPv6 pool of a dual-stack outbound rule).
    fn ipv6_pool_of(&self, m: &Model, frontends: &[String]) -> Option<String> {
        let lb = m.lb_rules.iter().map(|r| (&r.c.frontend, &r.pool));
        let nat = m.nat_rules.iter().filter_map(|r| match r {
            NatRule::Range { c, pool, .. } => Some((&c.frontend, pool)),
            NatRule::Single { .. } => None,
        });
        let pools: std::collections::BTreeSet<&String> = lb
            .chain(nat)
            .filter(|(fe, _)| frontends.contains(fe))
            .map(|(_, p)| p)
            .collect();
        let mut it = pools.into_iter();
        match (it.next(), it.next()) {
            (Some(p), None) => Some(p.clone()),
            _ => None,
        }
    }

    /// Fields shared by load-balancing and inbound NAT rules; `None` if the rule is skipped.
    fn common(
        &mut self,
        r: &Node,
        name: &str,
        proto: &[(&str, &'static str)],
        defined: &Defined,
    ) -> Result<Option<Common>, ImportError> {
        let (frontend, path) = self.required(
            self.ref_name(r, "frontendIPConfiguration")?,
            r,
            "frontendIPConfiguration",
        )?;
        let frontend = self.check_ref(
            &frontend,
            &path,
            "frontend IP configuration",
            &defined.frontends,
        )?;
        let protocol = self.required(self.enum_field(r, "protocol", proto)?, r, "protocol")?;
        Ok(Some(Common {
            name: name.to_string(),
            frontend,
            protocol,
            backend_port: self.opt_u32(r, "backendPort")?,
            floating: self.opt_bool(r, "enableFloatingIP")?.unwrap_or(false),
            idle: self.opt_u32(r, "idleTimeoutInMinutes")?,
            reset: self.opt_bool(r, "enableTcpReset")?.unwrap_or(false),
        }))
    }
}

/// Adds the NIC IP configuration `label` to `pool` as a placeholder member (once).
fn push_nic(pool: &mut Pool, label: &str) {
    let what = format!("NIC IP configuration {label}");
    if pool.pending.iter().any(|p| p.what == what) {
        return;
    }
    let mut name = label.split('/').next().unwrap_or(label).to_string();
    if pool.has_member(&name) {
        name = label.replace('/', "-");
    }
    pool.pending.push(Pending { name, what });
}
