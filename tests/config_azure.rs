//! `vipmux import-azure`: the shipped Azure examples import into configurations that validate and
//! compile to the expected rules and members; incomplete inputs produce placeholders, warnings
//! and validation errors; malformed inputs fail with errors naming the JSON field.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use vipmux::balance::snapshot::RuleKind;
use vipmux::balance::{Health, Snapshot};
use vipmux::config::azure::{import, import_str, ImportOptions};
use vipmux::config::{AdminState, Config, DsrEncapsulation, LoadDistribution, ProbeProtocol};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

fn vipmux(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .args(args)
        .output()
        .expect("run vipmux")
}

/// Runs `vipmux import-azure <input> <args>`.
fn import_azure(input: &Path, args: &[&str]) -> Output {
    let mut all = vec!["import-azure", input.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    vipmux(&all)
}

/// Asserts that `out` is a success, showing its standard error otherwise.
fn assert_success(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}

/// `toml` with its placeholder members filled in (uncommented, with addresses 10.77.0.1...),
/// as an operator would.
fn fill(toml: &str) -> String {
    let mut n = 0;
    toml.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("# { name = ") && t.contains("address = \"FILL IN\"") {
                n += 1;
                t.trim_start_matches("# ")
                    .replace("FILL IN", &format!("10.77.0.{n}"))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

/// A scratch directory unique to this test process and test name, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("vipmux-azure-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn standard_template_imports_validates_and_compiles() {
    // The example's members are routed, not on-link: its floating-IP pool decapsulates (IPIP).
    let opts = ImportOptions {
        source: "azure-standard-lb.json".into(),
        floating_ip_encapsulation: DsrEncapsulation::Ipip,
        ..ImportOptions::default()
    };
    let imp = import_str(&read("azure-standard-lb.json"), &opts).unwrap();
    assert_eq!(imp.load_balancer, "lb-web");
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    assert_eq!(imp.placeholders, 0);
    let c = Config::from_str(&imp.toml, "imported").unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));

    // Model-level checks.
    assert_eq!(c.frontends.len(), 2);
    assert_eq!(c.frontends[0].name, "fe-web");
    assert_eq!(c.frontends[0].interface, None);
    let pool = &c.backend_pools[0];
    assert_eq!(pool.name, "pool-web");
    assert_eq!(pool.dsr_encapsulation, DsrEncapsulation::Ipip);
    let names: Vec<&str> = pool.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["vm1", "vm2", "vm3"]);
    assert_eq!(pool.members[2].admin_state, AdminState::Down);
    let http = &c.probes[0];
    assert_eq!(http.protocol, ProbeProtocol::Http);
    assert_eq!(http.request_path.as_deref(), Some("/health"));
    assert_eq!(
        (http.port, http.interval_seconds, http.probe_threshold),
        (8080, 5, 2)
    );
    let tcp = &c.probes[1];
    assert_eq!(tcp.protocol, ProbeProtocol::Tcp);
    assert_eq!(
        (tcp.port, tcp.interval_seconds, tcp.probe_threshold),
        (443, 15, 3)
    );
    let web = &c.load_balancing_rules[0];
    assert_eq!(web.load_distribution, LoadDistribution::SourceIp);
    assert_eq!(web.idle_timeout_minutes, Some(15));
    assert!(web.enable_tcp_reset && !web.enable_floating_ip);
    assert_eq!(c.outbound_rules[0].allocated_outbound_ports, 1024);

    // Compiled snapshot.
    let s = Snapshot::compile(&c, &Health::all_up(&c));
    let r = s.lookup(ip("10.1.0.100"), 6, 80).expect("web rule");
    assert_eq!(r.name, "web");
    assert_eq!(r.kind, RuleKind::LoadBalancing);
    assert_eq!(r.backend_port, 8080);
    assert_eq!(r.members.len(), 3);
    assert!(r.enable_tcp_reset);
    assert_eq!(r.idle_timeout_secs, 15 * 60);
    assert!(s.lookup(ip("10.1.0.100"), 17, 80).is_none());

    let ha = s.lookup(ip("10.1.0.101"), 17, 5353).expect("HA ports rule");
    assert_eq!(ha.name, "ha-ports");
    assert!(ha.ha_ports && ha.floating_ip);
    assert_eq!(ha.dsr_encapsulation, DsrEncapsulation::Ipip);
    assert_eq!(
        s.lookup(ip("10.1.0.101"), 6, 443).map(|r| r.name.as_str()),
        Some("ha-ports")
    );

    let nat = s
        .lookup(ip("10.1.0.100"), 6, 50001)
        .expect("NAT range rule");
    assert_eq!(nat.name, "ssh-pool");
    assert_eq!(nat.kind, RuleKind::InboundNatRange);
    assert_eq!((nat.frontend_port, nat.frontend_port_end), (50000, 50099));
    assert_eq!(nat.backend_port, 22);
    let slotted: Vec<std::net::IpAddr> = nat
        .slots
        .iter()
        .flatten()
        .filter_map(|m| s.member(*m))
        .map(|m| m.addr)
        .collect();
    assert_eq!(slotted.len(), 3, "{slotted:?}");
    assert!(s.lookup(ip("10.1.0.100"), 6, 50100).is_none());

    let ob = &s.outbound[0];
    assert_eq!(ob.name, "egress");
    assert_eq!(
        ob.frontends,
        vec!["10.1.0.100".parse::<Ipv4Addr>().unwrap()]
    );
    assert_eq!(ob.ports_per_member, 1024);
    assert_eq!(ob.blocks.len(), 3);
    assert_eq!(ob.idle_timeout_secs, 15 * 60);

    // Nothing in this template is ignored (disableOutboundSnat is true, as vipmux does; probe
    // counts agree).
    assert!(
        imp.notes
            .iter()
            .all(|n| n.contains("disableOutboundSnat = true is vipmux's behaviour")),
        "{:?}",
        imp.notes
    );
}

