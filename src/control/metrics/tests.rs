//! Tests of the encoder, the metric set's rendering and the server.

use super::*;

#[test]
fn encoder_groups_families_and_escapes() {
    let mut e = Encoder::new();
    e.counter("a_total", "first\\line\nsecond", &[("k", "v")], 1u64);
    e.gauge("b", "bee", &[], 2.5f64);
    e.counter("a_total", "ignored", &[("k", "x\"y\\z\nw")], 3u64);
    e.gauge("c", "inf", &[("bad-name", "v")], f64::INFINITY);
    e.gauge("d", "nan", &[], f64::NAN);
    let t = e.finish();
    assert_eq!(
        t,
        "# HELP a_total first\\\\line\\nsecond\n# TYPE a_total counter\na_total{k=\"v\"} 1\n\
         a_total{k=\"x\\\"y\\\\z\\nw\"} 3\n# HELP b bee\n# TYPE b gauge\nb 2.5\n\
         # HELP c inf\n# TYPE c gauge\nc{bad_name=\"v\"} +Inf\n# HELP d nan\n# TYPE d gauge\nd NaN\n"
    );
}

#[test]
fn sample_without_family_is_ignored() {
    let mut e = Encoder::new();
    e.sample(&[], 1u64);
    assert_eq!(e.finish(), "");
}

#[test]
fn names_are_sanitized() {
    assert_eq!(sanitize_name("ok_name:x", true), "ok_name:x");
    assert_eq!(sanitize_name("ok:x", false), "ok_x");
    assert_eq!(sanitize_name("9lives", false), "_9lives");
    assert_eq!(sanitize_name("", true), "_");
    assert_eq!(sanitize_name("a-b.c", true), "a_b_c");
}

#[test]
fn appliance_metrics_declare_every_family() {
    let t = render_text(&ApplianceMetrics::default());
    for name in [
        names::PACKETS_RECEIVED,
        names::DROPS,
        names::ICMP_ERRORS,
        names::RULE_ACTIVE_FLOWS,
        names::MEMBER_HEALTH,
        names::SNAT_CONNECTIONS,
    ] {
        assert!(
            t.contains(&format!("# TYPE {name} ")),
            "{name} missing in\n{t}"
        );
    }
}

#[test]
fn azure_families_carry_azure_dimensions() {
    let m = ApplianceMetrics {
        lb_frontends: vec![LbFrontendMetrics {
            frontend_ip: "10.0.0.1".into(),
            frontend_port: "80".into(),
            protocol: "tcp".into(),
            packets_in: 5,
            packets_out: 4,
            bytes_in: 500,
            bytes_out: 400,
            syns_in: 1,
            vip_available: true,
        }],
        lb_backends: vec![LbBackendMetrics {
            frontend_ip: "10.0.0.1".into(),
            frontend_port: "80".into(),
            backend_ip: "10.1.0.11".into(),
            backend_port: "8080".into(),
            protocol: "tcp".into(),
            available: false,
        }],
        ..ApplianceMetrics::default()
    };
    let t = render_text(&m);
    let fe = "frontend_ip=\"10.0.0.1\",frontend_port=\"80\",protocol=\"tcp\"";
    for line in [
        format!("vipmux_lb_vip_availability{{{fe}}} 1"),
        format!("vipmux_lb_packets_total{{{fe},direction=\"out\"}} 4"),
        format!("vipmux_lb_bytes_total{{{fe},direction=\"in\"}} 500"),
        format!("vipmux_lb_syns_total{{{fe},direction=\"in\"}} 1"),
        "vipmux_lb_dip_availability{frontend_ip=\"10.0.0.1\",frontend_port=\"80\",\
         backend_ip=\"10.1.0.11\",backend_port=\"8080\",protocol=\"tcp\"} 0"
            .to_string(),
    ] {
        assert!(t.lines().any(|l| l == line), "{line} missing in\n{t}");
    }
}
