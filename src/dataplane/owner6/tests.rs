//! Tests of [`super`]: both directions of an IPv6 flow, and the errors about it, have one owner
//! for several worker counts.

use super::*;
use crate::balance::{Health, Snapshot};
use crate::config::Config;
use crate::dataplane::owner::test_rig::{assert_both_directions, frame, owner};
use crate::wire::builder::originate6::{icmpv6_error, Icmpv6ErrorKind};
use crate::wire::builder::L2Spec;
use crate::wire::MacAddr;
use std::net::Ipv6Addr;

const CONFIG: &str = include_str!("../../../tests/fixtures/dual_stack.toml");
const VIP: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x100);
const VM1: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x11);
const OWN: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);

fn snapshot() -> Snapshot {
    let c = Config::from_str(CONFIG, "dual_stack.toml").unwrap_or_else(|e| panic!("{e}"));
    Snapshot::compile(&c, &Health::all_up(&c))
}

/// An ICMPv6 error from `from` about the packet of frame `about`.
fn error_about(about: &[u8], from: Ipv6Addr) -> Vec<u8> {
    let mut e = vec![0u8; 600];
    let l2 = L2Spec {
        src_mac: MacAddr([2; 6]),
        dst_mac: MacAddr([4; 6]),
        vlan: None,
    };
    let kind = Icmpv6ErrorKind::TimeExceeded(0);
    let n = icmpv6_error(&mut e, &l2, from, kind, &about[14..]).unwrap();
    e.truncate(n);
    e
}

#[test]
fn both_directions_of_an_ipv6_flow_and_its_errors_have_one_owner() {
    let snap = snapshot();
    for workers in [1, 2, 3, 4, 8] {
        let reta = Reta::new(workers);
        let mut seen = vec![false; workers];
        for i in 0..64u16 {
            let client = Ipv6Addr::new(0x2001, 0xdb8, 0, i, 0, 0, 0, 1 + i);
            let port = 40000 + i * 7;
            let want = assert_both_directions(&snap, &reta, client, port, (VIP, VM1));
            seen[want] = true;
            // Errors quoting either direction: to the member's side, and from the VIP to the
            // client (a NAT66 reply after reverse translation).
            let natted = frame(client, port, VM1, 8080, false);
            assert_eq!(owner(&error_about(&natted, VM1), &snap, &reta), Some(want));
            let from_vip = frame(VIP, 80, client, port, false);
            let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
            assert_eq!(
                owner(&error_about(&from_vip, router), &snap, &reta),
                Some(want)
            );
        }
        assert!(seen.iter().all(|&s| s), "{workers} workers all own flows");
    }
}

#[test]
fn ipv6_packets_of_no_flow_have_no_owner() {
    let snap = snapshot();
    let reta = Reta::new(4);
    let client = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    // To the appliance, to no frontend, not IPv6, truncated.
    assert_eq!(owner(&frame(client, 1, OWN, 22, false), &snap, &reta), None);
    assert_eq!(owner(&frame(client, 1, VM1, 22, false), &snap, &reta), None);
    let mut f = frame(client, 1, VIP, 80, false);
    f[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(owner(&f, &snap, &reta), None);
    let f = frame(client, 1, VIP, 80, false);
    for n in 0..f.len() - 20 {
        assert_eq!(owner(&f[..n], &snap, &reta), None, "{n} bytes");
    }
}

#[test]
fn the_ipv6_client_hash_is_toeplitz_over_address_and_port() {
    use crate::balance::owner::{client_hash6, toeplitz, RSS_KEY};
    // Microsoft's RSS verification suite, IPv6 with TCP: input = source, destination, source
    // port, destination port.
    let vectors: [(&str, u16, &str, u16, u32); 3] = [
        (
            "3ffe:2501:200:1fff::7",
            2794,
            "3ffe:2501:200:3::1",
            1766,
            0x4020_7d3d,
        ),
        (
            "3ffe:501:8::260:97ff:fe40:efab",
            14230,
            "ff02::1",
            4739,
            0xdde5_1bbf,
        ),
        (
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            44251,
            "fe80::200:f8ff:fe21:67cf",
            38024,
            0x02d1_feef,
        ),
    ];
    for (s, sp, d, dp, want) in vectors {
        let (s, d): (Ipv6Addr, Ipv6Addr) = (s.parse().unwrap(), d.parse().unwrap());
        let mut input = s.octets().to_vec();
        input.extend_from_slice(&d.octets());
        input.extend_from_slice(&sp.to_be_bytes());
        input.extend_from_slice(&dp.to_be_bytes());
        assert_eq!(toeplitz(&RSS_KEY, &input), want);
        let mut one = s.octets().to_vec();
        one.extend_from_slice(&sp.to_be_bytes());
        assert_eq!(client_hash6(u128::from(s), sp), toeplitz(&RSS_KEY, &one));
    }
}

#[test]
fn a_members_snat_connection_and_its_replies_have_one_owner() {
    let text = CONFIG.replacen(
        "frontends = [\"fe4\"]\nbackend_pool = \"web4\"",
        "frontends = [\"fe6\"]\nbackend_pool = \"web6\"",
        1,
    );
    let c = Config::from_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let snap = Snapshot::compile(&c, &Health::all_up(&c));
    for workers in [1, 2, 3, 4, 8] {
        let reta = Reta::new(workers);
        for i in 0..64u16 {
            let remote = Ipv6Addr::new(0x2001, 0xdb8, 9, i, 0, 0, 0, 7);
            let want = reta.owner6(u128::from(remote), 443);
            let out = frame(VM1, 40000 + i, remote, 443, false);
            let reply = frame(remote, 443, VIP, 1024 + i, false);
            assert_eq!(owner(&out, &snap, &reta), Some(want), "{workers} workers");
            assert_eq!(owner(&reply, &snap, &reta), Some(want), "{workers} workers");
        }
    }
}
