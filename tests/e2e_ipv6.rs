//! IPv6 end to end: vipmux on `net_af_packet` in the `--ipv6` namespace topologies (the IPv4
//! plan's IPv6 twin, with real Linux IPv6 stacks on the client, router and backends), real curl
//! clients and Python HTTP/TCP echo backends serving IPv6 beside IPv4.
//!
//! - One-arm and two-arm: HTTP over IPv6 through the IPv6 VIP, spread over three IPv6 backends
//!   that see the client's IPv6 address; the MUX answers ping6 to the VIP (one-arm); a backend
//!   whose HTTP server stops fails its probe over IPv6 and gets no new flows (one-arm).
//! - Floating IP (MAC rewrite): the backends hold the VIP on `lo` and see it as destination.
//! - Floating IP in IPv6-in-IPv6 and in GUE over IPv6 (`gue_port` 6081) to backends whose
//!   user-space receiver (`scripts/netns/decap.py --ipv6`: the kernel has no ip6tnl or fou device)
//!   hands the inner packet to their stack through a TUN device; they answer the client directly.
//! - Inbound NAT: a frontend port to one member's port.
//! - `source_ip` affinity: every request from one client address reaches one backend.
//! - Reset on idle: the client's blocked read fails with ECONNRESET and the backend's socket
//!   disappears (both kernels accepted the RSTs vipmux sent).
//! - A UDP datagram the client's kernel fragments (IPv6 Fragment header) is dropped and counted.
//! - Packet Too Big after encapsulation: a full-MTU datagram to a floating-IP rule delivered in
//!   IPv6-in-IPv6 does not fit; the client's kernel learns the path MTU from the ICMPv6 Packet
//!   Too Big vipmux sends (`ip -6 route get` shows it).
//! - Dual stack: two frontends, IPv4 and IPv6, over the same backends (a pool of each family)
//!   serve IPv4 and IPv6 clients at once.
//!
//! Needs root; skipped otherwise (a failure with CI=true).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::check;
use common::decap::{tun_rx_packets, Receivers};
use common::idle::{parse_outcome, parse_ready, reset_window, IdleClient};
use common::ipv6::{
    backend_ip6, build6, pool6, requests_from, rule_on, spread_from, up6, url6, Frontends,
};
use common::{
    curl_from, ns_exec, ns_exec_ok, skip_unless_root, wait_for, wait_until, Appliance,
    BackendReply, ConfigBuilder, Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const PROBE_INTERVAL_SECS: u32 = 1;
const PROBE_THRESHOLD: u32 = 2;

/// HTTP on the IPv6 VIP over b1..b3 by their IPv6 addresses, with an HTTP probe (over IPv6).
fn web6(c: ConfigBuilder, extra: &str) -> ConfigBuilder {
    pool6(c, "web6", &ALL, "")
        .probe_http("http-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
        .lb_rule("web", "tcp", 80, 80, "web6", Some("http-80"), extra)
}

/// Brings up `script` with IPv6, starts vipmux on `config` (frontends as `frontends`), runs
/// `scenario` and panics with the vipmux log when it fails; everything is torn down either way.
fn run6(
    name: &str,
    (script, args): (&str, &[&str]),
    config: impl FnOnce(&Topology) -> ConfigBuilder,
    frontends: Frontends,
    scenario: impl FnOnce(&Topology, &Appliance) -> Result<(), String>,
) {
    if skip_unless_root(name) {
        return;
    }
    let topo = up6(script, args);
    let text = build6(&config(&topo), &topo, frontends);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    check(&app, scenario(&topo, &app));
}

/// The HTTP URL of the IPv6 VIP.
fn vip6_url(topo: &Topology) -> String {
    url6(topo.get("VIP6"), topo.get("HTTP_PORT"))
}

/// 60 requests to the IPv6 VIP reach all three backends, which see the client's IPv6 address.
fn http_spread(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    let seen = requests_from(&topo.ns("client"), &vip6_url(topo), 60)?;
    spread_from(&seen, &ALL, topo.get("CLIENT_IP6"))?;
    let counts: Vec<(String, usize)> = seen.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    eprintln!("IPv6 spread over backends: {counts:?}");
    Ok(())
}

#[test]
fn one_arm_http_over_ipv6_ping6_and_probe_failover() {
    run6(
        "one_arm_http_over_ipv6_ping6_and_probe_failover",
        ("one-arm", &["--return", "gateway"]),
        |_| web6(ConfigBuilder::one_arm(), ""),
        Frontends::Ipv6,
        |topo, app| {
            http_spread(topo, app)?;
            let (client, vip6) = (topo.ns("client"), topo.get("VIP6"));
            let out = ns_exec(
                &client,
                &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", vip6],
            );
            if !out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                return Err(format!("ping6 {vip6} got no answer:\n{text}"));
            }
            // b2's HTTP servers stop: its IPv6 probe fails and it takes no new flows.
            topo.backend("stop", "b2", &["http"])?;
            let bound = Duration::from_secs(u64::from(PROBE_INTERVAL_SECS * PROBE_THRESHOLD) + 6);
            let reason = app.wait_member("b2", false, bound)?;
            eprintln!("b2: {reason}");
            let after = requests_from(&client, &vip6_url(topo), 30)?;
            if after.contains_key("b2") {
                return Err(format!("b2 still got new flows: {:?}", after.keys()));
            }
            Ok(())
        },
    );
}

#[test]
fn two_arm_http_over_ipv6() {
    run6(
        "two_arm_http_over_ipv6",
        ("two-arm", &[]),
        |_| web6(ConfigBuilder::two_arm(), ""),
        Frontends::Ipv6,
        http_spread,
    );
}

#[test]
fn floating_ip_over_ipv6_keeps_the_vip_as_destination() {
    run6(
        "floating_ip_over_ipv6_keeps_the_vip_as_destination",
        ("one-arm", &["--return", "dsr"]),
        |topo| {
            for r in ALL {
                topo.backend("vip-add", r, &[topo.get("VIP6")])
                    .expect("VIP6 on a backend's lo");
            }
            pool6(
                ConfigBuilder::one_arm(),
                "web6",
                &ALL,
                "dsr_encapsulation = \"none\"",
            )
            .probe_http("http-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
            .lb_rule(
                "web",
                "tcp",
                80,
                80,
                "web6",
                Some("http-80"),
                "enable_floating_ip = true",
            )
        },
        Frontends::Ipv6,
        |topo, app| {
            http_spread(topo, app)?;
            let seen = requests_from(&topo.ns("client"), &vip6_url(topo), 10)?;
            match seen.values().flatten().find(|r| r.dst != topo.get("VIP6")) {
                Some(r) => Err(format!("a backend saw {} instead of the VIP: {r:?}", r.dst)),
                None => Ok(()),
            }
        },
    );
}

/// Floating IP over IPv6 through `pool_extra`'s tunnel to backends running `decap.py <args>`:
/// requests spread over more than one backend, each seeing the VIP and the client, each
/// answering backend's TUN device received the requests, no receiver rejected a packet.
fn tunnelled6(test: &str, pool_extra: &'static str, args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run6(
        test,
        ("one-arm", &["--return", "dsr"]),
        |topo| {
            for r in ALL {
                topo.backend("vip-add", r, &[topo.get("VIP6")])
                    .expect("VIP6 on a backend's lo");
            }
            pool6(ConfigBuilder::one_arm(), "tun6", &ALL, pool_extra)
                .probe_http("http-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
                .lb_rule(
                    "web",
                    "tcp",
                    80,
                    80,
                    "tun6",
                    Some("http-80"),
                    "enable_floating_ip = true",
                )
        },
        Frontends::Ipv6,
        |topo, app| {
            let mut rx = Receivers::start(topo, &ALL, &args)?;
            app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
            let seen = requests_from(&topo.ns("client"), &vip6_url(topo), 30)
                .map_err(|e| format!("{e}\nreceivers:\n{}", rx.logs()))?;
            if seen.len() < 2 {
                return Err(format!("30 requests all went to {:?}", seen.keys()));
            }
            let roles: Vec<&str> = seen.keys().map(String::as_str).collect();
            spread_from(&seen, &roles, topo.get("CLIENT_IP6"))?;
            if let Some(r) = seen.values().flatten().find(|r| r.dst != topo.get("VIP6")) {
                return Err(format!("a backend saw {} instead of the VIP: {r:?}", r.dst));
            }
            for role in &roles {
                let n = tun_rx_packets(topo, role)?;
                if n < 3 {
                    return Err(format!("{role} answered but its TUN received {n} packets"));
                }
            }
            eprintln!("receivers: {}", rx.stop()?);
            Ok(())
        },
    );
}

#[test]
fn floating_ip_in_ipv6_in_ipv6_to_decapsulating_backends() {
    tunnelled6(
        "floating_ip_in_ipv6_in_ipv6_to_decapsulating_backends",
        "dsr_encapsulation = \"ipip\"",
        &["ipip", "--ipv6"],
    );
}

#[test]
fn floating_ip_in_gue_over_ipv6_to_decapsulating_backends() {
    tunnelled6(
        "floating_ip_in_gue_over_ipv6_to_decapsulating_backends",
        "dsr_encapsulation = \"gue\"\ngue_port = 6081",
        &["gue", "--port", "6081", "--ipv6"],
    );
}

#[test]
fn inbound_nat_over_ipv6_reaches_one_member() {
    run6(
        "inbound_nat_over_ipv6_reaches_one_member",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            pool6(ConfigBuilder::one_arm(), "web6", &ALL, "")
                .nat_rule_member("b2-http", "tcp", 8080, "web6", "b2", 80)
        },
        Frontends::Ipv6,
        |topo, _app| {
            let url = url6(topo.get("VIP6"), "8080");
            let client = topo.ns("client");
            let first = wait_for(Duration::from_secs(10), || curl_from(&client, &url).ok())
                .ok_or("no answer through the inbound NAT rule")?;
            let seen = requests_from(&client, &url, 10)?;
            let wrong = seen
                .values()
                .flatten()
                .find(|r| r.backend != "b2" || r.dport != 80 || r.dst != backend_ip6("b2"));
            match wrong {
                Some(r) => Err(format!("inbound NAT to b2:80 answered by {r:?} ({first})")),
                None => Ok(()),
            }
        },
    );
}

#[test]
fn source_ip_affinity_over_ipv6() {
    run6(
        "source_ip_affinity_over_ipv6",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            web6(
                ConfigBuilder::one_arm(),
                "load_distribution = \"source_ip\"",
            )
        },
        Frontends::Ipv6,
        |topo, app| {
            app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
            let client = topo.ns("client");
            let mut used = BTreeSet::new();
            for i in 21..29 {
                let src = format!("2001:db8:9::{i}");
                ns_exec_ok(
                    &client,
                    &[
                        "ip",
                        "-6",
                        "addr",
                        "add",
                        &format!("{src}/64"),
                        "dev",
                        "eth0",
                        "nodad",
                    ],
                )?;
                let mut backends = BTreeSet::new();
                for _ in 0..5 {
                    let body = ns_exec_ok(
                        &client,
                        &[
                            "curl",
                            "-sS",
                            "--fail",
                            "-m",
                            "5",
                            "--interface",
                            &src,
                            &vip6_url(topo),
                        ],
                    )?;
                    let r = BackendReply::parse(&body).ok_or(format!("answer {body:?}"))?;
                    if r.client_ip != src {
                        return Err(format!("backend saw {} instead of {src}", r.client_ip));
                    }
                    backends.insert(r.backend);
                }
                if backends.len() != 1 {
                    return Err(format!(
                        "source {src} reached {backends:?}, not one backend"
                    ));
                }
                used.extend(backends);
            }
            if used.len() < 2 {
                return Err(format!("8 sources all on {used:?}: no spread by source"));
            }
            Ok(())
        },
    );
}

