//! One test per configuration validation rule, checking the message.

use vipmux::config::{Config, ConfigErrors};

/// A small valid configuration the tests break one piece at a time.
/// (One header line, then `[appliance]` on line 2: the expected messages carry line numbers.)
const BASE: &str = include_str!("fixtures/validation_base.toml");

fn errors(text: &str) -> ConfigErrors {
    match Config::from_str(text, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts exactly one error, containing every fragment.
fn one(text: &str, fragments: &[&str]) {
    let e = errors(text);
    let s = e.to_string();
    assert_eq!(e.len(), 1, "expected one error, got:\n{s}");
    for f in fragments {
        assert!(s.contains(f), "missing `{f}` in:\n{s}");
    }
    assert!(s.starts_with("t.toml:"), "{s}");
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_is_valid() {
    Config::from_str(BASE, "t.toml").unwrap();
}

#[test]
fn unknown_key_is_reported_with_position() {
    one(
        &replace("name = \"t\"", "name = \"t\"\nbogus = 1"),
        &["t.toml:4:9: appliance.bogus", "unknown key `bogus`"],
    );
}

#[test]
fn unknown_key_in_entry() {
    one(
        &replace("probe = \"hp\"", "probe = \"hp\"\nfloating = true"),
        &[
            "load_balancing_rules[0] (\"web\") floating",
            "unknown key `floating`, expected one of",
        ],
    );
}

#[test]
fn unknown_table() {
    one(
        &with("[[backends]]\nname = \"x\"\n"),
        &["t.toml:38:1: [backends]: unknown table; valid tables: appliance"],
    );
}

#[test]
fn missing_required_key() {
    one(
        &replace("backend_pool = \"web\"\nprobe", "probe"),
        &["load_balancing_rules[0] (\"web\") backend_pool: required key is missing"],
    );
}

#[test]
fn wrong_type() {
    one(
        &replace("frontend_port = 80", "frontend_port = \"80\""),
        &[
            "load_balancing_rules[0] (\"web\") frontend_port",
            "invalid type: string \"80\"",
        ],
    );
}

#[test]
fn bad_enum_value() {
    one(
        &replace("protocol = \"tcp\"", "protocol = \"sctp\""),
        &[
            "protocol",
            "unknown variant `sctp`, expected one of `tcp`, `udp`, `all`",
        ],
    );
}

#[test]
fn address_must_parse() {
    one(
        &replace("address = \"10.1.0.100\"", "address = \"10.1.0.300\""),
        &[
            "frontends[0] (\"fe\") address",
            "invalid IP address \"10.1.0.300\": expected an IPv4 address such as \"10.1.0.11\" or an IPv6 address",
        ],
    );
}

#[test]
fn interface_address_needs_prefix() {
    one(
        &replace("address = \"10.1.0.2/24\"", "address = \"10.1.0.2\""),
        &["interfaces[0] (\"dc\") address", "expected ADDRESS/PREFIX"],
    );
}

#[test]
fn syntax_error_has_position() {
    one(
        &replace("port = 80\n", "port = = 80\n"),
        &["t.toml:26:8: TOML syntax error: extra `=`"],
    );
}

#[test]
fn all_errors_are_collected() {
    let text = replace("frontend_port = 80", "frontend_port = 70000")
        .replacen("port = 80\n", "port = 0\n", 1)
        .replacen("name = \"vm2\"", "name = \"vm1\"", 1);
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e}");
}

#[test]
fn duplicate_names() {
    one(
        &with("[[frontends]]\nname = \"fe\"\naddress = \"10.1.0.101\"\n"),
        &["frontends[1] (\"fe\") name = \"fe\": duplicate name; already used by frontends[0]"],
    );
}

#[test]
fn duplicate_member_names() {
    one(
        &replace("name = \"vm2\"", "name = \"vm1\""),
        &["backend_pools[0] (\"web\") members[1].name = \"vm1\": duplicate member name"],
    );
}

#[test]
fn duplicate_member_addresses() {
    one(
        &replace("10.1.0.12", "10.1.0.11"),
        &["members[1].address = \"10.1.0.11\": duplicate member address"],
    );
}

#[test]
fn dangling_frontend() {
    one(
        &replace("frontend = \"fe\"", "frontend = \"nope\""),
        &["load_balancing_rules[0] (\"web\") frontend = \"nope\": no such frontend; defined frontends: \"fe\""],
    );
}

#[test]
fn dangling_pool() {
    one(
        &replace("backend_pool = \"web\"", "backend_pool = \"api\""),
        &["backend_pool = \"api\": no such backend pool; defined pools: \"web\""],
    );
}

#[test]
fn dangling_probe() {
    one(
        &replace("probe = \"hp\"", "probe = \"x\""),
        &["probe = \"x\": no such probe; defined probes: \"hp\""],
    );
}

#[test]
fn dangling_interface() {
    one(
        &replace("interface = \"dc\"", "interface = \"lan\""),
        &["interface = \"lan\": no such interface"],
    );
}

#[test]
fn port_range() {
    one(
        &replace("frontend_port = 80", "frontend_port = 65536"),
        &["t.toml:33:17: load_balancing_rules[0] (\"web\") frontend_port = 65536: must be 1..=65535, or 0 with protocol = \"all\" for HA ports"],
    );
}

#[test]
fn port_zero_needs_protocol_all() {
    one(
        &replace("frontend_port = 80", "frontend_port = 0"),
        &["frontend_port = 0: must be 1..=65535 (0 means HA ports and needs protocol = \"all\")"],
    );
}

#[test]
fn ha_ports_backend_port_must_be_zero() {
    one(
        &replace("protocol = \"tcp\"\nfrontend_port = 80", "protocol = \"all\"\nfrontend_port = 0"),
        &["backend_port = 8080: an HA-ports rule keeps every port: backend_port must be 0 or omitted"],
    );
}

#[test]
fn backend_port_range() {
    one(
        &replace("backend_port = 8080", "backend_port = 0"),
        &["backend_port = 0: must be 1..=65535 (0 only on HA-ports rules)"],
    );
}

#[test]
fn probe_port_range() {
    one(
        &replace("port = 80\n", "port = 0\n"),
        &["probes[0] (\"hp\") port = 0: must be 1..=65535"],
    );
}

#[test]
fn weight_at_least_one() {
    one(
        &replace(
            "address = \"10.1.0.12\" }",
            "address = \"10.1.0.12\", weight = 0 }",
        ),
        &["members[1].weight = 0: must be 1..=1000"],
    );
}

#[test]
fn interval_at_least_one() {
    one(
        &replace("request_path", "interval_seconds = 0\nrequest_path"),
        &["interval_seconds = 0: must be 1..=3600 seconds"],
    );
}

#[test]
fn threshold_at_least_one() {
    one(
        &replace("request_path", "probe_threshold = 0\nrequest_path"),
        &["probe_threshold = 0: must be 1..=100"],
    );
}

#[test]
fn http_probe_needs_path() {
    one(
        &replace("request_path = \"/health\"\n", ""),
        &["request_path: required with protocol = \"http\" or \"https\""],
    );
}

#[test]
fn tcp_probe_has_no_path() {
    one(
        &replace("protocol = \"http\"", "protocol = \"tcp\""),
        &["request_path = \"/health\": not allowed with protocol = \"tcp\""],
    );
}

#[test]
fn request_path_starts_with_slash() {
    one(
        &replace("\"/health\"", "\"health\""),
        &["request_path = \"health\": must start with \"/\""],
    );
}

#[test]
fn lb_idle_timeout_minutes_range() {
    one(
        &with_rule_field("idle_timeout_minutes = 101"),
        &["idle_timeout_minutes = 101: must be 4..=100 minutes"],
    );
    one(
        &with_rule_field("idle_timeout_minutes = 3"),
        &["idle_timeout_minutes = 3: must be 4..=100 minutes"],
    );
}

fn with_rule_field(line: &str) -> String {
    replace("probe = \"hp\"", &format!("probe = \"hp\"\n{line}"))
}

#[test]
fn idle_timeout_seconds_extension() {
    Config::from_str(&with_rule_field("idle_timeout_seconds = 1"), "t.toml").unwrap();
    one(
        &with_rule_field("idle_timeout_seconds = 0"),
        &["idle_timeout_seconds = 0: must be 1..=86400 seconds"],
    );
}

#[test]
fn idle_timeout_not_both() {
    one(
        &with_rule_field("idle_timeout_minutes = 5\nidle_timeout_seconds = 30"),
        &["idle_timeout_seconds = 30: set idle_timeout_minutes or idle_timeout_seconds, not both"],
    );
}

const RULE2: &str =
    "[[load_balancing_rules]]\nname = \"web2\"\nfrontend = \"fe\"\nbackend_pool = \"web\"\n";

#[test]
fn same_frontend_protocol_port() {
    one(
        &with(&format!("{RULE2}protocol = \"tcp\"\nfrontend_port = 80\nbackend_port = 9090\n")),
        &["load_balancing_rules[1] (\"web2\") frontend_port = 80: frontend \"fe\" tcp port 80 is already used by load_balancing_rules[0] (\"web\")"],
    );
}

#[test]
fn protocol_all_claims_tcp_and_udp() {
    one(
        &with(&format!(
            "{RULE2}protocol = \"all\"\nfrontend_port = 80\nbackend_port = 9090\n"
        )),
        &["frontend \"fe\" tcp port 80 is already used by load_balancing_rules[0]"],
    );
}

#[test]
fn same_backend_destination_for_non_floating_rules() {
    one(
        &with(&format!("{RULE2}protocol = \"tcp\"\nfrontend_port = 81\nbackend_port = 8080\n")),
        &["load_balancing_rules[1] (\"web2\") backend_port = 8080: member \"vm1\" (10.1.0.11) tcp port 8080 is already the backend destination of non-floating load_balancing_rules[0] (\"web\")"],
    );
}

#[test]
fn same_backend_destination_allowed_with_floating_ip() {
    Config::from_str(
        &with(&format!("{RULE2}protocol = \"tcp\"\nfrontend_port = 81\nbackend_port = 8080\nenable_floating_ip = true\n")),
        "t.toml",
    )
    .unwrap();
}

#[test]
fn ha_ports_mixed_with_non_floating_rules() {
    let e = errors(&with(&format!(
        "{RULE2}protocol = \"all\"\nfrontend_port = 0\nenable_floating_ip = true\n"
    )));
    let s = e.to_string();
    assert_eq!(e.len(), 1, "{s}");
    assert!(s.contains("load_balancing_rules[0] (\"web\") enable_floating_ip = false: frontend \"fe\" has the HA-ports rule load_balancing_rules[1] (\"web2\"); every rule on that frontend"), "{s}");
}

#[test]
fn floating_ip_needs_on_link_members_without_encapsulation() {
    let text = replace("address = \"10.1.0.12\" }", "address = \"10.5.0.12\" }").replacen(
        "probe = \"hp\"",
        "probe = \"hp\"\nenable_floating_ip = true",
        1,
    );
    one(&text, &["enable_floating_ip = true: floating IP with dsr_encapsulation = \"none\" needs on-link members, but member \"vm2\" (10.5.0.12) is not on-link"]);
    let ipip = text.replacen(
        "name = \"web\"\nmembers",
        "name = \"web\"\ndsr_encapsulation = \"ipip\"\nmembers",
        1,
    );
    Config::from_str(&ipip, "t.toml").unwrap();
}

#[test]
fn unreachable_member() {
    one(
        &replace("gateway = \"10.1.0.1\"\n", "").replacen("10.1.0.12", "10.5.0.12", 1),
        &["members[1].address = \"10.5.0.12\": unreachable: not on-link of any interface's address and no interface has a gateway"],
    );
}

#[test]
fn gateway_inside_subnet() {
    one(&replace("gateway = \"10.1.0.1\"", "gateway = \"10.2.0.1\""), &["gateway = \"10.2.0.1\": gateway must be another address inside the interface's subnet 10.1.0.2/24"]);
}

#[test]
fn frontend_addresses_unique() {
    one(
        &with("[[frontends]]\nname = \"fe2\"\naddress = \"10.1.0.100\"\n"),
        &["frontends[1] (\"fe2\") address = \"10.1.0.100\": address already used by frontends[0]"],
    );
}

#[test]
fn dataplane_ranges() {
    one(
        &with("[dataplane]\nworkers = 0\n"),
        &["dataplane.workers = 0: must be 1..=128"],
    );
    one(
        &with("[dataplane]\nflow_table_capacity = 0\n"),
        &["flow_table_capacity = 0: must be 1..=268435456"],
    );
    one(
        &with("[dataplane]\nflow_table_capacity_ipv6 = 1000\n"),
        &["t.toml:", "dataplane.flow_table_capacity_ipv6 = 1000: must be 1024..=268435456 (2^28) IPv6 flows per worker"],
    );
    one(
        &with("[dataplane]\nflow_table_capacity_ipv6 = 268435457\n"),
        &["flow_table_capacity_ipv6 = 268435457: must be 1024..=268435456"],
    );
}

#[test]
fn ipv6_flow_table_capacity_is_optional_and_taken_as_given() {
    let c = Config::from_str(
        &with("[dataplane]\nflow_table_capacity_ipv6 = 2097152\n"),
        "t.toml",
    )
    .expect("valid");
    assert_eq!(c.dataplane.flow_table_capacity_ipv6, Some(1 << 21));
    let c = Config::from_str(BASE, "t.toml").expect("valid");
    assert_eq!(c.dataplane.flow_table_capacity_ipv6, None);
}

#[test]
fn metrics_address() {
    one(
        &with("[control]\nmetrics = \"localhost\"\n"),
        &["control.metrics = \"localhost\": must be IP:PORT"],
    );
}

const NAT: &str = "[[inbound_nat_rules]]\nname = \"n\"\nfrontend = \"fe\"\nprotocol = \"tcp\"\nbackend_port = 22\n";

#[test]
fn nat_single_member_form() {
    Config::from_str(
        &with(&format!(
            "{NAT}frontend_port = 50001\ntarget = {{ pool = \"web\", member = \"vm1\" }}\n"
        )),
        "t.toml",
    )
    .unwrap();
    one(
        &with(&format!("{NAT}frontend_port = 50001\ntarget = {{ pool = \"web\", member = \"vm9\" }}\n")),
        &["inbound_nat_rules[0] (\"n\") target.member = \"vm9\": no such member in pool \"web\"; its members: \"vm1\", \"vm2\""],
    );
    one(
        &with(&format!("{NAT}frontend_port = 50001\n")),
        &["inbound_nat_rules[0] (\"n\") target: required with frontend_port"],
    );
}

#[test]
fn nat_forms_are_exclusive() {
    one(
        &with(&format!("{NAT}frontend_port = 50001\nbackend_pool = \"web\"\n")),
        &["inbound_nat_rules[0] (\"n\"): use either frontend_port + target (one member) or frontend_port_range_start/end + backend_pool"],
    );
    one(
        &with(NAT),
        &["inbound_nat_rules[0] (\"n\"): missing the mapping"],
    );
}

#[test]
fn nat_range_form() {
    let ok = format!("{NAT}frontend_port_range_start = 50100\nfrontend_port_range_end = 50101\nbackend_pool = \"web\"\n");
    Config::from_str(&with(&ok), "t.toml").unwrap();
    one(
        &with(&ok.replace("50101", "50099")),
        &["frontend_port_range_end = 50099: must be >= frontend_port_range_start (50100)"],
    );
    one(
        &with(&ok.replace("50101", "50100")),
        &["frontend_port_range_end = 50100: the range holds 1 ports but pool \"web\" has 2 members"],
    );
    one(
        &with(&ok.replace("frontend_port_range_end = 50101\n", "")),
        &["frontend_port_range_end: required in the port-range form"],
    );
}

#[test]
fn nat_range_overlapping_rules() {
    one(
        &with(&format!("{NAT}frontend_port_range_start = 79\nfrontend_port_range_end = 90\nbackend_pool = \"web\"\n")),
        &["inbound_nat_rules[0] (\"n\") frontend_port_range_start = 79: port range 79..=90 overlaps load_balancing_rules[0] (\"web\") on frontend \"fe\" tcp port 80"],
    );
}

#[test]
fn nat_backend_destination_conflicts_with_lb() {
    one(
        &with(&format!("{NAT}frontend_port = 50001\ntarget = {{ pool = \"web\", member = \"vm2\" }}\n").replace("backend_port = 22", "backend_port = 8080")),
        &["inbound_nat_rules[0] (\"n\") backend_port = 8080: member \"vm2\" (10.1.0.12) tcp port 8080 is already the backend destination"],
    );
}

const OUT: &str = "[[outbound_rules]]\nname = \"o\"\nbackend_pool = \"web\"\n";

#[test]
fn outbound_ports_multiple_of_8() {
    one(
        &with(&format!("{OUT}frontends = [\"fe\"]\nallocated_outbound_ports = 100\n")),
        &["outbound_rules[0] (\"o\") allocated_outbound_ports = 100: must be 0 (Azure's default table) or a multiple of 8"],
    );
}

#[test]
fn outbound_ports_within_frontend_capacity() {
    one(
        &with(&format!(
            "{OUT}frontends = [\"fe\"]\nallocated_outbound_ports = 32008\n"
        )),
        &["allocated_outbound_ports = 32008: 32008 ports x 2 members = 64016 ports on each frontend IP, over its 64000 SNAT ports",
          "valid: at most 32000 ports per member"],
    );
    one(
        &with(&format!(
            "{OUT}frontends = [\"fe\"]\nallocated_outbound_ports = 64008\n"
        )),
        &["64008 ports x 2 members = 128016 ports on each frontend IP"],
    );
    // Ports are per member per frontend IP: a second frontend adds ports, not room per IP.
    let two_fes = format!(
        "[[frontends]]\nname = \"fe2\"\naddress = \"10.1.0.101\"\n{OUT}frontends = [\"fe\", \"fe2\"]\nallocated_outbound_ports = 32008\n"
    );
    one(
        &with(&two_fes),
        &["every one of the rule's 2 frontend IPs, 128032 in all, at most 64000 x 2"],
    );
    Config::from_str(&with(&two_fes.replace("32008", "32000")), "t.toml").unwrap();
}

#[test]
fn outbound_blocks_must_fit_around_rule_ports() {
    // 2 x 32000 ports fill the frontend's 64,000; the load-balancing rule on 8080 takes one.
    let text = with(&format!(
        "[[load_balancing_rules]]\nname = \"alt\"\nfrontend = \"fe\"\nprotocol = \"udp\"\nfrontend_port = 8080\nbackend_pool = \"web\"\n{OUT}frontends = [\"fe\"]\nallocated_outbound_ports = 32000\n"
    ));
    one(
        &text,
        &["outbound_rules[0] (\"o\") frontends[0] = \"fe\": no room for member \"vm2\"'s SNAT block on 10.1.0.100 (tcp and udp): 32000 ports asked, 31999 free in all",
          "less the ports of load-balancing and inbound NAT rules"],
    );
    // A TCP-only outbound rule does not meet the UDP port.
    Config::from_str(
        &text.replace(
            "allocated_outbound_ports = 32000",
            "allocated_outbound_ports = 32000\nprotocol = \"tcp\"",
        ),
        "t.toml",
    )
    .unwrap();
}

#[test]
fn outbound_not_on_an_ha_ports_frontend() {
    let text = with(&format!(
        "[[frontends]]\nname = \"ha\"\naddress = \"10.1.0.101\"\n[[load_balancing_rules]]\nname = \"all\"\nfrontend = \"ha\"\nprotocol = \"all\"\nfrontend_port = 0\nbackend_pool = \"web\"\nenable_floating_ip = true\n{OUT}frontends = [\"fe\", \"ha\"]\n"
    ));
    one(
        &text,
        &["outbound_rules[0] (\"o\") frontends[1] = \"ha\": frontend \"ha\" carries the HA-ports rule load_balancing_rules[1] (\"all\"), which takes every port"],
    );
}

#[test]
fn outbound_blocks_split_over_the_workers() {
    let text = with(&format!(
        "{OUT}frontends = [\"fe\"]\nallocated_outbound_ports = 8\n"
    ))
    .replace(
        "name = \"t\"\n",
        "name = \"t\"\n[dataplane]\nworkers = 16\n",
    );
    one(
        &text,
        &["outbound_rules[0] (\"o\") allocated_outbound_ports = 8: 8 SNAT ports per member cannot be split over the 16 workers",
          "valid: at least 16 ports per member"],
    );
    Config::from_str(&text.replace("workers = 16", "workers = 8"), "t.toml").unwrap();
}

#[test]
fn outbound_needs_frontends() {
    one(
        &with(&format!("{OUT}frontends = []\n")),
        &["frontends = []: needs at least one frontend name"],
    );
    one(
        &with(&format!("{OUT}frontends = [\"x\"]\n")),
        &["outbound_rules[0] (\"o\") frontends[0] = \"x\": no such frontend"],
    );
}

#[test]
fn outbound_idle_timeout_range() {
    Config::from_str(
        &with(&format!(
            "{OUT}frontends = [\"fe\"]\nidle_timeout_minutes = 120\n"
        )),
        "t.toml",
    )
    .unwrap();
    one(
        &with(&format!(
            "{OUT}frontends = [\"fe\"]\nidle_timeout_minutes = 121\n"
        )),
        &["idle_timeout_minutes = 121: must be 4..=120 minutes"],
    );
}

#[test]
fn member_in_one_outbound_rule_per_protocol() {
    let two = format!(
        "{OUT}frontends = [\"fe\"]\n{}",
        OUT.replace("\"o\"", "\"o2\"") + "frontends = [\"fe\"]\nprotocol = \"udp\"\n"
    );
    one(&with(&two), &["outbound_rules[1] (\"o2\") backend_pool = \"web\": member \"vm1\" (10.1.0.11) already gets udp SNAT from outbound_rules[0] (\"o\")"]);
}

#[test]
fn empty_names_rejected() {
    let e = errors(&replace("name = \"hp\"", "name = \"\""));
    assert!(
        e.to_string()
            .contains("probes[0] name = \"\": name must not be empty"),
        "{e}"
    );
}

const BGP: &str = "[bgp]\nlocal_as = 65010\nrouter_id = \"10.1.0.2\"\n\n[[bgp.peers]]\naddress = \"10.1.0.1\"\nremote_as = 65000\n";

#[test]
fn bgp_base_is_valid_and_announces_by_default() {
    let c = Config::from_str(&with(BGP), "t.toml").unwrap();
    let bgp = c.bgp.as_ref().unwrap();
    assert_eq!(bgp.peers[0].hold_time_seconds, 90);
    assert!(bgp.graceful_shutdown);
    assert!(c.frontends[0].announced(c.bgp.as_ref()));
    let off = with(BGP).replacen(
        "interface = \"dc\"",
        "interface = \"dc\"\nannounce = false",
        1,
    );
    let c = Config::from_str(&off, "t.toml").unwrap();
    assert!(!c.frontends[0].announced(c.bgp.as_ref()));
}

#[test]
fn bgp_as_numbers_are_checked() {
    one(
        &with(&BGP.replace("local_as = 65010", "local_as = 0")),
        &["bgp.local_as = 0", "AS number 1..=4294967295"],
    );
    one(
        &with(&BGP.replace("remote_as = 65000", "remote_as = 4294967296")),
        &[
            "bgp.peers[0].remote_as = 4294967296",
            "AS number 1..=4294967295",
        ],
    );
}

#[test]
fn bgp_router_id_next_hop_and_communities_are_checked() {
    one(
        &with(&BGP.replace("router_id = \"10.1.0.2\"", "router_id = \"0.0.0.0\"")),
        &["router_id = \"0.0.0.0\"", "unicast IPv4 address"],
    );
    one(
        &with(&BGP.replace(
            "local_as = 65010",
            "local_as = 65010\nnext_hop = \"10.1.0.100\"",
        )),
        &[
            "next_hop = \"10.1.0.100\"",
            "must not be a frontend address",
        ],
    );
    one(
        &with(&BGP.replace(
            "local_as = 65010",
            "local_as = 65010\ncommunities = [\"65000:1\", \"65000\"]",
        )),
        &[
            "communities[1] = \"65000\"",
            "\"ASN:VALUE\", each half 0..=65535",
        ],
    );
    one(
        &with(&BGP.replace("local_as = 65010", "local_as = 65010\nrouter_id_typo = 1")),
        &["unknown key `router_id_typo`"],
    );
}

#[test]
fn bgp_peers_are_checked() {
    one(
        &with("[bgp]\nlocal_as = 65010\nrouter_id = \"10.1.0.2\"\n"),
        &["bgp.peers:", "at least one [[bgp.peers]]"],
    );
    one(
        &with(&format!(
            "{BGP}\n[[bgp.peers]]\naddress = \"10.1.0.1\"\nremote_as = 65001\n"
        )),
        &[
            "peers[1].address = \"10.1.0.1\"",
            "duplicate peer; already defined by peers[0]",
        ],
    );
    one(
        &with(&BGP.replace(
            "remote_as = 65000",
            "remote_as = 65000\nhold_time_seconds = 2",
        )),
        &[
            "peers[0].hold_time_seconds = 2",
            "0 (no keepalives) or 3..=65535",
        ],
    );
    one(
        &with(
            &BGP.replace("daemon_x", "")
                .replace("[bgp]", "[bgp]\ndaemon = \"bird\""),
        ),
        &["unknown variant `bird`", "exabgp"],
    );
}

#[test]
fn announce_needs_bgp() {
    one(
        &replace("interface = \"dc\"", "interface = \"dc\"\nannounce = true"),
        &[
            "frontends[0] (\"fe\") announce = true",
            "needs a [bgp] table",
        ],
    );
}

/// The dual-stack configuration the IPv6 tests break one piece at a time.
const DUAL: &str = include_str!("fixtures/dual_stack.toml");

fn dual(from: &str, to: &str) -> String {
    assert!(DUAL.contains(from), "{from}");
    DUAL.replacen(from, to, 1)
}

#[test]
fn dual_stack_is_valid() {
    let c = Config::from_str(DUAL, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.frontends[1].address.is_ipv6());
    assert_eq!(
        c.interfaces[0].address6.map(|a| a.to_string()),
        Some("fd00:1::2/64".into())
    );
}

#[test]
fn ipv6_member_address_must_parse() {
    one(
        &dual("fd00:1::11", "fd00:1::g"),
        &[
            "t.toml:34:11: backend_pools[1] (\"web6\") members.address",
            "invalid IP address \"fd00:1::g\"",
        ],
    );
}

#[test]
fn rule_frontend_and_pool_are_one_family() {
    one(
        &dual(
            "frontend_port = 80\nbackend_port = 8080\nbackend_pool = \"web4\"",
            "frontend_port = 80\nbackend_port = 8081\nbackend_pool = \"web6\"",
        ),
        &["t.toml:52:16: load_balancing_rules[0] (\"web4\") backend_pool = \"web6\": pool \"web6\" has IPv6 members (\"vm1\" is fd00:1::11) but frontend \"fe4\" is IPv4 (10.1.0.100); a rule's frontend and pool must be one family (a dual-stack frontend is two frontends, one per family"],
    );
}

#[test]
fn nat_rule_frontend_and_pool_are_one_family() {
    one(
        &dual(
            "frontend = \"fe6\"\nprotocol = \"tcp\"\nfrontend_port_range_start",
            "frontend = \"fe4\"\nprotocol = \"tcp\"\nfrontend_port_range_start",
        ),
        &["inbound_nat_rules[0] (\"ssh6\") backend_pool = \"web6\": pool \"web6\" has IPv6 members", "but frontend \"fe4\" is IPv4"],
    );
}

#[test]
fn nat_target_member_is_of_the_frontend_family() {
    one(
        &with(
            "[[frontends]]\nname = \"fe6\"\naddress = \"fd00:1::100\"\n\n[[inbound_nat_rules]]\nname = \"rdp\"\nfrontend = \"fe6\"\nprotocol = \"tcp\"\nfrontend_port = 3389\ntarget = { pool = \"web\", member = \"vm1\" }\nbackend_port = 3389\n",
        ),
        &["inbound_nat_rules[0] (\"rdp\") target.pool = \"web\": pool \"web\" has IPv4 members (\"vm1\" is 10.1.0.11) but frontend \"fe6\" is IPv6 (fd00:1::100)"],
    );
}

#[test]
fn pool_members_are_one_family() {
    one(
        &dual("{ name = \"vm2\", address = \"10.1.0.12\" }", "{ name = \"vm2\", address = \"fd00:1::99\" }"),
        &["backend_pools[0] (\"web4\") members[1].address = \"fd00:1::99\": IPv6 address in a pool whose members[0] (\"vm1\") is IPv4; a pool's members are of one family"],
    );
}

#[test]
fn ipv6_member_needs_an_ipv6_route() {
    one(
        &dual("gateway6 = \"fe80::1\"\n", ""),
        &["backend_pools[1] (\"web6\") members[2].address = \"fd00:2::13\": unreachable: not on-link of any interface's address6 and no interface has a gateway6"],
    );
}

#[test]
fn gateway6_needs_address6() {
    one(
        &dual("address6 = \"fd00:1::2/64\"\n", "").replace("fd00:2::13", "fd00:1::13"),
        &["interfaces[0] (\"dc\") gateway6 = \"fe80::1\": gateway6 needs address6"],
    );
}

#[test]
fn gateway6_is_link_local_or_on_link() {
    one(
        &dual("gateway6 = \"fe80::1\"", "gateway6 = \"fd00:9::1\""),
        &["interfaces[0] (\"dc\") gateway6 = \"fd00:9::1\": gateway6 must be a link-local address (fe80::/10) or another address inside the interface's prefix fd00:1::2/64"],
    );
}

#[test]
fn address6_must_be_ipv6_with_a_prefix() {
    one(
        &dual("address6 = \"fd00:1::2/64\"", "address6 = \"10.1.0.3/24\""),
        &[
            "interfaces[0] (\"dc\") address6",
            "`10.1.0.3` is not an IPv6 address",
        ],
    );
    one(
        &dual(
            "address6 = \"fd00:1::2/64\"",
            "address6 = \"fd00:1::2/129\"",
        ),
        &[
            "interfaces[0] (\"dc\") address6",
            "prefix length `129` is not 0..=128",
        ],
    );
}

#[test]
fn ipv6_frontend_is_not_the_interface_address6() {
    one(
        &dual("address = \"fd00:1::100\"", "address = \"fd00:1::2\""),
        &["frontends[1] (\"fe6\") address = \"fd00:1::2\": address is the appliance's own address on interface \"dc\""],
    );
}

#[test]
fn ipv6_frontend_must_be_unicast() {
    one(
        &dual("address = \"fd00:1::100\"", "address = \"ff02::1\""),
        &["frontends[1] (\"fe6\") address = \"ff02::1\": must be a unicast address"],
    );
}

#[test]
fn an_outbound_rule_is_of_one_family() {
    // IPv6 frontend and IPv6 pool: valid.
    let v6 = dual(
        "frontends = [\"fe4\"]\nbackend_pool = \"web4\"",
        "frontends = [\"fe6\"]\nbackend_pool = \"web6\"",
    );
    let c = Config::from_str(&v6, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.outbound_rules[0].frontends == ["fe6"]);
    one(
        &dual("frontends = [\"fe4\"]", "frontends = [\"fe6\"]"),
        &["outbound_rules[0] (\"egress\") frontends[0] = \"fe6\": frontend \"fe6\" is IPv6 (fd00:1::100); an outbound rule is of one family (pool \"web4\" has IPv4 members, \"vm1\" is 10.1.0.11); valid: an IPv4 frontend: \"fe4\""],
    );
    one(
        &dual(
            "frontends = [\"fe4\"]\nbackend_pool = \"web4\"",
            "frontends = [\"fe4\"]\nbackend_pool = \"web6\"",
        ),
        &["outbound_rules[0] (\"egress\") frontends[0] = \"fe4\": frontend \"fe4\" is IPv4 (10.1.0.100); an outbound rule is of one family (pool \"web6\" has IPv6 members, \"vm1\" is fd00:1::11); valid: an IPv6 frontend: \"fe6\""],
    );
}

#[test]
fn ipv6_floating_ip_may_be_encapsulated() {
    for encap in ["ipip", "gue"] {
        let text = dual(
            "name = \"web6\"\nmembers",
            &format!("name = \"web6\"\ndsr_encapsulation = \"{encap}\"\nmembers"),
        )
        .replace(
            "backend_pool = \"web6\"\nprobe = \"hp\"",
            "backend_pool = \"web6\"\nprobe = \"hp\"\nenable_floating_ip = true",
        );
        Config::from_str(&text, "t.toml")
            .unwrap_or_else(|e| panic!("{encap} over IPv6 is valid: {e}"));
    }
}

#[test]
fn ipv6_floating_ip_needs_on_link_members() {
    one(
        &dual("backend_pool = \"web6\"\nprobe = \"hp\"", "backend_pool = \"web6\"\nprobe = \"hp\"\nenable_floating_ip = true"),
        &["load_balancing_rules[1] (\"web6\") enable_floating_ip = true: floating IP with dsr_encapsulation = \"none\" needs on-link members, but member \"vm3\" (fd00:2::13) is not on-link"],
    );
}

#[test]
fn ipv6_backend_destinations_are_unique() {
    one(
        &format!("{DUAL}\n[[load_balancing_rules]]\nname = \"web6b\"\nfrontend = \"fe6\"\nprotocol = \"tcp\"\nfrontend_port = 81\nbackend_port = 8080\nbackend_pool = \"web6\"\n"),
        &["load_balancing_rules[2] (\"web6b\") backend_port = 8080: member \"vm1\" (fd00:1::11) tcp port 8080 is already the backend destination of non-floating load_balancing_rules[1] (\"web6\")"],
    );
}

#[test]
fn ipv6_vip_is_announced_with_an_ipv6_next_hop() {
    let bgp = "[bgp]\nlocal_as = 65001\nrouter_id = \"10.1.0.2\"\npeers = [{ address = \"10.1.0.1\", remote_as = 65000 }]\n";
    let c = Config::from_str(&format!("{DUAL}\n{bgp}"), "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.frontends[0].announced(c.bgp.as_ref()));
    assert!(c.frontends[1].announced(c.bgp.as_ref()));
    let no_address6 = DUAL
        .lines()
        .filter(|l| !l.starts_with("address6") && !l.starts_with("gateway6"))
        .collect::<Vec<_>>()
        .join("\n");
    let errors = Config::from_str(&format!("{no_address6}\n{bgp}"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("frontends[1] (\"fe6\") announce = true (default): IPv6 VIP fd00:1::100 is announced over BGP but there is no IPv6 next hop"),
        "{errors}"
    );
    one(
        &format!("{DUAL}\n{bgp}").replace("local_as", "next_hop6 = \"fd00:1::100\"\nlocal_as"),
        &["bgp.next_hop6 = \"fd00:1::100\": must not be a frontend address"],
    );
}
