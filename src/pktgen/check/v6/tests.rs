//! The IPv6 checker on hand-built frames: what vipmux's NAT66, MAC rewrite and IPv6-in-IPv6 make
//! of the generator's frames passes, and every deliberately wrong rewrite is a mismatch of its
//! kind.

use super::*;
use crate::pktgen::check::test_support::{self as support, CONFIG6, GEN_MAC};
use crate::pktgen::flows::{client6_of, Family};
use crate::pktgen::frames::{buffer_len, FrameKind};
use crate::pktgen::frames6::{L3_OFFSET6, L4_OFFSET6};
use crate::wire::builder::{
    neighbor_solicit, prepend_ip6ip6, rewrite_endpoint_v6, EncapSpecV6, Endpoint,
};
use crate::wire::{PacketBuf, VecBuf};

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A checker of the flows to `rule` that knows its own IPv6 address.
fn checker6(rule: &str) -> Checker {
    support::checker(CONFIG6, Family::V6, rule).with_own_ip6(addr("2001:db8:1::fe"))
}

/// The frame the generator sends for `flow`.
fn sent6(c: &Checker, flow: u32) -> Vec<u8> {
    support::sent(c, flow, FrameKind::Data, buffer_len(100))
}

/// What vipmux does in NAT66: destination to member:port, hop limit less one, next-hop MAC.
fn nat66(frame: &mut [u8], member: Ipv6Addr, port: u16) {
    rewrite_endpoint_v6(&mut frame[L3_OFFSET6..], Endpoint::Dst, member, Some(port)).unwrap();
    frame[L3_OFFSET6 + 7] -= 1;
    frame[..6].copy_from_slice(&neighbour_mac6(member).0);
}

/// The frame the generator sends for `flow` as NAT66 to `member:port` makes it.
fn natted6(c: &Checker, flow: u32, member: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut f = sent6(c, flow);
    nat66(&mut f, member, port);
    f
}

#[test]
fn nat66_rewrite_passes_and_wrong_rewrites_are_classified() {
    use MismatchKind::*;
    let mut c = checker6("web6");
    let (vm1, vm2) = (addr("2001:db8:1::11"), addr("2001:db8:1::12"));
    let mut ok = natted6(&c, 0, vm1, 8080);
    assert!(matches!(c.handle(&mut ok, true), Outcome::Ok(Some(_))));
    let mut again = natted6(&c, 0, vm1, 8080);
    assert!(matches!(c.handle(&mut again, true), Outcome::Ok(Some(_))));

    let mut cases: Vec<(MismatchKind, Vec<u8>)> = Vec::new();
    cases.push((Moved, natted6(&c, 0, vm2, 8080)));
    let not_member = natted6(&c, 1, addr("2001:db8:1::13"), 8080);
    cases.push((WrongDst, not_member));
    cases.push((WrongDst, natted6(&c, 1, vm1, 80)));
    cases.push((WrongDst, sent6(&c, 2))); // not rewritten at all
    let mut mac = natted6(&c, 3, vm1, 8080);
    mac[..6].copy_from_slice(&neighbour_mac6(vm2).0);
    cases.push((WrongMac, mac));
    let mut hop = natted6(&c, 4, vm1, 8080);
    hop[L3_OFFSET6 + 7] += 1; // hop limit not decremented
    cases.push((WrongHopLimit, hop));
    let mut l4 = natted6(&c, 5, vm1, 8080);
    l4[L4_OFFSET6 + 20] ^= 0x55; // payload changed without fixing the checksum
    cases.push((BadL4Checksum, l4));
    let mut src = natted6(&c, 6, vm1, 8080);
    rewrite_endpoint_v6(
        &mut src[L3_OFFSET6..],
        Endpoint::Src,
        addr("2001:db8:1::2"),
        None,
    )
    .unwrap();
    cases.push((WrongSrc, src));
    let mut short = sent6(&c, 7);
    short.truncate(L4_OFFSET6 + 10);
    cases.push((Malformed, short));
    support::assert_mismatches(&mut c, cases);
    for k in [
        Moved,
        WrongMac,
        WrongHopLimit,
        BadL4Checksum,
        WrongSrc,
        Malformed,
    ] {
        assert_eq!(c.mismatches.get(k), 1, "{k:?}");
    }
    assert_eq!(c.mismatches.get(WrongDst), 3);
    assert_eq!(c.ok, 2);
}

/// `f` in IPv6-in-IPv6 to `member`, as vipmux would encapsulate it.
fn encap66(f: &[u8], member: Ipv6Addr) -> Vec<u8> {
    let mut b = VecBuf::with_room(64, &f[L3_OFFSET6..], 0);
    let spec = EncapSpecV6 {
        outer_src: addr("2001:db8:1::2"),
        outer_dst: member,
        hop_limit: 64,
    };
    prepend_ip6ip6(&mut b, &spec, 7).unwrap();
    let mut out = f[..L3_OFFSET6].to_vec();
    out[..6].copy_from_slice(&neighbour_mac6(member).0);
    out.extend_from_slice(b.data());
    out
}