/// The rule's idle timeout in the reset test.
const IDLE_SECS: u64 = 3;

#[test]
fn reset_on_idle_over_ipv6_reaches_both_kernels() {
    let extra = format!("idle_timeout_seconds = {IDLE_SECS}\nenable_tcp_reset = true\n");
    run6(
        "reset_on_idle_over_ipv6_reaches_both_kernels",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            pool6(ConfigBuilder::one_arm(), "echo6", &ALL, "")
                .lb_rule("echo", "tcp", 7000, 7000, "echo6", None, &extra)
        },
        Frontends::Ipv6,
        |topo, _app| {
            let to = format!("{}:7000", topo.get("VIP6"));
            let client = IdleClient::start(&topo.ns("client"), &to, IDLE_SECS + 5, false)?;
            let (port, who) = parse_ready(&client.line(Duration::from_secs(15))?)?;
            let sockets = || {
                let filter = format!("( sport = :7000 and dport = :{port} )");
                let out = ns_exec(
                    &topo.ns(&who.backend),
                    &["ss", "-6tnH", "state", "all", &filter],
                );
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            };
            if !sockets().contains("ESTAB") {
                return Err(format!(
                    "{} shows no connection from port {port}",
                    who.backend
                ));
            }
            let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
            eprintln!("client read ended with {word} after {secs:.3} s");
            let (lo, hi) = reset_window(IDLE_SECS);
            if word != "RESET" || secs < lo || secs > hi {
                return Err(format!("client read ended with {word} after {secs} s"));
            }
            if !wait_until(Duration::from_secs(5), || sockets().is_empty()) {
                return Err(format!("the backend kept its socket: {}", sockets()));
            }
            Ok(())
        },
    );
}

