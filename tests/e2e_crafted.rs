//! Crafted and malformed frames at the MUX: vipmux in the one-arm topology with HTTP on
//! the VIP; `scripts/netns/crafted.py` (scapy, Debian's python3-scapy under `/usr/bin/python3`)
//! sends each kind of frame from the router's LAN interface straight to the MUX's MAC: short
//! frames, bad IHL, bad version, total length beyond the frame, IP options, bad TCP data offsets,
//! odd TCP flag combinations, non-IPv4 ethertypes (IPv6, LLDP, random, QinQ), truncated ARP,
//! 802.1Q-tagged junk, TTL 1 and a bad UDP length. After each kind the counter of its reason
//! (`bad_header`, `unsupported`, `ttl`, the slow path's `malformed`, a rule SYN for IP options)
//! must have grown by the number of frames sent; the odd flag combinations must at least have been
//! received. Between kinds and at the end, HTTP through the VIP still works and vipmux still runs.
//! Needs root; skipped otherwise.

mod common;

use std::time::Duration;

use common::appliance::check;
use common::{
    crafted_send, curl_from, skip_unless_root, wait_for, Appliance, BackendReply, ConfigBuilder,
    Topology,
};

/// Frames sent per kind.
const COUNT: u64 = 3;

/// Where each kind must be counted: a JSON pointer into the `counters` answer, or a metric.
enum Expect {
    /// A counter of the control socket's `counters` command.
    Counter(&'static str),
    /// A Prometheus sample (name with labels).
    Metric(&'static str),
}

const RULE_SYNS: &str = "vipmux_rule_syns_total{frontend=\"fe\",rule=\"web\"}";

/// (kind, where it is counted).
const KINDS: &[(&str, Expect)] = &[
    ("short", Expect::Counter("/drops/bad_header")),
    ("bad_ihl", Expect::Counter("/drops/bad_header")),
    ("bad_version", Expect::Counter("/drops/bad_header")),
    ("len_beyond", Expect::Counter("/drops/bad_header")),
    ("ip_options", Expect::Metric(RULE_SYNS)),
    ("bad_doff", Expect::Counter("/drops/bad_header")),
    ("doff_beyond", Expect::Counter("/drops/bad_header")),
    ("syn_fin", Expect::Counter("/received")),
    ("no_flags", Expect::Counter("/received")),
    ("all_flags", Expect::Counter("/received")),
    // IPv6 is forwarded: a datagram to an address without a rule is `no_rule`.
    ("ipv6", Expect::Counter("/drops/no_rule")),
    ("lldp", Expect::Counter("/drops/unsupported")),
    ("random_type", Expect::Counter("/drops/unsupported")),
    ("arp_short", Expect::Counter("/slow_path/drops/malformed")),
    ("vlan_junk", Expect::Counter("/drops/bad_header")),
    ("qinq", Expect::Counter("/drops/unsupported")),
    ("ttl1", Expect::Counter("/drops/ttl")),
    ("udp_bad_len", Expect::Counter("/drops/bad_header")),
];

fn read(app: &Appliance, e: &Expect) -> Result<u64, String> {
    match e {
        Expect::Counter(p) => app.counter(p),
        Expect::Metric(m) => app.metric(m).map(|v| v as u64),
    }
}

fn name(e: &Expect) -> &'static str {
    match e {
        Expect::Counter(p) | Expect::Metric(p) => p,
    }
}

/// The drop counters that moved between two `counters` answers, as `reason+n`.
fn moved(before: &serde_json::Value, after: &serde_json::Value) -> String {
    let mut out = Vec::new();
    if let (Some(b), Some(a)) = (before["drops"].as_object(), after["drops"].as_object()) {
        for (k, v) in a {
            let d = v.as_u64().unwrap_or(0) - b.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            if d > 0 {
                out.push(format!("{k}+{d}"));
            }
        }
    }
    if out.is_empty() {
        "no drop".to_string()
    } else {
        out.join(" ")
    }
}

fn http_ok(topo: &Topology) -> Result<BackendReply, String> {
    let url = format!("http://{}/", topo.get("VIP"));
    let body = curl_from(&topo.ns("client"), &url)?;
    BackendReply::parse(&body).ok_or_else(|| format!("unexpected HTTP answer {body:?}"))
}

fn send(topo: &Topology, kind: &str) -> Result<(), String> {
    crafted_send(topo, kind, COUNT, &[]).map(drop)
}

fn scenario(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    app.wait_members_healthy(&["b1", "b2", "b3"], Duration::from_secs(30))?;
    http_ok(topo).map_err(|e| format!("HTTP through the VIP before the suite: {e}"))?;
    let mut failures = Vec::new();
    for (kind, expect) in KINDS {
        let before_all = app.counters_json()?;
        let before = read(app, expect)?;
        send(topo, kind)?;
        let got = wait_for(Duration::from_secs(5), || {
            read(app, expect).ok().filter(|v| *v >= before + COUNT)
        });
        let after_all = app.counters_json()?;
        let moved = moved(&before_all, &after_all);
        match got {
            Some(v) => eprintln!("{kind:12} {} +{} ({moved})", name(expect), v - before),
            None => {
                eprintln!("{kind:12} NOT counted under {} ({moved})", name(expect));
                failures.push(format!(
                    "{kind}: {} did not grow by {COUNT} (moved: {moved})",
                    name(expect)
                ));
            }
        }
        if !app.is_running() {
            return Err(format!("vipmux exited after the {kind} frames"));
        }
    }
    // TTL 1 earns an ICMP time exceeded from the slow path (rate-limited, at least one). Nothing
    // above waited for it (only for the worker's `ttl` drops).
    let sent = "/slow_path/time_exceeded_sent";
    if let Err(e) = app.wait_counter(sent, Duration::from_secs(5), 1) {
        failures.push(format!("no ICMP time exceeded sent for TTL 1: {e}"));
    }
    // The appliance keeps forwarding.
    for i in 0..10 {
        http_ok(topo).map_err(|e| format!("HTTP request {i} after the crafted frames: {e}"))?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn crafted_frames_are_counted_and_forwarding_continues() {
    if skip_unless_root("crafted_frames_are_counted_and_forwarding_continues") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    // scripts/netns/lib.sh keeps br_netfilter from validating headers on the LAN bridge, so the
    // malformed frames reach the MUX as they would through a physical switch.
    let cfg = ConfigBuilder::one_arm_web();
    let mut app = Appliance::start(&topo, &cfg.build(&topo)).expect("vipmux start");
    let result = scenario(&topo, &mut app);
    check(&app, result);
}
