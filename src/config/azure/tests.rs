//! Tests of the whole import on small inputs (the expression and field tests are beside their code).

use serde_json::json;

use super::*;

#[test]
fn flattened_and_nested_forms_read_the_same() {
    let nested = json!({
        "type": "Microsoft.Network/loadBalancers", "name": "lb",
        "properties": {
            "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
            "backendAddressPools": [{ "name": "p", "properties": { "loadBalancerBackendAddresses": [
                { "name": "a", "properties": { "ipAddress": "10.0.0.4" } } ] } }],
            "loadBalancingRules": [{ "name": "r", "properties": {
                "frontendIPConfiguration": { "id": "x/frontendIPConfigurations/fe" },
                "backendAddressPool": { "id": "x/backendAddressPools/p" },
                "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 } }]
        }
    });
    let flat = json!({
        "type": "Microsoft.Network/loadBalancers", "name": "lb",
        "frontendIpConfigurations": [{ "name": "fe", "privateIpAddress": "10.0.0.9" }],
        "backendAddressPools": [{ "name": "p", "loadBalancerBackendAddresses": [
            { "name": "a", "ipAddress": "10.0.0.4" } ] }],
        "loadBalancingRules": [{ "name": "r",
            "frontendIpConfiguration": { "id": "x/frontendIPConfigurations/fe" },
            "backendAddressPool": { "id": "x/backendAddressPools/p" },
            "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 }]
    });
    let opts = ImportOptions::default();
    let a = import(&nested, &opts).unwrap();
    let b = import(&flat, &opts).unwrap();
    assert_eq!(a.toml, b.toml);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    crate::config::Config::from_str(&a.toml, "t").unwrap();
}

#[test]
fn missing_required_property_names_the_path() {
    let lb = json!({
        "type": "Microsoft.Network/loadBalancers", "name": "lb",
        "properties": {
            "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
            "probes": [{ "name": "p", "properties": { "port": 80 } }]
        }
    });
    let e = import(&lb, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.field, "properties.probes[0].properties.protocol");
    assert!(e.message.contains("required"), "{e}");
}

#[test]
fn symbolic_name_resources_and_nested_children() {
    let t = json!({ "languageVersion": "2.0", "resources": {
        "lb": { "type": "Microsoft.Network/loadBalancers", "name": "lb1", "properties": {
            "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }] },
            "resources": [{ "type": "inboundNatRules", "name": "n", "properties": {
                "frontendIPConfiguration": { "id": "x/frontendIPConfigurations/FE" },
                "protocol": "Tcp", "frontendPort": 2200, "backendPort": 22 } }] },
        "other": { "type": "Microsoft.Network/loadBalancers/inboundNatRules", "name": "lb2/m" },
        "pip": { "type": "Microsoft.Network/publicIPAddresses", "name": "pip" }
    }});
    let imp = import(&t, &ImportOptions::default()).unwrap();
    assert_eq!(imp.load_balancer, "lb1");
    // The nested NAT rule is read (its target NIC is not in the input: commented out); the other
    // load balancer's child is not this import's business.
    assert_eq!(imp.placeholders, 1, "{:?}", imp.warnings);
    assert!(imp.toml.contains("# name = \"n\""), "{}", imp.toml);
    assert!(imp.toml.contains("# frontend = \"fe\""), "{}", imp.toml);
    assert!(!imp.toml.contains("lb2"), "{}", imp.toml);
}

#[test]
fn names_with_quotes_and_backslashes_render_as_valid_toml() {
    let lb = json!({
        "type": "Microsoft.Network/loadBalancers", "name": "lb \"q\"",
        "properties": {
            "frontendIPConfigurations": [{ "name": "fe\\1", "properties": { "privateIPAddress": "10.0.0.9" } }],
            "backendAddressPools": [{ "name": "p'1", "properties": { "loadBalancerBackendAddresses": [
                { "name": "a\"b", "properties": { "ipAddress": "10.0.0.4" } } ] } }],
            "loadBalancingRules": [{ "name": "r", "properties": {
                "frontendIPConfiguration": { "id": "x/frontendIPConfigurations/fe\\1" },
                "backendAddressPool": { "id": "x/backendAddressPools/p'1" },
                "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 } }]
        }
    });
    let imp = import(&lb, &ImportOptions::default()).unwrap();
    let c = crate::config::Config::from_str(&imp.toml, "t").unwrap();
    assert_eq!(c.frontends[0].name, "fe\\1");
    assert_eq!(c.backend_pools[0].name, "p'1");
    assert_eq!(c.backend_pools[0].members[0].name, "a\"b");
}

#[test]
fn a_pool_without_members_is_a_placeholder() {
    let lb = json!({
        "type": "Microsoft.Network/loadBalancers", "name": "lb",
        "properties": {
            "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
            "backendAddressPools": [{ "name": "empty" }]
        }
    });
    let imp = import(&lb, &ImportOptions::default()).unwrap();
    assert_eq!(imp.placeholders, 1);
    assert!(
        imp.toml
            .contains("# FILL IN: the input names no member of this pool; add its members"),
        "{}",
        imp.toml
    );
    assert!(imp.warnings[0].contains("the input names no member"));
}
