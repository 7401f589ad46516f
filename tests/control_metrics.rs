//! The metrics endpoint scraped over real TCP on 127.0.0.1 and parsed by a real Prometheus parser:
//! the reference Python client's `text_string_to_metric_families` (Debian package
//! `python3-prometheus-client`, installed by scripts/setup.sh).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vipmux::control::metrics::{
    names, ApplianceMetrics, MemberMetrics, PortMetrics, RuleMetrics, SnatMetrics, WorkerMetrics,
    CONTENT_TYPE,
};
use vipmux::control::{Encoder, MetricType, MetricsServer, MetricsSource};

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    out.append({
        "name": fam.name,
        "type": fam.type,
        "help": fam.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": repr(float(s.value))} for s in fam.samples],
    })
json.dump(out, sys.stdout)
"#;

#[derive(Debug, Deserialize)]
struct Family {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: String,
}

impl Sample {
    fn value(&self) -> f64 {
        self.value
            .parse()
            .unwrap_or_else(|_| panic!("value {:?}", self.value))
    }
}

/// A Python interpreter that has `prometheus_client`, preferring the system one.
fn python() -> String {
    let mut candidates = vec!["/usr/bin/python3".to_string(), "python3".to_string()];
    if let Ok(p) = std::env::var("VIPMUX_PYTHON") {
        candidates.insert(0, p);
    }
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import prometheus_client.parser"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py.clone();
        }
    }
    panic!(
        "no python3 with prometheus_client among {candidates:?}: run scripts/setup.sh \
         (Debian package python3-prometheus-client)"
    );
}

/// Parse an exposition with the reference parser; a parse error fails the test.
fn parse(text: &str) -> Vec<Family> {
    let mut child = Command::new(python())
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus parser rejected the exposition: {}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One HTTP exchange: returns (status line, headers lowercased, body).
fn http(addr: SocketAddr, request: &[u8]) -> (String, BTreeMap<String, String>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

fn scrape(addr: SocketAddr) -> String {
    let (status, headers, body) = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some(CONTENT_TYPE)
    );
    assert_eq!(headers.get("content-length"), Some(&body.len().to_string()));
    String::from_utf8(body).unwrap()
}

const ODD: &str = "we\"ird\\na\nme,x=}{ é";

fn test_source() -> ApplianceMetrics {
    ApplianceMetrics {
        forwarding: true,
        config_generation: 3,
        received: 1_000_000,
        transmitted: 999_990,
        drops: vec![
            ("no_rule".into(), 7),
            ("fragment".into(), 2),
            ("tx_full".into(), 0),
        ],
        icmp_errors: vec![("to_member".into(), 4), ("no_flow".into(), 1)],
        rules: vec![
            RuleMetrics {
                frontend: "web".into(),
                rule: "https".into(),
                packets: 5000,
                bytes: 4_000_000,
                syns: 100,
                new_flows: 99,
                active_flows: 12,
                idle_expired_flows: 6,
                idle_late_packets: 3,
            },
            RuleMetrics {
                frontend: "dns".into(),
                rule: "udp53".into(),
                packets: 10,
                ..Default::default()
            },
        ],
        members: vec![
            MemberMetrics {
                pool: "be".into(),
                member: "vm1".into(),
                new_flows: 60,
                active_flows: 8,
                healthy: true,
                ..Default::default()
            },
            MemberMetrics {
                pool: "be".into(),
                member: ODD.into(),
                new_flows: 39,
                active_flows: 4,
                packets: 410,
                syns: 41,
                replies: 377,
                healthy: false,
            },
        ],
        snat: vec![SnatMetrics {
            rule: "egress".into(),
            pool: "be".into(),
            member: "vm1".into(),
            allocated_ports: 1024,
            used_ports: 17,
            pending: 2,
            successful: 300,
            failed: 5,
        }],
        workers: vec![WorkerMetrics {
            worker: "0".into(),
            polls: 1000,
            busy_polls: 400,
            busy_ns: 2_500_000_000,
            max_busy_ns: 3_000_000,
            handoff_sent: 7,
            handoff_received: 5,
            handoff_full: 1,
            tx_blocked: 9,
            tx_blocked_ns: 1_500_000_000,
        }],
        snat_syns: vec![("10.1.0.100".into(), 321)],
        mbufs_in_use: 1234,
        ports: vec![PortMetrics {
            interface: "dc".into(),
            rx_missed: 11,
            rx_nombuf: 12,
            rx_errors: 13,
            tx_errors: 14,
            link_downs: 2,
            link_ups: 3,
        }],
        ..ApplianceMetrics::default()
    }
}

fn family<'a>(fams: &'a [Family], name: &str) -> &'a Family {
    fams.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("family {name} missing"))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value_of(fam: &Family, l: &[(&str, &str)]) -> f64 {
    let want = labels(l);
    fam.samples
        .iter()
        .find(|s| s.labels == want)
        .unwrap_or_else(|| panic!("{} has no sample {want:?}: {:?}", fam.name, fam.samples))
        .value()
}

