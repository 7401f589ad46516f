//! Tests of [`super`] on golden frames (made by a real stack's packet library, `wire::golden6`).

use super::*;
use crate::wire::golden6::{self, bytes, CLIENT, SERVER};

const SERVER_MAC: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

#[test]
fn solicitation_for_our_address_gets_the_golden_advert() {
    let ns = bytes(golden6::NS);
    let mut out = [0u8; ND_FRAME_LEN];
    let n = answer_solicitation(&ns, &[CLIENT, SERVER], SERVER_MAC, &mut out).unwrap();
    assert_eq!(&out[..n], &bytes(golden6::NA)[..]);
    // The advertisement: solicited + override, target link-layer address option, hop limit 255.
    let ip = Ipv6Packet::new_checked(&out[14..n]).unwrap();
    assert_eq!(ip.hop_limit(), 255);
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(m.verify_checksum(SERVER, CLIENT));
    assert_eq!(m.nd_flags(), 0x60);
    assert_eq!(m.nd_ll_addr(2).unwrap(), Some(SERVER_MAC));
}

#[test]
fn invalid_or_foreign_solicitations_are_not_answered() {
    let ns = bytes(golden6::NS);
    let mut out = [0u8; ND_FRAME_LEN];
    let answer = |f: &[u8], out: &mut [u8]| answer_solicitation(f, &[SERVER], SERVER_MAC, out);
    assert_eq!(
        answer_solicitation(&ns, &[CLIENT], SERVER_MAC, &mut out),
        Err(SlowPathDrop::NotForUs)
    );
    // Hop limit below 255: it crossed a router.
    let mut routed = ns.clone();
    routed[14 + 7] = 254;
    assert_eq!(answer(&routed, &mut out), Err(SlowPathDrop::Malformed));
    // A flipped bit: bad checksum.
    let mut bad = ns.clone();
    bad[ns.len() - 1] ^= 1;
    assert_eq!(answer(&bad, &mut out), Err(SlowPathDrop::BadChecksum));
    // An advertisement is no solicitation.
    assert_eq!(
        answer(&bytes(golden6::NA), &mut out),
        Err(SlowPathDrop::Unsupported)
    );
    // Not ICMPv6, not IPv6, short.
    assert_eq!(
        answer(&bytes(golden6::PTB)[..20], &mut out),
        Err(SlowPathDrop::Malformed)
    );
    for n in 0..ns.len() {
        assert!(answer(&ns[..n], &mut out).is_err(), "cut at {n}");
    }
    // No room for the answer.
    assert!(answer(&ns, &mut out[..60]).is_err());
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let mut ns = bytes(golden6::NS);
    ns.truncate(ns.len() - 8); // DAD carries no source link-layer option
    let mut ip = Ipv6Packet::new_unchecked(&mut ns[14..]);
    ip.set_payload_len(24);
    ip.set_src_addr(Ipv6Addr::UNSPECIFIED);
    let dst = ip.dst_addr();
    let mut m = Icmpv6Packet::new_unchecked(&mut ns[54..]);
    m.fill_checksum(Ipv6Addr::UNSPECIFIED, dst);
    let mut out = [0u8; ND_FRAME_LEN];
    let n = answer_solicitation(&ns, &[SERVER], SERVER_MAC, &mut out).unwrap();
    assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let ip = Ipv6Packet::new_checked(&out[14..n]).unwrap();
    assert_eq!(ip.dst_addr(), crate::wire::builder::ALL_NODES);
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(m.nd_flags(), 0x20, "override only, not solicited");
    // A DAD probe teaches nothing.
    assert_eq!(learn(&ns), None);
}

#[test]
fn unsolicited_adverts_and_solicitations() {
    let v = unsolicited_adverts(SERVER_MAC, Some(9), &[SERVER, CLIENT]);
    assert_eq!(v.len(), 2);
    for (f, a) in v.iter().zip([SERVER, CLIENT]) {
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            learn(f),
            Some(NdLearned {
                addr: a,
                mac: SERVER_MAC
            })
        );
        let l3 = EthernetFrame::new_checked(&f[..]).unwrap().l3().unwrap();
        assert_eq!(l3.vlan_id(), Some(9));
        let ip = Ipv6Packet::new_checked(&f[l3.offset..]).unwrap();
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((m.msg_type(), m.nd_flags()), (136, 0x20));
    }
    // Our solicitation for the server is the golden one, to the solicited-node group's MAC.
    let ns = solicit(CLIENT_MAC, None, CLIENT, SERVER);
    assert_eq!(&ns[..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
    assert_eq!(&ns[14..], &bytes(golden6::NS)[14..]);
    assert_eq!(
        learn(&ns),
        Some(NdLearned {
            addr: CLIENT,
            mac: CLIENT_MAC
        })
    );
    // The golden advertisement teaches the server's MAC.
    assert_eq!(
        learn(&bytes(golden6::NA)),
        Some(NdLearned {
            addr: SERVER,
            mac: SERVER_MAC
        })
    );
    let mut bad = bytes(golden6::NA);
    bad[60] ^= 1;
    assert_eq!(learn(&bad), None);
}
