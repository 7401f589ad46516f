//! IPv6 additions to the harness: the `--ipv6` topologies (the IPv4 plan's IPv6 twin, see
//! `scripts/netns/one-arm.sh` and `two-arm.sh`), IPv6 pools, frontends and rules for a
//! [`ConfigBuilder`]'s document, and IPv6 requests from a namespace.
//!
//! Addresses: LAN 2001:db8:1::/64 (MUX 2001:db8:1::2, backend `bI` 2001:db8:1::(10+I) written
//! in decimal digits, router 2001:db8:1::1), client side 2001:db8:9::/64 (client
//! 2001:db8:9::10). The IPv6 VIP is 2001:db8:1::100 one-arm, 2001:db8:9::100 two-arm.

use std::collections::BTreeMap;

use super::appliance::socket_path;
use super::{curl_from, BackendReply, ConfigBuilder, Topology};

/// The one-arm MUX interface's IPv6 address and prefix.
pub const MUX_CIDR6: &str = "2001:db8:1::2/64";
/// The one-arm router's LAN address (the MUX's IPv6 gateway).
pub const ROUTER_LAN_IP6: &str = "2001:db8:1::1";
/// The two-arm MUX's client-side IPv6 address and prefix.
pub const MUX_CLIENT_CIDR6: &str = "2001:db8:9::2/64";

/// Which frontends an IPv6 configuration has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontends {
    /// The frontend `fe` is the IPv6 VIP.
    Ipv6,
    /// Dual stack: `fe` stays the IPv4 VIP and `fe6` is the IPv6 VIP, on the same interface.
    DualStack,
}

/// Brings `script` (`one-arm` or `two-arm`) up with `args` and `--ipv6`.
pub fn up6(script: &str, args: &[&str]) -> Topology {
    let mut all = args.to_vec();
    all.push("--ipv6");
    Topology::up(script, &all).expect("IPv6 topology up")
}

/// IPv6 address of backend role `bI` in both topologies: 2001:db8:1::(10+I).
pub fn backend_ip6(role: &str) -> String {
    let i: u32 = role
        .strip_prefix('b')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a backend role: {role}"));
    format!("2001:db8:1::{}", 10 + i)
}

/// `http://[ip]:port/`.
pub fn url6(ip: &str, port: &str) -> String {
    format!("http://[{ip}]:{port}/")
}

/// A `[[backend_pools]]` of the backends `roles` by their IPv6 addresses; `extra` is TOML for
/// the table.
pub fn pool6(c: ConfigBuilder, name: &str, roles: &[&str], extra: &str) -> ConfigBuilder {
    let members: Vec<String> = roles
        .iter()
        .map(|r| format!("{{ name = \"{r}\", address = \"{}\" }}", backend_ip6(r)))
        .collect();
    c.raw(&format!(
        "[[backend_pools]]\nname = \"{name}\"\nmembers = [{}]\n{extra}\n",
        members.join(", ")
    ))
}

/// A `[[load_balancing_rules]]` named `name` on `frontend` (e.g. `fe6` of a dual-stack
/// configuration) for `protocol` `port` to `pool`; `extra` is TOML for the table.
pub fn rule_on(
    c: ConfigBuilder,
    frontend: &str,
    name: &str,
    (protocol, port): (&str, u16),
    pool: &str,
    probe: Option<&str>,
    extra: &str,
) -> ConfigBuilder {
    let probe = probe.map_or(String::new(), |p| format!("probe = \"{p}\"\n"));
    c.raw(&format!(
        "[[load_balancing_rules]]\nname = \"{name}\"\nfrontend = \"{frontend}\"\n\
         protocol = \"{protocol}\"\nfrontend_port = {port}\nbackend_port = {port}\n\
         backend_pool = \"{pool}\"\n{probe}{extra}\n"
    ))
}

/// The configuration text of `c` for `topo` with IPv6 on every interface (`address6`, and the
/// router as `gateway6` one-arm) and the `frontends` asked for.
pub fn build6(c: &ConfigBuilder, topo: &Topology, frontends: Frontends) -> String {
    let mut doc = c.document(&socket_path(topo));
    let two_arm = topo.get("TOPOLOGY") == "two-arm";
    for iface in array(&mut doc, "interfaces") {
        let name = iface.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let cidr = if name == "client" {
            MUX_CLIENT_CIDR6
        } else {
            MUX_CIDR6
        };
        iface.insert("address6".into(), cidr.into());
        if !two_arm {
            iface.insert("gateway6".into(), ROUTER_LAN_IP6.into());
        }
    }
    let vip6 = topo.get("VIP6").to_string();
    let mut fe6 = None;
    for fe in array(&mut doc, "frontends") {
        if fe.get("name").and_then(|v| v.as_str()) != Some("fe") {
            continue;
        }
        match frontends {
            Frontends::Ipv6 => {
                fe.insert("address".into(), vip6.clone().into());
            }
            Frontends::DualStack => {
                let mut t = fe.clone();
                t.insert("name".into(), "fe6".into());
                t.insert("address".into(), vip6.clone().into());
                fe6 = Some(t);
            }
        }
    }
    let frontends_array = doc.get_mut("frontends").and_then(|v| v.as_array_mut());
    if let (Some(t), Some(a)) = (fe6, frontends_array) {
        a.push(t.into());
    }
    toml::to_string(&doc).expect("serialize the configuration")
}

/// The tables of the array `key` of `doc` (created empty when absent).
fn array<'a>(doc: &'a mut toml::Table, key: &str) -> Vec<&'a mut toml::Table> {
    doc.entry(key)
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .map(|a| a.iter_mut().filter_map(|v| v.as_table_mut()).collect())
        .unwrap_or_default()
}

/// `n` HTTP GETs of `url` from `ns` by backend (curl, IPv4 or IPv6 by the URL).
pub fn requests_from(
    ns: &str,
    url: &str,
    n: usize,
) -> Result<BTreeMap<String, Vec<BackendReply>>, String> {
    let mut seen: BTreeMap<String, Vec<BackendReply>> = BTreeMap::new();
    for i in 0..n {
        let body = curl_from(ns, url).map_err(|e| format!("request {i} to {url}: {e}"))?;
        let reply = BackendReply::parse(&body)
            .ok_or_else(|| format!("request {i}: unexpected answer {body:?}"))?;
        seen.entry(reply.backend.clone()).or_default().push(reply);
    }
    Ok(seen)
}

/// Checks that every one of `roles` answered and every answer saw the source `client`.
pub fn spread_from(
    seen: &BTreeMap<String, Vec<BackendReply>>,
    roles: &[&str],
    client: &str,
) -> Result<(), String> {
    for b in roles {
        if !seen.contains_key(*b) {
            return Err(format!("backend {b} got no request: {:?}", seen.keys()));
        }
    }
    match seen.values().flatten().find(|r| r.client_ip != client) {
        Some(r) => Err(format!(
            "backend saw source {} instead of {client}: {r:?}",
            r.client_ip
        )),
        None => Ok(()),
    }
}