#[test]
fn cli_writes_stdout_or_file_and_check_accepts_it() {
    let path = example("azure-standard-lb.json");
    let out = import_azure(&path, &["--dsr-encapsulation", "ipip"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let toml = String::from_utf8(out.stdout).unwrap();
    Config::from_str(&toml, "stdout").unwrap();
    assert!(toml.contains("# [appliance]") && toml.contains("# [[interfaces]]"));
    assert!(stderr.contains("the configuration validates"), "{stderr}");

    let dir = Scratch::new("cli");
    let file = dir.0.join("lb.toml");
    let out = import_azure(
        &path,
        &[
            "--output",
            file.to_str().unwrap(),
            "--dsr-encapsulation",
            "ipip",
        ],
    );
    assert_success(&out);
    assert!(out.stdout.is_empty());
    let check = vipmux(&["check", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("rule ha-ports: HA ports"), "{text}");
    assert!(
        text.contains("inbound NAT ssh-pool: tcp 50000..=50099"),
        "{text}"
    );
}

#[test]
fn az_show_output_needs_the_public_address() {
    let path = example("azure-lb-show.json");
    // Without the address: TOML with placeholders, warnings, the validation errors they cause,
    // exit 0 (the import did its part); --strict fails.
    let out = import_azure(&path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("# address = \"FILL IN\""), "{stdout}");
    assert!(
        stderr.contains("warning: frontend \"fe-public\": public IP address \"pip-web\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("frontends[0] (\"fe-public\") address: required key is missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the errors above remain until they are filled in"),
        "{stderr}"
    );
    let strict = import_azure(&path, &["--strict"]);
    assert_strict_refused(&strict);

    // With the address: the NIC-based members are commented placeholders; the NAT rule targets
    // one of them, so the configuration validates once they are filled in.
    let out = import_azure(&path, &["--frontend-address", "fe-public=20.50.60.70"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(Config::from_str(&stdout, "stdout").is_err());
    let c = Config::from_str(&fill(&stdout), "filled").unwrap();
    assert_eq!(
        c.frontends[0].address4(),
        Some(Ipv4Addr::new(20, 50, 60, 70))
    );
    assert_eq!(c.backend_pools[0].members.len(), 2);
    assert_eq!(c.inbound_nat_rules.len(), 1);
    assert!(
        stdout.contains("# { name = \"vm1-nic\", address = \"FILL IN\" },"),
        "{stdout}"
    );
    assert!(
        stdout.contains("target = { pool = \"pool-vms\", member = \"vm1-nic\" }"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "(NIC IP configuration vm1-nic/ipconfig1, NIC IP configuration vm2-nic/ipconfig1)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "warning: NOT TRANSLATED: load-balancing rule \"http\": disableOutboundSnat = false"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("3 placeholders left"), "{stderr}");
    // Every warning is in the output too.
    assert!(
        stdout.contains("# - NOT TRANSLATED: load-balancing rule \"http\": disableOutboundSnat"),
        "{stdout}"
    );

    // --strict fails while placeholders are left.
    let out = import_azure(
        &path,
        &["--frontend-address", "fe-public=20.50.60.70", "--strict"],
    );
    assert_strict_refused(&out);
}

/// `--strict` failed because placeholders are left (not for another reason, such as a bad
/// argument).
fn assert_strict_refused(out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("placeholders left and --strict"),
        "{stderr}"
    );
}

#[test]
fn rest_form_of_one_resource_matches_the_template() {
    // The load balancer resource on its own (as `az resource show` or a template snippet gives it).
    let template: serde_json::Value =
        serde_json::from_str(&read("azure-standard-lb.json")).unwrap();
    let mut lb = template["resources"][1].clone();
    // Outside the template the expressions cannot be evaluated: use plain ids and names.
    let text = serde_json::to_string(&lb).unwrap();
    let text = text
        .replace("[parameters('lbName')]", "lb-web")
        .replace("[variables('feWeb')]", "fe-web")
        .replace("[variables('poolName')]", "pool-web");
    lb = serde_json::from_str(&text).unwrap();
    let e = import(&lb, &ImportOptions::default()).unwrap_err();
    // The first unresolvable reference is named by its JSON path.
    assert_eq!(
        e.field,
        "properties.loadBalancingRules[0].properties.frontendIPConfiguration.id"
    );
    assert!(
        e.message.contains("cannot resolve the ARM expression"),
        "{e}"
    );

    // With the template's variables and parameters it works and matches the template import.
    let mut wrapped =
        json!({ "parameters": template["parameters"], "variables": template["variables"] });
    wrapped["resources"] = json!([template["resources"][1].clone()]);
    let a = import(&wrapped, &ImportOptions::default()).unwrap();
    let b = import(&template, &ImportOptions::default()).unwrap();
    assert_eq!(a.toml, b.toml);
}

fn lb(name: &str, props: serde_json::Value) -> serde_json::Value {
    json!({ "type": "Microsoft.Network/loadBalancers", "name": name, "properties": props })
}

fn minimal_props() -> serde_json::Value {
    json!({
        "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
        "backendAddressPools": [{ "name": "p", "properties": { "loadBalancerBackendAddresses": [
            { "name": "a", "properties": { "ipAddress": "10.0.0.4" } },
            { "properties": { "ipAddress": "10.0.0.5" } } ] } }],
        "loadBalancingRules": [{ "name": "r", "properties": {
            "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/fe" },
            "backendAddressPool": { "id": "/x/backendAddressPools/p" },
            "protocol": "Udp", "frontendPort": 53, "backendPort": 5353 } }]
    })
}

#[test]
fn several_load_balancers_need_a_name() {
    let t = json!({ "resources": [
        { "type": "Microsoft.Network/publicIPAddresses", "name": "pip" },
        lb("lb-a", minimal_props()),
        lb("lb-b", minimal_props()),
    ]});
    let e = import(&t, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.field, "--name");
    assert!(
        e.message.contains("2 load balancers (\"lb-a\", \"lb-b\")"),
        "{e}"
    );

    let opts = ImportOptions {
        name: Some("lb-b".into()),
        ..ImportOptions::default()
    };
    let imp = import(&t, &opts).unwrap();
    assert_eq!(imp.load_balancer, "lb-b");
    let c = Config::from_str(&imp.toml, "t").unwrap();
    // An unnamed member gets a generated name.
    assert_eq!(c.backend_pools[0].members[1].name, "member-2");
    let s = Snapshot::compile(&c, &Health::all_up(&c));
    let r = s.lookup(ip("10.0.0.9"), 17, 53).unwrap();
    assert_eq!((r.name.as_str(), r.backend_port), ("r", 5353));

    let opts = ImportOptions {
        name: Some("lb-c".into()),
        ..ImportOptions::default()
    };
    let e = import(&t, &opts).unwrap_err();
    assert!(e.message.contains("no load balancer named \"lb-c\""), "{e}");

    let t =
        json!({ "resources": [{ "type": "Microsoft.Network/publicIPAddresses", "name": "pip" }] });
    let e = import(&t, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.field, "resources");
    assert!(
        e.message.contains("Microsoft.Network/publicIPAddresses"),
        "{e}"
    );

    let e = import(&json!({ "hello": 1 }), &ImportOptions::default()).unwrap_err();
    assert_eq!(e.field, "<root>");
    let e = import_str("{ not json", &ImportOptions::default()).unwrap_err();
    assert!(e.message.contains("not valid JSON"), "{e}");
}

#[test]
fn bad_values_name_the_field() {
    let cases: Vec<(serde_json::Value, &str, &str)> = vec![
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": { "protocol": "Icmp" } }] }),
            "properties.loadBalancingRules[0].properties.protocol",
            "unsupported value \"Icmp\"; valid: Tcp, Udp, All",
        ),
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": {
                "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/nope" } } }] }),
            "properties.loadBalancingRules[0].properties.frontendIPConfiguration.id",
            "refers to frontend IP configuration \"nope\"",
        ),
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": {
                "frontendIPConfiguration": { "id": "[reference('fe').id]" } } }] }),
            "properties.loadBalancingRules[0].properties.frontendIPConfiguration.id",
            "cannot resolve the ARM expression",
        ),
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": {
                "probe": { "id": "/x/probes/missing" } } }] }),
            "properties.loadBalancingRules[0].properties.probe.id",
            "refers to probe \"missing\"",
        ),
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": { "frontendPort": -1 } }] }),
            "properties.loadBalancingRules[0].properties.frontendPort",
            "expected a non-negative integer",
        ),
        (
            json!({ "loadBalancingRules": [{ "name": "r", "properties": { "loadDistribution": "Sticky" } }] }),
            "properties.loadBalancingRules[0].properties.loadDistribution",
            "valid: Default, SourceIP, SourceIPProtocol",
        ),
        (
            json!({ "probes": [{ "name": "p", "properties": { "protocol": "Http" } }] }),
            "properties.probes[0].properties.port",
            "required property is missing",
        ),
        (
            json!({ "backendAddressPools": [{ "name": "p", "properties": {
                "loadBalancerBackendAddresses": [{ "name": "m", "properties": { "ipAddress": "10.0.0" } }] } }] }),
            "properties.backendAddressPools[0].properties.loadBalancerBackendAddresses[0].properties.ipAddress",
            "is not an IP address",
        ),
        (
            json!({ "inboundNatRules": [{ "name": "n", "properties": {
                "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/fe" },
                "protocol": "Tcp", "frontendPortRangeStart": 100, "frontendPortRangeEnd": 200, "backendPort": 22 } }] }),
            "properties.inboundNatRules[0].properties.backendAddressPool",
            "required with frontendPortRangeStart/End",
        ),
        (
            json!({ "outboundRules": [{ "name": "o", "properties": {
                "frontendIPConfigurations": [{ "id": "/x/frontendIPConfigurations/fe" }],
                "backendAddressPool": { "id": "/x/backendAddressPools/gone" } } }] }),
            "properties.outboundRules[0].properties.backendAddressPool.id",
            "refers to backend pool \"gone\"",
        ),
    ];
    for (patch, field, msg) in cases {
        let mut props = minimal_props();
        for (k, v) in patch.as_object().unwrap() {
            if k == "loadBalancingRules" {
                // Merge into the one valid rule so only the patched field is wrong.
                let rule = &mut props["loadBalancingRules"][0]["properties"];
                for (rk, rv) in v[0]["properties"].as_object().unwrap() {
                    rule[rk] = rv.clone();
                }
            } else {
                props[k] = v.clone();
            }
        }
        let e = import(&lb("lb", props), &ImportOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{field}: expected an error"));
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(msg), "{e}\nexpected: {msg}");
    }
}

