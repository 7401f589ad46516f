//! Fragments, oversize packets and ICMP end to end: vipmux in the one-arm topology
//! with a NAT UDP rule (VIP:7000 → the backends' UDP echo on 7000) and a floating-IP UDP rule
//! delivered by IPv4-in-IPv4 (VIP:7001, pool with `dsr_encapsulation = "ipip"`).
//!
//! - A ping from the client to the VIP is answered by the MUX.
//! - A 3000-byte UDP datagram from the client to VIP:7000 leaves the client's kernel as fragments:
//!   they are dropped and counted, and no echo comes back (nothing reached a backend), while a
//!   small datagram on the same rule is echoed. On `net_af_packet` the kernel reassembles
//!   fragments for the PMD's packet socket (PACKET_FANOUT with the DEFRAG flag), so the drop is
//!   counted `bad_header` or `too_big` there rather than `fragment`; the golden-packet tests
//!   cover the `fragment` classification itself.
//! - A 1500-byte UDP datagram with DF to VIP:7001 does not fit the 1500-byte MTU once the
//!   20-byte IPIP header is added: it is dropped (`too_big`) and the client receives ICMP
//!   "fragmentation needed" carrying MTU 1480, quoting its datagram (captured with scapy in the
//!   client namespace, `scripts/netns/crafted.py too-big`).
//!
//! Needs root and Debian's python3-scapy (`/usr/bin/python3`); skipped without root.

mod common;

use std::time::Duration;

use common::appliance::{check, start_or_panic};
use common::{
    ns_exec, ns_exec_ok, scripts_dir, skip_unless_root, udp_from, wait_for, Appliance,
    ConfigBuilder, Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// How long a counter may take to follow its event (the workers publish theirs every 100 ms).
const BOUND: Duration = Duration::from_secs(5);

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .pool("tun", &ALL, "dsr_encapsulation = \"ipip\"")
        .lb_rule("udp-nat", "udp", 7000, 7000, "web", None, "")
        .lb_rule(
            "udp-ipip",
            "udp",
            7001,
            7001,
            "tun",
            None,
            "enable_floating_ip = true",
        )
}

/// Sends one UDP datagram of `size` bytes from the client and waits 2 s for any answer; returns
/// "REPLY <n>" or "NOREPLY".
fn big_udp(topo: &Topology, to_port: u16, size: usize) -> Result<String, String> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(2)\n\
         s.sendto(b'y' * {size}, ('{}', {to_port}))\ntry:\n    d = s.recv(65536)\n    print('REPLY', len(d))\n\
         except socket.timeout:\n    print('NOREPLY')\n",
        topo.get("VIP")
    );
    ns_exec_ok(&topo.ns("client"), &["python3", "-c", &script]).map(|s| s.trim().to_string())
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let vip = topo.get("VIP");
    let client = topo.ns("client");

    // Ping: answered by the MUX (members without a probe count as up).
    let out = ns_exec(&client, &["ping", "-c", "3", "-i", "0.2", "-W", "2", vip]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("ping {vip} got no answer:\n{text}"));
    }
    eprintln!("{}", text.lines().rev().nth(1).unwrap_or(""));
    app.wait_counter("/slow_path/echo_replies", BOUND, 1)?;

    // A small datagram on the NAT rule is echoed (the first may wait for neighbour resolution).
    let who = wait_for(Duration::from_secs(10), || {
        udp_from(&client, &format!("{vip}:7000"), "whoami").ok()
    })
    .ok_or("no UDP echo through VIP:7000")?;
    eprintln!("small UDP: {who}");

    // 3000 bytes: the client's kernel fragments. DPDK's af_packet PMD joins a PACKET_FANOUT
    // group with the DEFRAG flag, so the MUX namespace's kernel reassembles the fragments before
    // vipmux sees them: the data path receives one 3028-byte datagram cut to the ring's frame
    // size (counted `bad_header`: total length beyond the frame), or, when the whole datagram
    // fits a ring frame, one datagram above the MTU (`too_big`). On a NIC it sees the fragments
    // (`fragment`). Either way nothing may reach a backend and the drop must be counted.
    let reasons = ["/drops/fragment", "/drops/bad_header", "/drops/too_big"];
    let sum = |app: &Appliance| -> Result<u64, String> {
        reasons
            .iter()
            .map(|r| app.counter(r))
            .sum::<Result<u64, String>>()
    };
    let before = sum(app)?;
    let res = big_udp(topo, 7000, 3000)?;
    if res != "NOREPLY" {
        return Err(format!(
            "a fragmented datagram crossed the MUX and was echoed: {res}"
        ));
    }
    wait_for(Duration::from_secs(5), || {
        sum(app).ok().filter(|v| *v > before)
    })
    .ok_or_else(|| {
        format!(
            "the fragmented datagram was not counted as a drop: {}",
            app.counters_json()
                .map(|c| c.to_string())
                .unwrap_or_default()
        )
    })?;
    let c = app.counters_json()?;
    eprintln!(
        "fragmented 3000-byte datagram: no reply; drops fragment={} bad_header={} too_big={}",
        c["drops"]["fragment"], c["drops"]["bad_header"], c["drops"]["too_big"]
    );
    // The rule still works for datagrams that fit.
    udp_from(&client, &format!("{vip}:7000"), "whoami")
        .map_err(|e| format!("UDP echo after the fragments: {e}"))?;

    // 1500 bytes with DF on the IPIP rule: too big after encapsulation → ICMP frag needed.
    let too_big_before = app.counter("/drops/too_big")?;
    let crafted = scripts_dir().join("crafted.py");
    let out = ns_exec(
        &client,
        &[
            "/usr/bin/python3",
            &crafted.to_string_lossy(),
            "too-big",
            "--vip",
            vip,
            "--port",
            "7001",
            "--size",
            "1500",
        ],
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("DF 1500-byte datagram to the IPIP rule: {line}");
    if !out.status.success() {
        return Err(format!(
            "no ICMP fragmentation-needed came back: {line} {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for want in [
        "type=3",
        "code=4",
        "mtu=1480",
        &format!("inner_dst={vip}"),
        "inner_dport=7001",
    ] {
        if !line.split_whitespace().any(|w| w == want) {
            return Err(format!("ICMP answer lacks {want}: {line}"));
        }
    }
    app.wait_counter("/drops/too_big", BOUND, too_big_before + 1)?;
    app.wait_counter("/slow_path/frag_needed_sent", BOUND, 1)?;
    Ok(())
}

#[test]
fn fragments_dropped_df_too_big_answered_ping_answered() {
    if skip_unless_root("fragments_dropped_df_too_big_answered_ping_answered") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario(&topo, &app));
}