/// Sends one UDP datagram of `size` bytes from the client to `[ip]:port` and waits 2 s for an
/// answer: "REPLY <n>" or "NOREPLY".
fn udp6(topo: &Topology, ip: &str, port: u16, size: usize) -> Result<String, String> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ns.settimeout(2)\n\
         s.sendto(b'y' * {size}, ('{ip}', {port}))\ntry:\n    d = s.recv(65536)\n    print('REPLY', len(d))\n\
         except socket.timeout:\n    print('NOREPLY')\n"
    );
    ns_exec_ok(&topo.ns("client"), &["python3", "-c", &script]).map(|s| s.trim().to_string())
}

#[test]
fn fragmented_udp_over_ipv6_is_dropped_and_counted() {
    run6(
        "fragmented_udp_over_ipv6_is_dropped_and_counted",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            pool6(ConfigBuilder::one_arm(), "web6", &ALL, "")
                .lb_rule("udp", "udp", 7000, 7000, "web6", None, "")
        },
        Frontends::Ipv6,
        |topo, app| {
            let before = app.counter("/drops/fragment")?;
            let res = udp6(topo, topo.get("VIP6"), 7000, 3000)?;
            if res != "NOREPLY" {
                return Err(format!("a fragmented datagram was answered: {res}"));
            }
            // The 3 fragments.
            app.wait_counter("/drops/fragment", Duration::from_secs(5), before + 3)
                .map(|_| ())
        },
    );
}