#[test]
fn cli_errors_name_the_file_and_field() {
    let dir = Scratch::new("err");
    let file = dir.0.join("bad.json");
    std::fs::write(
        &file,
        serde_json::to_string(&lb(
            "lb",
            json!({ "probes": [{ "name": "p", "properties": { "protocol": "Udp", "port": 53 } }] }),
        ))
        .unwrap(),
    )
    .unwrap();
    let out = import_azure(&file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("bad.json: properties.probes[0].properties.protocol: unsupported value \"Udp\"; valid: Tcp, Http, Https"),
        "{stderr}"
    );
    let out = import_azure(
        &example("azure-standard-lb.json"),
        &["--frontend-address", "nope=1.2.3.4"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--frontend-address: no frontend named \"nope\""),
        "{stderr}"
    );
}

#[test]
fn floating_ip_encapsulation_is_an_option() {
    let mut props = minimal_props();
    props["loadBalancingRules"][0]["properties"]["enableFloatingIP"] = json!(true);
    let opts = ImportOptions {
        floating_ip_encapsulation: DsrEncapsulation::Gue,
        ..ImportOptions::default()
    };
    let imp = import(&lb("lb", props.clone()), &opts).unwrap();
    let c = Config::from_str(&imp.toml, "t").unwrap();
    assert_eq!(c.backend_pools[0].dsr_encapsulation, DsrEncapsulation::Gue);
    assert!(c.load_balancing_rules[0].enable_floating_ip);
    // "none" needs on-link members, which only [[interfaces]] can provide: validation says so.
    let opts = ImportOptions {
        floating_ip_encapsulation: DsrEncapsulation::None,
        ..ImportOptions::default()
    };
    let imp = import(&lb("lb", props), &opts).unwrap();
    let e = Config::from_str(&imp.toml, "t").unwrap_err().to_string();
    assert!(e.contains("needs on-link members"), "{e}");
}

