//! The shipped examples: the reference example (`examples/spec-example.toml`) validates and
//! compiles; the broken one fails with precise messages; `vipmux check` exits accordingly.

use std::process::Command;

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn spec_example_validates_and_compiles() {
    let c = Config::load(example("spec-example.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.appliance.hash_seed, 0x5eed_cafe);
    assert_eq!(c.backend_pools[0].members[1].weight, 2);
    let s = Snapshot::compile(&c, &Health::all_up(&c));
    let vip = u32::from(std::net::Ipv4Addr::new(10, 1, 0, 100));
    assert_eq!(s.lookup(vip, 6, 80).map(|r| r.name.as_str()), Some("web"));
    assert_eq!(
        s.lookup(vip, 6, 50001).map(|r| r.name.as_str()),
        Some("rdp-vm1")
    );
    assert_eq!(
        s.lookup(vip, 6, 50199).map(|r| r.name.as_str()),
        Some("ssh-pool")
    );
    assert!(s.lookup(vip, 17, 80).is_none());
}

#[test]
fn broken_example_fails_with_precise_messages() {
    let path = example("broken.toml");
    let e = Config::load(&path).unwrap_err();
    let text = e.to_string();
    let p = path.display().to_string();
    let expected = [
        format!("{p}:6:11: dataplane.workers = 0: must be 1..=128"),
        format!("{p}:20:8: frontends[1] (\"web-fe\") name = \"web-fe\": duplicate name; already used by frontends[0]"),
        format!("{p}:28:51: backend_pools[0] (\"web\") members[1].weight = 0: must be 1..=1000"),
        format!("{p}:47:9: load_balancing_rules[0] (\"web\") probe = \"http-8080\": no such probe; defined probes: \"http-80\""),
        format!("{p}:54:17: load_balancing_rules[1] (\"web-again\") frontend_port = 80: frontend \"web-fe\" tcp port 80 is already used by load_balancing_rules[0] (\"web\")"),
        format!("{p}:62:17: load_balancing_rules[2] (\"dsr\") frontend_port = 70000: must be 1..=65535"),
        format!("{p}:70:29: inbound_nat_rules[0] (\"ssh-pool\") frontend_port_range_start = 79: port range 79..=80 overlaps"),
        format!("{p}:79:28: outbound_rules[0] (\"egress\") allocated_outbound_ports = 1001: must be 0 (Azure's default table) or a multiple of 8"),
        format!("{p}:80:24: outbound_rules[0] (\"egress\") idle_timeout_minutes = 121: must be 4..=120 minutes"),
    ];
    for x in &expected {
        assert!(text.contains(x.as_str()), "missing\n{x}\nin\n{text}");
    }
    assert_eq!(e.len(), 15, "{text}");
}

#[test]
fn check_command_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_vipmux");
    let ok = Command::new(bin)
        .args(["check"])
        .arg(example("spec-example.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success());
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("rule web: tcp 80 -> 8080, pool web (2 members)"),
        "{out}"
    );
    assert!(out.contains("maglev 65537 entries"), "{out}");
    assert!(out.contains("50101 -> vm2 (10.1.0.12):22"), "{out}");
    let bad = Command::new(bin)
        .args(["check"])
        .arg(example("broken.toml"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("15 errors, nothing applied"), "{err}");
    let missing = Command::new(bin)
        .args(["check", "/nonexistent/vipmux.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read file"));
}

#[test]
fn scale_out_example_validates_and_renders_the_daemon_config() {
    let c = Config::load(example("scale-out.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.frontends[0].announced(c.bgp.as_ref()));
    let out = Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .args(["bgp-config", "--vipmux", "/usr/bin/vipmux", "--config"])
        .arg(example("scale-out.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("neighbor 10.1.0.1 {"), "{text}");
    assert!(
        text.contains("run /usr/bin/vipmux bgp-helper --socket /run/vipmux/vipmux.sock;"),
        "{text}"
    );
    assert!(text.contains("hold-time 3;"), "{text}");
    let check = Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .arg("check")
        .arg(example("scale-out.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("bgp exabgp: AS 65010 router-id 10.1.0.2 next-hop 10.1.0.2"),
        "{text}"
    );
    assert!(text.contains("  announces: web"), "{text}");
}

#[test]
fn check_accepts_and_prints_a_dual_stack_configuration() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dual_stack.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .arg("check")
        .arg(&fixture)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "interface dc on p0: 10.1.0.2/24 via 10.1.0.1, fd00:1::2/64 via fe80::1, mtu 1500",
        "frontend fe6 fd00:1::100:",
        "  rule web6: tcp 80 -> 8080, pool web6 (3 members)",
        "  member vm3 fd00:2::13 weight 1 admin_state None (via fe80::1)",
        "    50101 -> vm2 (fd00:1::12):22",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    // IPv6 rules are forwarded: no warning about them.
    assert!(!stderr.contains("IPv6"), "{stderr}");
}