#[test]
fn packet_too_big_after_ipv6_encapsulation_reaches_the_sender() {
    run6(
        "packet_too_big_after_ipv6_encapsulation_reaches_the_sender",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            pool6(
                ConfigBuilder::one_arm(),
                "tun6",
                &ALL,
                "dsr_encapsulation = \"ipip\"",
            )
            .lb_rule(
                "udp-tun",
                "udp",
                7001,
                7001,
                "tun6",
                None,
                "enable_floating_ip = true",
            )
        },
        Frontends::Ipv6,
        |topo, app| {
            let vip6 = topo.get("VIP6");
            let client = topo.ns("client");
            let before = app.counter("/drops/too_big")?;
            // 1452 bytes of payload: a 1500-byte IPv6 packet, 40 bytes too long once encapsulated.
            let learned = wait_for(Duration::from_secs(10), || {
                udp6(topo, vip6, 7001, 1452).ok()?;
                let route = ns_exec_ok(&client, &["ip", "-6", "route", "get", vip6]).ok()?;
                route.contains("mtu 1460").then_some(route)
            })
            .ok_or_else(|| {
                let route = ns_exec_ok(&client, &["ip", "-6", "route", "get", vip6]);
                format!("the client did not learn the path MTU 1460: {route:?}")
            })?;
            eprintln!("client route after Packet Too Big: {}", learned.trim());
            // The client may learn the path MTU before the worker publishes the drop.
            app.wait_counter("/drops/too_big", Duration::from_secs(5), before + 1)
                .map(|_| ())
        },
    );
}

#[test]
fn dual_stack_frontends_serve_ipv4_and_ipv6_clients_from_the_same_backends() {
    run6(
        "dual_stack_frontends_serve_ipv4_and_ipv6_clients_from_the_same_backends",
        ("one-arm", &["--return", "gateway"]),
        |_| {
            let c = ConfigBuilder::one_arm()
                .pool("web", &ALL, "")
                .probe_http("http-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
                .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "");
            rule_on(
                pool6(c, "web6", &ALL, ""),
                "fe6",
                "web6",
                ("tcp", 80),
                "web6",
                Some("http-80"),
                "",
            )
        },
        Frontends::DualStack,
        |topo, app| {
            app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
            let client = topo.ns("client");
            let url4 = format!("http://{}:{}/", topo.get("VIP"), topo.get("HTTP_PORT"));
            // Both families at once: two request loops side by side.
            let (v4, v6) = std::thread::scope(|s| {
                let h4 = s.spawn(|| requests_from(&client, &url4, 40));
                let h6 = s.spawn(|| requests_from(&client, &vip6_url(topo), 40));
                (h4.join(), h6.join())
            });
            let v4 = v4.map_err(|_| "IPv4 loop panicked")??;
            let v6 = v6.map_err(|_| "IPv6 loop panicked")??;
            spread_from(&v4, &ALL, topo.get("CLIENT_IP"))?;
            spread_from(&v6, &ALL, topo.get("CLIENT_IP6"))?;
            Ok(())
        },
    );
}