/// [`minimal_props`] with the IPv6 frontend `fe6` (fd00::9) and the IPv6 pool `p6` (a6, fd00::4).
fn minimal_props_with_ipv6() -> serde_json::Value {
    let mut props = minimal_props();
    props["frontendIPConfigurations"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "fe6", "properties": { "privateIPAddress": "fd00::9", "privateIPAddressVersion": "IPv6" } }));
    props["backendAddressPools"].as_array_mut().unwrap().push(
        json!({ "name": "p6", "properties": { "loadBalancerBackendAddresses": [
            { "name": "a6", "properties": { "ipAddress": "fd00::4" } } ] } }),
    );
    props
}

#[test]
fn ipv6_frontends_and_pools_are_imported_and_nat_pools_warn() {
    let mut props = minimal_props_with_ipv6();
    props["loadBalancingRules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "r6", "properties": {
        "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/fe6" },
        "backendAddressPool": { "id": "/x/backendAddressPools/p6" },
        "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 } }));
    // A NAT pool that no scale set of the input uses has no members to map onto.
    props["inboundNatPools"] = json!([{ "name": "np", "properties": {
        "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/fe" },
        "protocol": "Tcp", "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50010,
        "backendPort": 22 } }]);
    let imp = import(&lb("lb", props), &ImportOptions::default()).unwrap();
    let c = Config::from_str(&imp.toml, "t").unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    assert_eq!(c.frontends.len(), 2);
    assert_eq!(c.frontends[1].address, "fd00::9".parse::<IpAddr>().unwrap());
    assert_eq!(c.load_balancing_rules.len(), 2);
    assert_eq!(c.load_balancing_rules[1].backend_pool, "p6");
    assert_eq!(
        c.backend_pools[1].members[0].address,
        "fd00::4".parse::<IpAddr>().unwrap()
    );
    let w = imp.warnings.join("\n");
    assert!(!w.contains("IPv6"), "{w}");
    assert!(w.contains("inbound NAT pool \"np\""), "{w}");
    assert_eq!(imp.placeholders, 1, "{:?}", imp.warnings);
}