#[test]
fn scrape_appliance_metrics_and_parse() {
    let server = MetricsServer::start("127.0.0.1:0", Arc::new(test_source())).unwrap();
    let text = scrape(server.local_addr());
    let fams = parse(&text);

    // The parser strips `_total` from counter family names; sample names keep it.
    let rx = family(&fams, "vipmux_packets_received");
    assert_eq!(rx.kind, "counter");
    assert_eq!(rx.samples[0].name, names::PACKETS_RECEIVED);
    assert_eq!(rx.samples[0].value(), 1_000_000.0);
    assert_eq!(
        family(&fams, "vipmux_packets_transmitted").samples[0].value(),
        999_990.0
    );
    assert_eq!(value_of(family(&fams, "vipmux_forwarding"), &[]), 1.0);
    assert_eq!(
        value_of(family(&fams, "vipmux_config_generation"), &[]),
        3.0
    );

    let drops = family(&fams, "vipmux_drops");
    assert_eq!(drops.kind, "counter");
    assert_eq!(drops.help, "Packets dropped, by reason.");
    assert_eq!(value_of(drops, &[("reason", "no_rule")]), 7.0);
    assert_eq!(value_of(drops, &[("reason", "fragment")]), 2.0);
    assert_eq!(value_of(drops, &[("reason", "tx_full")]), 0.0);
    let icmp = family(&fams, "vipmux_icmp_errors");
    assert_eq!(icmp.kind, "counter");
    assert_eq!(value_of(icmp, &[("outcome", "to_member")]), 4.0);
    assert_eq!(value_of(icmp, &[("outcome", "no_flow")]), 1.0);

    let web = [("frontend", "web"), ("rule", "https")];
    assert_eq!(value_of(family(&fams, "vipmux_rule_packets"), &web), 5000.0);
    assert_eq!(
        value_of(family(&fams, "vipmux_rule_bytes"), &web),
        4_000_000.0
    );
    assert_eq!(value_of(family(&fams, "vipmux_rule_syns"), &web), 100.0);
    assert_eq!(value_of(family(&fams, "vipmux_rule_new_flows"), &web), 99.0);
    let active = family(&fams, names::RULE_ACTIVE_FLOWS);
    assert_eq!(active.kind, "gauge");
    assert_eq!(value_of(active, &web), 12.0);
    assert_eq!(
        value_of(active, &[("frontend", "dns"), ("rule", "udp53")]),
        0.0
    );

    // Idle-timeout counters per rule.
    let expired = family(&fams, "vipmux_rule_idle_expired_flows");
    assert_eq!(expired.kind, "counter");
    assert_eq!(expired.samples[0].name, names::RULE_IDLE_EXPIRED_FLOWS);
    assert_eq!(value_of(expired, &web), 6.0);
    let late = family(&fams, "vipmux_rule_idle_late_packets");
    assert_eq!(late.kind, "counter");
    assert_eq!(value_of(late, &web), 3.0);
    assert_eq!(
        value_of(late, &[("frontend", "dns"), ("rule", "udp53")]),
        0.0
    );

    // Per-member packets, SYNs and NAT replies.
    let odd = [("pool", "be"), ("member", ODD)];
    for (fam, name, want) in [
        ("vipmux_member_packets", names::MEMBER_PACKETS, 410.0),
        ("vipmux_member_syns", names::MEMBER_SYNS, 41.0),
        ("vipmux_member_replies", names::MEMBER_REPLIES, 377.0),
    ] {
        let f = family(&fams, fam);
        assert_eq!(f.kind, "counter", "{fam}");
        assert_eq!(f.samples[0].name, name);
        assert_eq!(value_of(f, &odd), want, "{fam}");
        assert_eq!(value_of(f, &[("pool", "be"), ("member", "vm1")]), 0.0);
    }

    // Outbound SYNs: Azure's SYN count with direction out, per SNAT frontend IP.
    let syns = family(&fams, "vipmux_lb_syns");
    assert_eq!(syns.kind, "counter");
    assert_eq!(syns.samples[0].name, names::LB_SYNS);
    let out = [
        ("frontend_ip", "10.1.0.100"),
        ("frontend_port", "snat"),
        ("protocol", "tcp"),
        ("direction", "out"),
    ];
    assert_eq!(value_of(syns, &out), 321.0);

    let health = family(&fams, names::MEMBER_HEALTH);
    assert_eq!(health.kind, "gauge");
    assert_eq!(value_of(health, &[("pool", "be"), ("member", "vm1")]), 1.0);
    // The odd label value survives escaping and unescaping byte for byte.
    assert_eq!(value_of(health, &[("pool", "be"), ("member", ODD)]), 0.0);
    assert_eq!(
        value_of(
            family(&fams, "vipmux_member_new_flows"),
            &[("pool", "be"), ("member", ODD)]
        ),
        39.0
    );
    assert_eq!(
        value_of(
            family(&fams, names::MEMBER_ACTIVE_FLOWS),
            &[("pool", "be"), ("member", ODD)]
        ),
        4.0
    );

    let snat = [("rule", "egress"), ("pool", "be"), ("member", "vm1")];
    assert_eq!(
        value_of(family(&fams, names::SNAT_ALLOCATED_PORTS), &snat),
        1024.0
    );
    assert_eq!(value_of(family(&fams, names::SNAT_USED_PORTS), &snat), 17.0);
    assert_eq!(value_of(family(&fams, names::SNAT_PENDING), &snat), 2.0);
    let conns = family(&fams, "vipmux_snat_connections");
    assert_eq!(conns.kind, "counter");
    let with_state = |s| [snat[0], snat[1], snat[2], ("state", s)];
    assert_eq!(value_of(conns, &with_state("successful")), 300.0);
    assert_eq!(value_of(conns, &with_state("failed")), 5.0);

    let polls = family(&fams, "vipmux_worker_polls");
    assert_eq!(polls.kind, "counter");
    assert_eq!(
        value_of(polls, &[("worker", "0"), ("result", "busy")]),
        400.0
    );
    assert_eq!(
        value_of(polls, &[("worker", "0"), ("result", "empty")]),
        600.0
    );
    assert_eq!(
        value_of(
            family(&fams, "vipmux_worker_busy_seconds"),
            &[("worker", "0")]
        ),
        2.5
    );
    for (name, v) in [
        ("vipmux_port_rx_missed", 11.0),
        ("vipmux_port_rx_nombuf", 12.0),
        ("vipmux_port_rx_errors", 13.0),
        ("vipmux_port_tx_errors", 14.0),
        ("vipmux_port_link_down", 2.0),
        ("vipmux_port_link_up", 3.0),
    ] {
        let fam = family(&fams, name);
        assert_eq!(fam.kind, "counter", "{name}");
        assert_eq!(value_of(fam, &[("interface", "dc")]), v, "{name}");
    }
    let handoffs = family(&fams, "vipmux_worker_handoffs");
    assert_eq!(handoffs.kind, "counter");
    for (direction, n) in [("sent", 7.0), ("received", 5.0), ("dropped", 1.0)] {
        assert_eq!(
            value_of(handoffs, &[("worker", "0"), ("direction", direction)]),
            n
        );
    }

    for (name, v) in [
        ("vipmux_worker_tx_blocked", 9.0),
        ("vipmux_worker_tx_blocked_seconds", 1.5),
    ] {
        let fam = family(&fams, name);
        assert_eq!(fam.kind, "counter", "{name}");
        assert_eq!(value_of(fam, &[("worker", "0")]), v, "{name}");
    }
    assert_eq!(
        value_of(
            family(&fams, "vipmux_worker_max_busy_iteration_seconds"),
            &[("worker", "0")]
        ),
        0.003
    );
    assert_eq!(value_of(family(&fams, "vipmux_mbufs_in_use"), &[]), 1234.0);

    // Every family is declared exactly once.
    let mut seen: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "duplicate families in\n{text}");
    server.shutdown();
}

