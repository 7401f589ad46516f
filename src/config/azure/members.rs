//! Membership declared from the other side: templates usually make a VM a member of a pool
//! from its network interface (`ipConfigurations[].loadBalancerBackendAddressPools`) or, for a
//! scale set, from its network profile, not from the pool. This step reads those resources:
//! a NIC IP configuration with a static address (IPv4 or IPv6) becomes a member, any other one (and
//! every scale-set instance) a placeholder member; NAT rules and NAT pools named there get
//! their targets.

use std::net::IpAddr;

use super::expr::last_segment;
use super::importer::{find_name, Importer};
use super::json::Node;
use super::model::{Mem, Model, NatTarget, Pending, Pool};
use super::ImportError;

/// The ARM type of a network interface.
const NIC_TYPE: &str = "Microsoft.Network/networkInterfaces";
/// The ARM type of a virtual machine scale set.
const VMSS_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets";

impl<'a> Importer<'a, '_> {
    /// Reads the template's NICs and scale sets for members of the load balancer's pools.
    pub(super) fn read_resource_members(&mut self, m: &mut Model) -> Result<(), ImportError> {
        for r in self.resources.clone() {
            let ty = r
                .get("type")
                .and_then(|t| t.v.as_str())
                .unwrap_or("")
                .to_string();
            if ty.eq_ignore_ascii_case(NIC_TYPE) {
                self.read_nic(&r, m)?;
            } else if ty.eq_ignore_ascii_case(VMSS_TYPE) {
                self.read_scale_set(&r, m)?;
            }
        }
        Ok(())
    }

    /// A resource's name, evaluated (the raw text when it cannot be).
    fn resource_name(&self, r: &Node) -> String {
        let Some(n) = r.get("name") else {
            return "(unnamed)".to_string();
        };
        let name = match self.ctx.value(n.v, 0) {
            Ok(v) => v.to_text(),
            Err(_) => n.v.as_str().unwrap_or("(unnamed)").to_string(),
        };
        last_segment(&name).unwrap_or(name)
    }

    /// The name a reference points at when it is one of this load balancer's sub-resources
    /// (an id naming another load balancer is not).
    fn own_ref(&self, r: &Node) -> Option<String> {
        let raw = r.get("id")?.v.as_str()?.to_string();
        let text = self.ctx.id_text(&raw).ok();
        if let Some(t) = &text {
            let segs: Vec<&str> = t.split('/').collect();
            if let Some(i) = segs
                .iter()
                .position(|s| s.eq_ignore_ascii_case("loadBalancers"))
            {
                if let Some(lb) = segs.get(i + 1) {
                    if !lb.eq_ignore_ascii_case(&self.lb_name) {
                        return None;
                    }
                }
            }
        }
        self.ctx.id_name(&raw).ok()
    }

    /// The pools of this load balancer that the references `key` of `ipc` name.
    fn own_pools(&self, ipc: &Node, key: &str, pools: &[Pool]) -> Result<Vec<String>, ImportError> {
        let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
        Ok(ipc
            .items(key)?
            .iter()
            .filter_map(|p| self.own_ref(p))
            .filter_map(|n| find_name(&names, &n).map(str::to_string))
            .collect())
    }

    /// One network interface: its IP configurations in this load balancer's pools.
    fn read_nic(&mut self, r: &Node<'a>, m: &mut Model) -> Result<(), ImportError> {
        let nic = self.resource_name(r);
        let ipcs = r.items("ipConfigurations")?;
        for ipc in &ipcs {
            let ipc_name = self
                .opt_string(ipc, "name")?
                .unwrap_or_else(|| "ipconfig".to_string());
            let label = format!("{nic}/{ipc_name}");
            let addr = self.static_address(ipc)?;
            let mut first = None;
            for pool in self.own_pools(ipc, "loadBalancerBackendAddressPools", &m.pools)? {
                let member = if ipcs.len() > 1 {
                    format!("{nic}-{ipc_name}")
                } else {
                    nic.clone()
                };
                let what = format!("NIC IP configuration {label}");
                add_member(&mut m.pools, &pool, &member, &what, addr);
                first.get_or_insert((pool, member));
            }
            for rule in ipc.items("loadBalancerInboundNatRules")? {
                if let Some(rule) = self.own_ref(&rule) {
                    m.nat_targets.push(NatTarget {
                        rule,
                        nic: label.clone(),
                        member: first.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The static address (IPv4 or IPv6) of a NIC IP configuration, if it has one.
    fn static_address(&self, ipc: &Node) -> Result<Option<IpAddr>, ImportError> {
        let method = self.opt_string(ipc, "privateIPAllocationMethod")?;
        if !method.is_some_and(|s| s.eq_ignore_ascii_case("Static")) {
            return Ok(None);
        }
        Ok(self
            .opt_string(ipc, "privateIPAddress")?
            .and_then(|a| a.parse::<IpAddr>().ok()))
    }

    /// One scale set: `capacity` placeholder members in each pool its network profile names,
    /// and the NAT pools it takes part in.
    fn read_scale_set(&mut self, r: &Node<'a>, m: &mut Model) -> Result<(), ImportError> {
        let name = self.resource_name(r);
        let capacity = match r.get("sku") {
            Some(sku) => self.opt_u32(&sku, "capacity")?,
            None => None,
        };
        let Some(profile) = r
            .get("virtualMachineProfile")
            .and_then(|p| p.get("networkProfile"))
        else {
            return Ok(());
        };
        let count = capacity.unwrap_or(1).min(1000);
        let mut member_of = false;
        for nc in profile.items("networkInterfaceConfigurations")? {
            for ipc in nc.items("ipConfigurations")? {
                let pools = self.own_pools(&ipc, "loadBalancerBackendAddressPools", &m.pools)?;
                member_of |= !pools.is_empty();
                for pool in &pools {
                    for i in 0..count {
                        let member = format!("{name}_{i}");
                        let what = format!("instance {i} of scale set {name}");
                        add_member(&mut m.pools, pool, &member, &what, None);
                    }
                }
                for np in ipc.items("loadBalancerInboundNatPools")? {
                    if let Some(np) = self.own_ref(&np) {
                        let pool = pools.first().cloned().unwrap_or_default();
                        m.nat_pool_members.push((np, pool));
                    }
                }
            }
        }
        if member_of && capacity.is_none() {
            self.warn(format!("scale set \"{name}\": no sku.capacity in the input; one placeholder member is written per pool"));
        }
        Ok(())
    }
}

/// Adds `member` (a member, or a placeholder when `addr` is unknown) to the pool `pool`, unless
/// the pool already has it.
fn add_member(pools: &mut [Pool], pool: &str, member: &str, what: &str, addr: Option<IpAddr>) {
    let Some(p) = pools.iter_mut().find(|p| p.name == pool) else {
        return;
    };
    if p.has_member(member) || p.pending.iter().any(|x| x.what == what) {
        return;
    }
    match addr {
        Some(addr) => p.members.push(Mem {
            name: member.to_string(),
            addr,
            admin_state: None,
        }),
        None => p.pending.push(Pending {
            name: member.to_string(),
            what: what.to_string(),
        }),
    }
}