#[test]
fn ipv6_outbound_frontends_are_imported() {
    let mut props = minimal_props_with_ipv6();
    let outbound = |frontends: &[&str], pool: &str| {
        let refs: Vec<_> = frontends
            .iter()
            .map(|f| json!({ "id": format!("/x/frontendIPConfigurations/{f}") }))
            .collect();
        json!([{ "name": "egress", "properties": {
            "frontendIPConfigurations": refs,
            "backendAddressPool": { "id": format!("/x/backendAddressPools/{pool}") },
            "protocol": "All", "allocatedOutboundPorts": 1024, "enableTcpReset": true } }])
    };
    // Only IPv6 frontends: an IPv6 outbound rule over its (IPv6) pool.
    props["outboundRules"] = outbound(&["fe6"], "p6");
    let imp = import(&lb("lb", props.clone()), &ImportOptions::default()).unwrap();
    let c = Config::from_str(&imp.toml, "t").unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    assert_eq!(c.outbound_rules.len(), 1, "{}", imp.toml);
    let o = &c.outbound_rules[0];
    assert_eq!(
        (o.frontends.clone(), o.backend_pool.as_str()),
        (vec!["fe6".to_string()], "p6")
    );
    assert!(o.enable_tcp_reset, "{}", imp.toml);
    assert!(
        !imp.warnings.join("\n").contains("IPv6"),
        "{:?}",
        imp.warnings
    );
    // Both families, but no rule on the IPv6 frontend names its pool: the IPv6 half is left out
    // with the reason.
    props["outboundRules"] = outbound(&["fe", "fe6"], "p");
    let imp = import(&lb("lb", props.clone()), &ImportOptions::default()).unwrap();
    assert!(
        imp.toml
            .contains("outbound rule \"egress\": IPv6 frontends fe6 left out"),
        "{}",
        imp.toml
    );
    let c = Config::from_str(&imp.toml, "t").unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    assert_eq!(c.outbound_rules[0].frontends, vec!["fe".to_string()]);
}

#[test]
fn a_pool_serving_both_families_is_reported() {
    let mut props = minimal_props();
    props["frontendIPConfigurations"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "fe6", "properties": { "privateIPAddress": "fd00::9" } }));
    props["loadBalancingRules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "r6", "properties": {
        "frontendIPConfiguration": { "id": "/x/frontendIPConfigurations/fe6" },
        "backendAddressPool": { "id": "/x/backendAddressPools/p" },
        "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 } }));
    let imp = import(&lb("lb", props), &ImportOptions::default()).unwrap();
    let w = imp.warnings.join("\n");
    assert!(
        w.contains("pool \"p\" serves rules on IPv4 and on IPv6 frontends; a vipmux rule's frontend and pool are of one family"),
        "{w}"
    );
    assert_eq!(imp.placeholders, 1, "{w}");
}

