//! `rte_flow` rules through vipmux's DPDK room (docs/design.md §6.2) on the virtual devices of
//! this machine: what each driver answers to the rules NIC steering programs, that a rule a
//! driver accepts is created and destroyed, and that a refusal carries the driver's message.
//! `net_tap` implements `rte_flow` as TC filters (with its own limits: no source-only or
//! destination-only RSS, and no flow support at all on a kernel without the multiq qdisc);
//! `net_ring` implements none. A NIC that steers by flow owner is not available here.
//!
//! Needs root (`net_tap` creates a kernel interface); skipped otherwise, and fails instead under
//! `CI=true` or `VIPMUX_REQUIRE_NETNS=1`.

mod common;

use std::net::Ipv4Addr;

use vipmux::balance::steer::{SteerAction, SteerPlan, SteerRule};
use vipmux::dpdk::{Eal, FlowRules, Mempool, Port, PortConfig};
use vipmux::wire::ipv4::protocol;

/// The rule NIC steering gives frontend 10.1.0.100 for TCP.
fn to_vip() -> SteerRule {
    SteerRule {
        dst: Some(Ipv4Addr::new(10, 1, 0, 100)),
        ..SteerRule::any(protocol::TCP, SteerAction::HashSource)
    }
}

#[test]
fn drivers_answer_the_steering_rules_and_tap_takes_a_queue_rule() {
    if common::skip_unless_root("drivers_answer_the_steering_rules") {
        return;
    }
    let iface = format!("vmxflow{}", std::process::id() % 100_000);
    let args: Vec<String> = [
        "vipmux-test",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--log-level=lib.eal:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--file-prefix=vmxflow{}", std::process::id()),
        format!("--vdev=net_tap0,iface={iface}"),
        "--vdev=net_ring0".into(),
    ])
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::create(eal, "flow_test", 4095, 256, 2176, None).expect("mempool");
    let two = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rx_descriptors: 256,
        tx_descriptors: 256,
        ..Default::default()
    };
    let tap = Port::open(eal, "net_tap0", &two, &pool).expect("tap port");
    let ring = Port::open(eal, "net_ring0", &PortConfig::default(), &pool).expect("ring port");
    let key = vipmux::balance::owner::RSS_KEY;

    // The capability probe and the driver agree: net_tap has no source-only hashing.
    let info = tap.info().expect("info");
    eprintln!(
        "net_tap: flow_type_rss_offloads {:#x}, can steer by endpoint: {}",
        info.flow_type_rss_offloads,
        info.can_steer_by_endpoint()
    );
    assert!(!info.can_steer_by_endpoint());
    let mut rules = FlowRules::new(&tap);
    let refused = rules.validate(&to_vip(), &key, &[0, 1]);
    eprintln!("net_tap, source-only RSS rule: {refused:?}");

    // A rule net_tap implements (a TC flower filter): to 10.1.0.100 TCP -> queue 1. Created and
    // destroyed where the kernel has the multiq qdisc and flower; without them the driver
    // disables its flow support and the refusal carries the driver's own message.
    let queue = SteerRule {
        action: SteerAction::Queue(1),
        ..to_vip()
    };
    match rules.create(&queue, &key, &[]) {
        Ok(()) => {
            assert_eq!(rules.len(), 1);
            rules.destroy_all().expect("destroy");
            eprintln!("net_tap: QUEUE rule created and destroyed");
        }
        Err(e) => {
            eprintln!("net_tap: QUEUE rule refused: {e}");
            assert_eq!(e.call(), "rte_flow_create");
            let strerror = vipmux::dpdk::strerror(e.code());
            assert!(
                e.message().len() > strerror.len() + 2 && e.message().ends_with(&strerror),
                "the driver's message comes before DPDK's text: {e}"
            );
        }
    }
    assert!(rules.is_empty());
    rules.flush().expect("flush");

    // The same rule as a plan: every rule validated, then created; a refusal leaves none.
    let plan = SteerPlan {
        workers: 2,
        rules: vec![queue],
        outbound: Vec::new(),
    };
    match FlowRules::program(&tap, &plan) {
        Ok((mut created, _)) => {
            assert_eq!(created.len(), 1);
            created.destroy_all().expect("destroy");
        }
        Err(e) => eprintln!("net_tap: plan refused: {e}"),
    }

    // net_ring has no flow API: the error names the call, the rule and the reason.
    let plan = SteerPlan {
        workers: 2,
        rules: vec![to_vip()],
        outbound: Vec::new(),
    };
    let e = FlowRules::program(&ring, &plan).expect_err("net_ring has no rte_flow");
    let text = e.to_string();
    eprintln!("net_ring: {text}");
    assert!(
        text.starts_with(
            "rte_flow_validate failed (net_ring0: ipv4 dst 10.1.0.100 tcp -> rss source endpoint): "
        ),
        "{text}"
    );
    drop(ring);
    drop(tap);
}