#[test]
fn floating_ip_by_mac_rewrite_is_checked_and_encapsulation_is_not_expected() {
    use MismatchKind::*;
    let mut c = checker6("dsr6");
    let d1 = addr("2001:db8:1::21");
    let mac_rewrite = |f: &mut Vec<u8>, to: Ipv6Addr| {
        f[L3_OFFSET6 + 7] -= 1;
        f[..6].copy_from_slice(&neighbour_mac6(to).0);
    };
    let mut ok = sent6(&c, 0);
    mac_rewrite(&mut ok, d1);
    assert!(matches!(c.handle(&mut ok, true), Outcome::Ok(Some(_))));
    let mut other = sent6(&c, 1);
    mac_rewrite(&mut other, addr("2001:db8:1::11")); // a member of another rule
    assert_eq!(c.handle(&mut other, true), Outcome::Mismatch(WrongMac));
    let mut hop = sent6(&c, 2);
    hop[..6].copy_from_slice(&neighbour_mac6(d1).0);
    assert_eq!(c.handle(&mut hop, true), Outcome::Mismatch(WrongHopLimit));
    let mut tunnelled = encap66(&sent6(&c, 3), d1);
    assert_eq!(
        c.handle(&mut tunnelled, true),
        Outcome::Mismatch(WrongEncap)
    );
    let mut nat = checker6("web6");
    let mut tunnelled = encap66(&sent6(&nat, 0), addr("2001:db8:1::11"));
    assert_eq!(
        nat.handle(&mut tunnelled, true),
        Outcome::Mismatch(WrongEncap)
    );
}

#[test]
fn solicitations_answered_for_neighbours_only_and_the_vip_learned() {
    let mut c = checker6("web6");
    let dut = MacAddr([2, 0, 0, 0, 0, 1]);
    let ns = |target: &str| {
        let mut buf = vec![0u8; 128];
        let n = neighbor_solicit(&mut buf, dut, None, addr("2001:db8:1::2"), addr(target)).unwrap();
        buf.truncate(n);
        buf
    };
    let mut member = ns("2001:db8:1::11");
    let Outcome::ArpReply(n) = c.handle(&mut member, false) else {
        panic!("a member's solicitation is answered");
    };
    let na = Ipv6Packet::new_checked(&member[L3_OFFSET6..n]).unwrap();
    let icmp = Icmpv6Packet::new_checked(na.payload()).unwrap();
    let vm1 = addr("2001:db8:1::11");
    assert!(matches!(
        NdRepr::parse(&icmp),
        Ok(NdRepr::Advert { target, target_ll: Some(mac), .. })
            if target == vm1 && mac == neighbour_mac6(vm1)
    ));
    assert_eq!(&member[6..12], &neighbour_mac6(vm1).0);
    for own in ["2001:db8:1::100", "2001:db8:1::2", "2001:db8:1::fe"] {
        assert_eq!(c.handle(&mut ns(own), false), Outcome::Ignored, "{own}");
    }
    assert_eq!(c.arp_replies, 1);
    // The VIP's advertisement resolves the device's MAC.
    c.resolve = Some((IpAddr::V6(addr("2001:db8:1::100")), None));
    let mut na = vec![0u8; 128];
    let l2 = crate::wire::L2Spec {
        src_mac: dut,
        dst_mac: GEN_MAC,
        vlan: None,
    };
    let n = crate::wire::builder::neighbor_advert(
        &mut na,
        &l2,
        addr("2001:db8:1::100"),
        addr("2001:db8:1::fe"),
        0x60,
        addr("2001:db8:1::100"),
    )
    .unwrap();
    assert_eq!(c.handle(&mut na[..n], false), Outcome::Ignored);
    assert_eq!(
        c.resolve,
        Some((IpAddr::V6(addr("2001:db8:1::100")), Some(dut)))
    );
    assert_eq!(
        client4_of6(client6_of(*c.flows.client(3).ip())),
        Some(*c.flows.client(3).ip())
    );
}

#[test]
fn multicast_other_than_nd_is_ignored() {
    let mut c = checker6("web6");
    // An MLD report: to ff02::16 behind a Hop-by-Hop header, from a link-local address.
    let mut f = sent6(&c, 0);
    let ip = &mut f[L3_OFFSET6..];
    ip[6] = 0; // next header: Hop-by-Hop
    ip[8..24].copy_from_slice(&addr("fe80::1").octets());
    ip[24..40].copy_from_slice(&addr("ff02::16").octets());
    assert_eq!(c.handle(&mut f, true), Outcome::Ignored);
    assert_eq!((c.ignored, c.mismatches.total()), (1, 0));
}