#[test]
fn dual_stack_template_imports_both_families() {
    let (ok, toml, stderr) = import_fixture("dual-stack.json", &[]);
    assert!(ok, "{stderr}");
    for line in [
        "name = \"fe-v6\"\naddress = \"fd00:77::100\"",
        "{ name = \"vm1-nic\", address = \"fd00:77::11\" },",
        "name = \"http-v6\"\nfrontend = \"fe-v6\"",
        "backend_pool = \"web-v6\"",
        "# address6 = \"FILL IN\"",
        "name = \"egress\"\nfrontends = [\"fe-v4\"]\nbackend_pool = \"web-v4\"",
        "name = \"egress-v6\"\nfrontends = [\"fe-v6\"]\nbackend_pool = \"web-v6\"",
    ] {
        assert!(toml.contains(line), "missing `{line}` in:\n{toml}");
    }
    // Nothing is left untranslated (the outbound rule's IPv6 half included).
    assert!(!stderr.contains("placeholder"), "{stderr}");
    assert!(stderr.contains("the configuration validates"), "{stderr}");
    // With an interface holding both families, `check` passes and prints the IPv6 objects.
    let filled = format!(
        "{toml}\n[dataplane]\ndpdk_profile = \"p\"\n\n[[interfaces]]\nname = \"lan\"\nport = \"net_af_packet0\"\naddress = \"10.77.0.254/24\"\naddress6 = \"fd00:77::fe/64\"\n"
    );
    let dir = Scratch::new("dual-stack");
    let file = dir.0.join("filled.toml");
    std::fs::write(&file, &filled).unwrap();
    let out = vipmux(&["check", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{filled}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("frontend fe-v6 fd00:77::100:"), "{stdout}");
    assert!(
        stdout.contains("  rule http-v6: tcp 80 -> 8080, pool web-v6 (2 members)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  member vm2-nic fd00:77::12 weight 1"),
        "{stdout}"
    );
    let c = Config::from_str(&filled, "filled.toml").unwrap();
    let s = Snapshot::compile(&c, &Health::all_up(&c));
    let vip6 = u128::from("fd00:77::100".parse::<std::net::Ipv6Addr>().unwrap());
    assert_eq!(
        s.lookup6(vip6, 6, 80).map(|r| r.name.as_str()),
        Some("http-v6")
    );
    assert_eq!(
        s.lookup(ip("10.77.0.100"), 6, 80).map(|r| r.name.as_str()),
        Some("http-v4")
    );
}

#[test]
fn names_with_control_characters_stay_inside_their_comments() {
    // A NIC name quoted in a `# FILL IN` comment: a newline must not end the comment and inject a
    // line, and TOML forbids other control characters (DEL here) in comments.
    let text = read("azure-lb-show.json").replace("vm1-nic", "vm1\\n[appliance]\\u007f");
    let imported = import_str(&text, &ImportOptions::default()).unwrap();
    let table: toml::Table = toml::from_str(&imported.toml)
        .unwrap_or_else(|e| panic!("invalid TOML: {e}\n{}", imported.toml));
    assert!(!table.contains_key("appliance"), "{}", imported.toml);
    assert!(
        imported.toml.contains("vm1\\n[appliance]\\u{7f}"),
        "{}",
        imported.toml
    );
}

// ---------------------------------------------------------------------------------------------
// The corpus: templates written for the project in the shapes people have (parameters without
// defaults, membership from the NIC and scale-set side, copy loops, child-resource NAT rules, NAT
// pools, case-mismatched references, several load balancers, the Global tier, IPv6).

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/azure")
        .join(name)
        .display()
        .to_string()
}

