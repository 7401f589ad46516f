//! Reading: from the selected load balancer's JSON to the importer's [`Model`], one step per
//! kind of sub-resource (frontends, pools, probes, load-balancing, inbound NAT and outbound
//! rules). Every reference is checked against the names defined before it.

use std::net::{IpAddr, Ipv4Addr};

use super::importer::{nic_label, quoted_list, Importer};
use super::json::{join, Node};
use super::model::{Common, Fe, LbRule, Mem, Model, NatRule, Outbound, Pool, ProbeM};
use super::ImportError;

/// Azure's rule protocols and vipmux's names for them.
const PROTO: &[(&str, &str)] = &[("Tcp", "tcp"), ("Udp", "udp"), ("All", "all")];

/// The names rules may refer to.
struct Defined {
    /// Every frontend's name, the skipped (IPv6) ones included.
    frontends: Vec<String>,
    /// The frontends skipped because they are IPv6.
    skipped_frontends: Vec<String>,
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
        let mut skipped_frontends = Vec::new();
        for fe in lb.items("frontendIPConfigurations")? {
            if let Some(f) = self.read_frontend(&fe, &mut skipped_frontends)? {
                m.frontends.push(f);
            }
        }
        self.check_overrides(&m)?;
        for p in lb.items("backendAddressPools")? {
            let pool = self.read_pool(&p)?;
            m.pools.push(pool);
        }
        for p in lb.items("probes")? {
            let probe = self.read_probe(&p, &mut m)?;
            m.probes.push(probe);
        }
        let mut frontends: Vec<String> = m.frontends.iter().map(|f| f.name.clone()).collect();
        frontends.extend(skipped_frontends.iter().cloned());
        let defined = Defined {
            frontends,
            skipped_frontends,
            pools: m.pools.iter().map(|p| p.name.clone()).collect(),
            probes: m.probes.iter().map(|p| p.name.clone()).collect(),
        };
        for r in lb.items("loadBalancingRules")? {
            if let Some(rule) = self.read_lb_rule(&r, &defined)? {
                m.lb_rules.push(rule);
            }
        }
        for r in lb.items("inboundNatRules")? {
            if let Some(rule) = self.read_nat_rule(&r, &defined, &m.pools)? {
                m.nat_rules.push(rule);
            }
        }
        for r in lb.items("outboundRules")? {
            if let Some(rule) = self.read_outbound(&r, &defined)? {
                m.outbound.push(rule);
            }
        }
        Ok(m)
    }

    /// Notes and warnings about load-balancer-wide features vipmux does not import.
    fn report_unsupported(&mut self, lb: &Node<'a>) -> Result<(), ImportError> {
        if let Some(sku) = lb.get("sku") {
            let tier = sku.get("name").and_then(|n| n.v.as_str()).unwrap_or("");
            if tier.eq_ignore_ascii_case("Basic") {
                self.note("sku Basic: vipmux implements Standard SKU semantics");
            } else if tier.eq_ignore_ascii_case("Gateway") {
                self.warn("sku Gateway: gateway load balancer chaining is not supported; the rules are imported as ordinary rules");
            }
        }
        if let Some(props) = lb.get("properties") {
            if props.get("copy").is_some() {
                self.warn(format!(
                    "{}: property copy loops are not expanded; the arrays they generate are missing",
                    join(&props.path, "copy")
                ));
            }
        }
        if !lb.items("inboundNatPools")?.is_empty() {
            self.warn(format!(
                "{}: inbound NAT pools (virtual machine scale sets) are not imported; use an inbound NAT rule with frontendPortRangeStart/End and a backendAddressPool",
                lb.path_of("inboundNatPools")
            ));
        }
        Ok(())
    }

    /// One frontend; `None` (and its name in `skipped`) when it is IPv6.
    fn read_frontend(
        &mut self,
        fe: &Node<'a>,
        skipped: &mut Vec<String>,
    ) -> Result<Option<Fe>, ImportError> {
        let name = self.name_of(fe, "frontend IP configuration")?;
        let ipv6 = self
            .opt_string(fe, "privateIPAddressVersion")?
            .is_some_and(|v| v.eq_ignore_ascii_case("IPv6"));
        let private = self.opt_string(fe, "privateIPAddress")?;
        let over = self
            .opt_overrides()
            .find(|(n, _)| n == &name)
            .map(|(_, a)| *a);
        let mut f = Fe {
            name: name.clone(),
            addr: None,
            missing: None,
        };
        if let Some(a) = over {
            f.addr = Some(a);
        } else if let Some(p) = private.as_deref().filter(|p| !p.is_empty()) {
            match p.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => f.addr = Some(a),
                Ok(IpAddr::V6(_)) => {
                    self.warn(format!("frontend \"{name}\": IPv6 address {p} skipped (vipmux is IPv4 only), with the rules that use it"));
                    skipped.push(name);
                    return Ok(None);
                }
                Err(_) => {
                    return Err(ImportError::new(
                        fe.path_of("privateIPAddress"),
                        format!("{p:?} is not an IP address"),
                    ))
                }
            }
        } else if ipv6 {
            self.warn(format!("frontend \"{name}\": IPv6 frontend skipped (vipmux is IPv4 only), with the rules that use it"));
            skipped.push(name);
            return Ok(None);
        } else if let Some((pip, _)) = self.ref_name(fe, "publicIPAddress")? {
            f.missing = Some(format!(
                "public IP address \"{pip}\" is referenced by id and its address is not in the input"
            ));
        } else if let Some((pfx, _)) = self.ref_name(fe, "publicIPPrefix")? {
            f.missing = Some(format!(
                "public IP prefix \"{pfx}\" is referenced by id and its addresses are not in the input"
            ));
        } else {
            f.missing = Some(
                "no privateIPAddress (dynamic allocation is decided by Azure at deployment)"
                    .to_string(),
            );
        }
        if let Some(why) = &f.missing {
            self.placeholders += 1;
            self.warn(format!(
                "frontend \"{name}\": {why}; fill in its address or rerun with --frontend-address {name}=IP"
            ));
        }
        if fe.get("gatewayLoadBalancer").is_some() {
            self.note(format!(
                "frontend \"{name}\": gatewayLoadBalancer chaining ignored"
            ));
        }
        Ok(Some(f))
    }

    /// Every `--frontend-address` must name a frontend that was read.
    fn check_overrides(&self, m: &Model) -> Result<(), ImportError> {
        for (n, _) in self.opt_overrides() {
            if !m.frontends.iter().any(|f| &f.name == n) {
                let names: Vec<String> = m.frontends.iter().map(|f| f.name.clone()).collect();
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
            nic_members: Vec::new(),
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
            let label = nic_label(&id);
            if !pool.nic_members.contains(&label) {
                pool.nic_members.push(label);
            }
        }
        if !pool.nic_members.is_empty() {
            self.placeholders += pool.nic_members.len();
            self.warn(format!(
                "pool \"{name}\": {} member(s) are NIC IP configurations ({}) whose addresses are not in the input; add them as members (commented placeholders in the output)",
                pool.nic_members.len(),
                pool.nic_members.join(", ")
            ));
        }
        if !p.items("tunnelInterfaces")?.is_empty() {
            self.note(format!(
                "pool \"{name}\": tunnelInterfaces (gateway load balancer) ignored"
            ));
        }
        Ok(pool)
    }

    /// The `i`-th backend address of `pool`: a member, a NIC IP configuration, or skipped (IPv6).
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
                pool.nic_members.push(nic_label(
                    nic.get("id").and_then(|i| i.v.as_str()).unwrap_or(""),
                ));
                return Ok(());
            }
            return Err(ImportError::new(
                a.path_of("ipAddress"),
                "a backend address needs an ipAddress (or a networkInterfaceIPConfiguration)",
            ));
        };
        let addr: Ipv4Addr = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(x)) => x,
            Ok(IpAddr::V6(_)) => {
                self.warn(format!(
                    "pool \"{}\": IPv6 member {ip} skipped (vipmux is IPv4 only)",
                    pool.name
                ));
                return Ok(());
            }
            Err(_) => {
                return Err(ImportError::new(
                    a.path_of("ipAddress"),
                    format!("{ip:?} is not an IP address"),
                ))
            }
        };
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
            interval: self.opt_u32(p, "intervalInSeconds")?,
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
            self.warn(format!(
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
        self.check_ref(&pool, &pool_path, "backend pool", &defined.pools)?;
        let probe = match self.ref_name(r, "probe")? {
            Some((p, path)) => {
                self.check_ref(&p, &path, "probe", &defined.probes)?;
                Some(p)
            }
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
        if self.opt_bool(r, "disableOutboundSnat")? == Some(false) {
            self.note(format!("load-balancing rule \"{name}\": disableOutboundSnat ignored; vipmux gives members outbound SNAT only through outbound rules"));
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

    /// One inbound NAT rule: a port range over a pool, or a single-VM rule (commented out in
    /// the output); `None` when it is skipped (IPv6 frontend).
    fn read_nat_rule(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
        pools: &[Pool],
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
            self.check_ref(&pool, &path, "backend pool", &defined.pools)?;
            let start = self.required(start, r, "frontendPortRangeStart")?;
            let end = self.required(end, r, "frontendPortRangeEnd")?;
            return Ok(Some(NatRule::Range {
                c,
                start: Some(start),
                end: Some(end),
                pool,
            }));
        }
        self.read_single_nat_rule(r, c, pools).map(Some)
    }

    /// A single-VM inbound NAT rule (its target is a NIC IP configuration).
    fn read_single_nat_rule(
        &mut self,
        r: &Node<'a>,
        c: Common,
        pools: &[Pool],
    ) -> Result<NatRule, ImportError> {
        let frontend_port = self.opt_u32(r, "frontendPort")?;
        let frontend_port = self.required(frontend_port, r, "frontendPort")?;
        let nic = r
            .get("backendIPConfiguration")
            .and_then(|b| b.get("id"))
            .and_then(|i| i.v.as_str())
            .map(nic_label);
        self.placeholders += 1;
        self.warn(format!(
            "inbound NAT rule \"{}\": its target is {}, not a pool member; it is emitted commented out: add the VM as a member and set target = {{ pool, member }}",
            c.name,
            match &nic {
                Some(n) => format!("NIC IP configuration {n}"),
                None => "a NIC IP configuration that the input does not show (it is set on the NIC)".to_string(),
            }
        ));
        let pool = nic.as_ref().and_then(|n| {
            pools
                .iter()
                .find(|p| p.nic_members.contains(n))
                .map(|p| p.name.clone())
        });
        Ok(NatRule::Single {
            c,
            frontend_port: Some(frontend_port),
            nic,
            pool,
        })
    }

    /// One outbound rule; `None` when it has no IPv4 frontend.
    fn read_outbound(
        &mut self,
        r: &Node<'a>,
        defined: &Defined,
    ) -> Result<Option<Outbound>, ImportError> {
        let name = self.name_of(r, "outbound rule")?;
        let mut frontends = Vec::new();
        for f in r.items("frontendIPConfigurations")? {
            let (fe, path) = self.ref_of(&f)?;
            self.check_ref(&fe, &path, "frontend IP configuration", &defined.frontends)?;
            if defined.skipped_frontends.contains(&fe) {
                self.warn(format!(
                    "outbound rule \"{name}\": IPv6 frontend \"{fe}\" dropped"
                ));
                continue;
            }
            frontends.push(fe);
        }
        if frontends.is_empty() {
            self.warn(format!(
                "outbound rule \"{name}\" has no IPv4 frontend and is skipped"
            ));
            return Ok(None);
        }
        let (pool, path) = self.required(
            self.ref_name(r, "backendAddressPool")?,
            r,
            "backendAddressPool",
        )?;
        self.check_ref(&pool, &path, "backend pool", &defined.pools)?;
        Ok(Some(Outbound {
            name,
            frontends,
            pool,
            protocol: self.enum_field(r, "protocol", PROTO)?,
            ports: self.opt_u32(r, "allocatedOutboundPorts")?,
            idle: self.opt_u32(r, "idleTimeoutInMinutes")?,
            reset: self.opt_bool(r, "enableTcpReset")?.unwrap_or(false),
        }))
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
        self.check_ref(
            &frontend,
            &path,
            "frontend IP configuration",
            &defined.frontends,
        )?;
        if defined.skipped_frontends.contains(&frontend) {
            self.warn(format!(
                "rule \"{name}\" skipped: its frontend \"{frontend}\" is IPv6"
            ));
            return Ok(None);
        }
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