struct Odd;
impl MetricsSource for Odd {
    fn render(&self, enc: &mut Encoder) {
        enc.family(
            "odd_total",
            MetricType::Counter,
            "help with \\ backslash\nand newline",
        );
        enc.sample(&[("v", "a\\b")], 1u64);
        enc.gauge("odd_float", "floats", &[("k", "\"quoted\"")], 0.25f64);
        enc.gauge("odd_float", "", &[("k", "inf")], f64::INFINITY);
        enc.gauge("odd_float", "", &[("k", "neg")], -3.5f64);
        enc.gauge("odd_float", "", &[("k", "")], f64::NAN);
        // Back to the first family after another one: still one family in the output.
        enc.family("odd_total", MetricType::Counter, "ignored")
            .sample(&[("v", "\n")], 2u64);
        enc.family("odd_empty", MetricType::Gauge, "declared without samples");
    }
}

#[test]
fn encoder_escaping_and_special_values_parse() {
    let server = MetricsServer::start("127.0.0.1:0", Arc::new(Odd)).unwrap();
    let text = scrape(server.local_addr());
    let fams = parse(&text);
    let odd = family(&fams, "odd");
    assert_eq!(odd.help, "help with \\ backslash\nand newline");
    assert_eq!(value_of(odd, &[("v", "a\\b")]), 1.0);
    assert_eq!(value_of(odd, &[("v", "\n")]), 2.0);
    let fl = family(&fams, "odd_float");
    assert_eq!(fl.kind, "gauge");
    assert_eq!(value_of(fl, &[("k", "\"quoted\"")]), 0.25);
    assert_eq!(value_of(fl, &[("k", "inf")]), f64::INFINITY);
    assert_eq!(value_of(fl, &[("k", "neg")]), -3.5);
    assert!(value_of(fl, &[("k", "")]).is_nan());
    assert!(family(&fams, "odd_empty").samples.is_empty());
    assert_eq!(fams.len(), 3);
}