/// Runs `vipmux import-azure` on the fixture `name` with `args`: (status ok, stdout, stderr).
fn import_fixture(name: &str, args: &[&str]) -> (bool, String, String) {
    let out = import_azure(Path::new(&fixture(name)), args);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every name is in the output, as a value or in a comment.
fn assert_accounted(toml: &str, names: &[&str]) {
    for n in names {
        assert!(toml.contains(&format!("\"{n}\"")), "{n} missing:\n{toml}");
    }
}

/// Fills the placeholders of `toml` (members; an interface on the members' subnet when asked)
/// and runs `vipmux check` on the result, which must pass.
fn check_filled(tag: &str, toml: &str, interface: bool) -> String {
    let mut filled = fill(toml);
    if interface {
        filled.push_str(
            "\n[dataplane]\ndpdk_profile = \"p\"\n\n[[interfaces]]\nname = \"lan\"\nport = \"net_af_packet0\"\naddress = \"10.77.0.254/24\"\n",
        );
    }
    let dir = Scratch::new(tag);
    let file = dir.0.join("filled.toml");
    std::fs::write(&file, &filled).unwrap();
    let out = vipmux(&["check", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{filled}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn corpus_parameters_file_nic_members_and_child_nat_rules() {
    let params = fixture("nic-members.parameters.json");
    let (ok, toml, stderr) = import_fixture("nic-members.json", &["--parameters", &params]);
    assert!(ok, "{stderr}");
    assert_accounted(
        &toml,
        &[
            "fe-app",
            "Pool-App",
            "probe-http",
            "app-https",
            "ssh-0",
            "ssh-1",
            "app-nic-0",
            "app-nic-1",
            "app-nic-static",
        ],
    );
    // Case-mismatched references resolve to the defined spelling; Azure's 15 s probe default.
    let c = Config::from_str(&fill(&toml), "filled").unwrap();
    let r = &c.load_balancing_rules[0];
    assert_eq!(
        (
            r.frontend.as_str(),
            r.backend_pool.as_str(),
            r.probe.as_deref()
        ),
        ("fe-app", "Pool-App", Some("probe-http"))
    );
    assert_eq!(c.probes[0].interval_seconds, 15);
    // The static NIC is a member; the dynamic ones (a copy loop) are placeholders that the NAT
    // rules (child resources, a copy loop) target.
    assert!(toml.contains("{ name = \"app-nic-static\", address = \"10.77.0.100\" }"));
    assert!(toml.contains("# { name = \"app-nic-1\", address = \"FILL IN\" },"));
    assert_eq!(c.inbound_nat_rules.len(), 2);
    assert_eq!(c.inbound_nat_rules[1].frontend_port, Some(2201));
    assert!(stderr.contains("2 placeholders left"), "{stderr}");
    check_filled("nic", &toml, false);

    // The same values as --parameter give the same output; --strict fails on the placeholders.
    let (ok, same, _) = import_fixture(
        "nic-members.json",
        &[
            "--parameter",
            "lbName=lb-app",
            "--parameter",
            "appCount=2",
            "--parameter",
            "frontendIp=10.77.0.10",
        ],
    );
    assert!(ok);
    assert_eq!(same, toml);
    let (ok, _, stderr) =
        import_fixture("nic-members.json", &["--parameters", &params, "--strict"]);
    assert!(
        !ok && stderr.contains("placeholders left and --strict"),
        "{stderr}"
    );
    // Without the values, the error says how to give them.
    let (ok, _, stderr) = import_fixture("nic-members.json", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("parameters('appCount') has no defaultValue; give its value with --parameter appCount=VALUE"),
        "{stderr}"
    );
}

#[test]
fn corpus_scale_set_nat_pool_and_property_copy_loop() {
    let (ok, toml, stderr) = import_fixture(
        "scale-set.json",
        &[
            "--parameter",
            "instanceCount=3",
            "--frontend-address",
            "fe-web=20.1.2.3",
            "--frontend-address",
            "fe-egress=20.1.2.4",
        ],
    );
    assert!(ok, "{stderr}");
    assert_accounted(
        &toml,
        &[
            "fe-web",
            "fe-egress",
            "bepool",
            "tcp-80",
            "web-0",
            "web-1",
            "natpool-ssh",
            "egress",
            "vmss-web_0",
            "vmss-web_1",
            "vmss-web_2",
        ],
    );
    let c = Config::from_str(&fill(&toml), "filled").unwrap();
    // Both --frontend-address options are honoured.
    assert_eq!(c.frontends[0].address4(), Some(Ipv4Addr::new(20, 1, 2, 3)));
    assert_eq!(c.frontends[1].address4(), Some(Ipv4Addr::new(20, 1, 2, 4)));
    // The property copy loop made two rules; the NAT pool is a port range over the instances.
    let ports: Vec<u32> = c
        .load_balancing_rules
        .iter()
        .map(|r| r.frontend_port)
        .collect();
    assert_eq!(ports, [80, 443]);
    assert_eq!(c.backend_pools[0].members.len(), 3);
    let nat = &c.inbound_nat_rules[0];
    assert_eq!(nat.name, "natpool-ssh");
    assert_eq!(
        (nat.frontend_port_range_start, nat.frontend_port_range_end),
        (Some(50000), Some(50099))
    );
    assert!(stderr.contains("3 placeholders left"), "{stderr}");
    let summary = check_filled("vmss", &toml, false);
    assert!(summary.contains("natpool-ssh"), "{summary}");
    let (ok, _, stderr) = import_fixture(
        "scale-set.json",
        &["--parameter", "instanceCount=3", "--strict"],
    );
    assert!(
        !ok && stderr.contains("placeholders left and --strict"),
        "{stderr}"
    );
}

#[test]
fn corpus_several_load_balancers_keep_to_their_own() {
    // The SQL listener: floating IP, unencapsulated as in Azure; nothing of lb-web leaks in.
    let (ok, toml, stderr) = import_fixture("two-load-balancers.json", &["--name", "LB-SQL"]);
    assert!(ok, "{stderr}");
    assert_accounted(
        &toml,
        &[
            "fe-listener",
            "pool-sql",
            "probe-ag",
            "ag-listener",
            "sql-nic-1",
            "sql-nic-2",
        ],
    );
    for other in ["lb-web", "rdp", "web-nic", "pool-web", "http"] {
        assert!(!toml.contains(other), "{other}:\n{toml}");
        assert!(
            !stderr.contains(&format!("\"{other}\"")),
            "{other}:\n{stderr}"
        );
    }
    assert!(toml.contains("dsr_encapsulation = \"none\""), "{toml}");
    assert!(stderr.contains("1 placeholder left"), "{stderr}");
    let summary = check_filled("sql", &toml, true);
    assert!(summary.contains("floating IP (None)"), "{summary}");
    let (ok, _, stderr) =
        import_fixture("two-load-balancers.json", &["--name", "lb-sql", "--strict"]);
    assert!(
        !ok && stderr.contains("placeholders left and --strict"),
        "{stderr}"
    );
    // Members that decapsulate: nothing left to fill in, so --strict passes.
    let (ok, _, stderr) = import_fixture(
        "two-load-balancers.json",
        &[
            "--name",
            "lb-sql",
            "--dsr-encapsulation",
            "ipip",
            "--strict",
        ],
    );
    assert!(ok, "{stderr}");

    // The web balancer: its child NAT rule (target not in the input) and implicit outbound SNAT
    // are placeholders with their reasons, in the output.
    let (ok, toml, stderr) = import_fixture(
        "two-load-balancers.json",
        &["--name", "lb-web", "--frontend-address", "fe-web=20.1.2.3"],
    );
    assert!(ok, "{stderr}");
    assert_accounted(
        &toml,
        &["fe-web", "pool-web", "http", "rdp", "web-nic", "sql-nic-1"],
    );
    assert!(toml.contains("# [[inbound_nat_rules]]"), "{toml}");
    assert!(
        toml.contains(
            "# - NOT TRANSLATED: load-balancing rule \"http\": disableOutboundSnat = false"
        ),
        "{toml}"
    );
    assert!(!toml.contains("ag-listener") && !stderr.contains("ag-listener"));
    check_filled("web", &toml, false);
}

#[test]
fn corpus_global_tier_and_ipv6_are_placeholders_with_reasons() {
    let params = format!("@{}", fixture("global-ipv6.parameters.json"));
    let (ok, toml, stderr) = import_fixture(
        "global-ipv6.json",
        &[
            "--parameters",
            &params,
            "--frontend-address",
            "fe-v4=20.1.2.3",
            "--frontend-address",
            "fe-v6=2001:db8::6",
        ],
    );
    assert!(ok, "{stderr}");
    assert_accounted(
        &toml,
        &[
            "fe-v4", "fe-v6", "regions", "east", "west", "https-v4", "https-v6",
        ],
    );
    assert!(
        toml.contains("# - NOT TRANSLATED: sku tier Global"),
        "{toml}"
    );
    // The IPv6 frontend is imported with its rule; the one pool serving both families is to
    // split (a placeholder with its reason).
    assert!(
        toml.contains("name = \"fe-v6\"\naddress = \"2001:db8::6\""),
        "{toml}"
    );
    assert!(toml.contains("name = \"https-v6\""), "{toml}");
    assert!(
        toml.contains("pool \"regions\" serves rules on IPv4 and on IPv6 frontends"),
        "{toml}"
    );
    assert!(stderr.contains("4 placeholders left"), "{stderr}");
    // Without the IPv6 rule (its pool is the IPv4 one until split), the rest checks.
    let start = toml
        .find("[[load_balancing_rules]]\nname = \"https-v6\"")
        .unwrap();
    let end = toml[start + 1..]
        .find("\n[[")
        .map_or(toml.len(), |e| start + 1 + e);
    check_filled(
        "global",
        &format!("{}{}", &toml[..start], &toml[end..]),
        false,
    );
    // Without --frontend-address, the IPv6 public IP is a placeholder that says its family.
    let (ok, toml, stderr) = import_fixture("global-ipv6.json", &["--parameters", &params]);
    assert!(ok, "{stderr}");
    assert!(
        toml.contains("frontend \"fe-v6\": public IP address \"pip-global-v6\" is referenced by id and its address is not in the input; fill in its IPv6 address"),
        "{toml}"
    );
}

#[test]
fn strict_passes_when_nothing_is_left() {
    let path = example("azure-standard-lb.json");
    let out = import_azure(&path, &["--dsr-encapsulation", "ipip", "--strict"]);
    assert_success(&out);
}
