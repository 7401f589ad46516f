//! The TOML the tests write: every configuration fixture validates, and the builders that write
//! configurations and DPDK profiles through the `toml` crate produce the documents they always
//! did (pinned in `tests/fixtures/`). Needs neither root nor DPDK.

mod common;
mod dpdk_profiles;

use std::path::Path;

use common::ConfigBuilder;
use vipmux::config::Config;
use vipmux::dpdk::Profile;

/// The control socket written into the pinned builder outputs.
const SOCKET: &str = "/run/vipmux/test.sock";

fn document(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}

fn validates(text: &str, origin: &str) -> Config {
    Config::from_str(text, origin).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn every_configuration_fixture_validates() {
    for (name, text) in [
        (
            "dataplane_every_rule.toml",
            include_str!("fixtures/dataplane_every_rule.toml"),
        ),
        (
            "dataplane_no_gateway.toml",
            include_str!("fixtures/dataplane_no_gateway.toml"),
        ),
        (
            "validation_base.toml",
            include_str!("fixtures/validation_base.toml"),
        ),
        (
            "e2e_one_arm_every_helper.toml",
            include_str!("fixtures/e2e_one_arm_every_helper.toml"),
        ),
        (
            "e2e_two_arm.toml",
            include_str!("fixtures/e2e_two_arm.toml"),
        ),
        ("dual_stack.toml", include_str!("fixtures/dual_stack.toml")),
    ] {
        validates(text, name);
    }
}

/// Every helper of the builder once, as the end-to-end tests use them.
fn one_arm_every_helper() -> ConfigBuilder {
    let all = ["b1", "b2", "b3"];
    ConfigBuilder::one_arm()
        .appliance("missing_flow = \"drop\"")
        .pool("web", &all, "")
        .pool("tun", &all, "dsr_encapsulation = \"ipip\"")
        .probe_http("http-80", 80, 1, 2)
        .probe_tcp("tcp-80", 80, 1, 2)
        .lb_rule(
            "web",
            "tcp",
            80,
            80,
            "web",
            Some("http-80"),
            "load_distribution = \"source_ip\"",
        )
        .lb_rule(
            "echo",
            "tcp",
            7000,
            7000,
            "web",
            Some("tcp-80"),
            "idle_timeout_seconds = 3\nenable_tcp_reset = true\n",
        )
        .lb_rule(
            "udp-ipip",
            "udp",
            7001,
            7001,
            "tun",
            None,
            "enable_floating_ip = true",
        )
        .nat_rule_member("to-b2", "tcp", 50001, "web", "b2", 3389)
        .nat_rule_range("http-range", "tcp", 50100, 50102, "web", 8080)
}

#[test]
fn one_arm_builder_writes_the_pinned_document() {
    let text = one_arm_every_helper().build_with_socket(Path::new(SOCKET));
    validates(&text, "one-arm");
    assert_eq!(
        document(&text),
        document(include_str!("fixtures/e2e_one_arm_every_helper.toml"))
    );
}

#[test]
fn two_arm_builder_writes_the_pinned_document() {
    let text = ConfigBuilder::two_arm()
        .pool("web", &["b1", "b2", "b3"], "")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "")
        .lb_rule("echo-udp", "udp", 7000, 7000, "web", Some("http-80"), "")
        .build_with_socket(Path::new(SOCKET));
    validates(&text, "two-arm");
    assert_eq!(
        document(&text),
        document(include_str!("fixtures/e2e_two_arm.toml"))
    );
}

#[test]
fn ci_profile_is_named_in_the_dataplane_table() {
    let text = ConfigBuilder::one_arm()
        .with_ci_profile()
        .pool("web", &["b1"], "")
        .lb_rule("web", "tcp", 80, 80, "web", None, "")
        .build_with_socket(Path::new(SOCKET));
    let c = validates(&text, "ci");
    let want = Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config/ci-af-packet.toml");
    let doc = document(&text);
    assert_eq!(
        doc["dataplane"]["dpdk_profile"].as_str(),
        Some(want.to_str().unwrap())
    );
    assert_eq!(c.backend_pools[0].members.len(), 1);
}

#[test]
fn raw_fragments_and_quoting_survive() {
    // A name with quotes and a backslash: the TOML library does the escaping.
    let odd = r#"fe "odd" \ name"#;
    let raw = format!(
        "[[frontends]]\nname = {}\naddress = \"10.1.0.100\"\ninterface = \"dc\"\n",
        toml::Value::from(odd)
    );
    let text = ConfigBuilder::one_arm()
        .without_default_frontend()
        .raw(&raw)
        .build_with_socket(Path::new(r#"/run/a "quoted" dir/vipmux.sock"#));
    let c = validates(&text, "raw");
    assert_eq!(c.frontends.len(), 1);
    assert_eq!(c.frontends[0].name, odd);
    assert_eq!(
        document(&text)["control"]["socket"].as_str(),
        Some(r#"/run/a "quoted" dir/vipmux.sock"#)
    );
}

#[test]
fn af_packet_profile_is_the_one_written_by_hand_before() {
    let text = dpdk_profiles::af_packet("auto", "vmxa123");
    // The text the test used to format itself.
    let before = "hugepages = \"auto\"\ncores = [0]\n[eal]\nargs = [\"--no-pci\", \"--log-level=*:warning\"]\n\
         [mempool]\nmbufs = 4095\n[[ports]]\nname = \"net_af_packet0\"\n\
         vdev = \"net_af_packet0,iface=vmxa123\"\nrx_descriptors = 512\ntx_descriptors = 512\n";
    assert_eq!(document(&text), document(before));
    assert_eq!(
        Profile::parse(&text, "new").expect("profile"),
        Profile::parse(before, "new").expect("profile")
    );
}

#[test]
fn ring_pair_profile_is_the_inline_one_before() {
    let text = dpdk_profiles::ring_pair("off");
    let before = r#"hugepages = "off"
cores = [0]
[eal]
args = ["--no-pci", "--log-level=*:warning"]
[mempool]
mbufs = 4095
[[ports]]
name = "net_ring0"
vdev = "net_ring0"
rx_descriptors = 512
tx_descriptors = 512
[[ports]]
name = "net_ring1"
vdev = "net_ring1"
rx_descriptors = 512
tx_descriptors = 512
"#;
    assert_eq!(document(&text), document(before));
    assert_eq!(
        Profile::parse(&text, "new").expect("profile"),
        Profile::parse(before, "new").expect("profile")
    );
}
