//! DPDK profiles of the DPDK tests: fixture files (`tests/fixtures/dpdk_*_profile.toml`) edited as
//! TOML documents for what only the run knows (the hugepage mode, the veth a port binds to).
#![allow(dead_code)]

/// The hugepage mode of the run: VIPMUX_TEST_HUGEPAGES (auto | on | off; default auto).
pub fn hugepages_mode() -> String {
    std::env::var("VIPMUX_TEST_HUGEPAGES").unwrap_or_else(|_| "auto".into())
}

/// The net_af_packet test's profile with `hugepages` and its one port bound to interface `iface`.
pub fn af_packet(hugepages: &str, iface: &str) -> String {
    let mut p = fixture(include_str!("../fixtures/dpdk_af_packet_profile.toml"));
    p.insert("hugepages".into(), hugepages.into());
    let port = p["ports"]
        .as_array_mut()
        .and_then(|ports| ports.first_mut())
        .and_then(toml::Value::as_table_mut)
        .expect("one [[ports]]");
    port.insert(
        "vdev".into(),
        format!("net_af_packet0,iface={iface}").into(),
    );
    serialize(&p)
}

/// The net_ring loopback test's profile with `hugepages`.
pub fn ring_pair(hugepages: &str) -> String {
    let mut p = fixture(include_str!("../fixtures/dpdk_ring_pair_profile.toml"));
    p.insert("hugepages".into(), hugepages.into());
    serialize(&p)
}

/// The EAL of a test on the net_ring pair (`origin`: the test file, for errors), with the
/// run's hugepage mode.
pub fn ring_pair_eal(origin: &str) -> &'static vipmux::dpdk::Eal {
    use vipmux::dpdk::{Eal, HugepageStatus, Profile};
    let profile = Profile::parse(&ring_pair(&hugepages_mode()), origin).expect("profile");
    let plan = profile
        .eal_plan(&[], HugepageStatus::detect(), std::process::id())
        .expect("plan");
    Eal::init(&plan.args).expect("EAL init")
}

fn fixture(text: &str) -> toml::Table {
    text.parse().expect("the profile fixture is TOML")
}

fn serialize(p: &toml::Table) -> String {
    toml::to_string(p).expect("serialize the profile")
}