#[test]
fn http_edges() {
    let server = MetricsServer::start("127.0.0.1:0", Arc::new(test_source())).unwrap();
    let addr = server.local_addr();
    let (status, _, body) = http(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(!body.is_empty());
    let (status, _, _) = http(addr, b"GET /metricsx HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, headers, body) = http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty());
    assert!(headers["content-length"].parse::<usize>().unwrap() > 0);
    // A query string is ignored.
    let (status, _, _) = http(addr, b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    // An endless header is cut off with 431, without reading it all.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&big);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        assert!(
            raw.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    // A client that connects and leaves without a request.
    drop(TcpStream::connect(addr).unwrap());
    // Still serving, and each scrape parses.
    for _ in 0..3 {
        parse(&scrape(addr));
    }
    server.shutdown();
}

#[test]
fn idle_and_partial_connections_do_not_block_scrapes() {
    let server = MetricsServer::start("127.0.0.1:0", Arc::new(test_source())).unwrap();
    let addr = server.local_addr();
    // Connections that never send, and one stuck in the middle of its request head.
    let mut held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut partial = TcpStream::connect(addr).unwrap();
    partial
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x")
        .unwrap();
    held.push(partial);
    assert!(scrape(addr).contains(names::PACKETS_RECEIVED));
    drop(held);
}
