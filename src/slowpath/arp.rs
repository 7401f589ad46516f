//! ARP on the slow path: answer requests for frontends, pass ARP for the appliance's own address
//! (and replies, and gratuitous ARPs) to the kernel, learn neighbours, build gratuitous ARPs.
//!
//! Decisions for a frame received on an interface:
//!
//! | frame | action |
//! | --- | --- |
//! | not Ethernet/IPv4 ARP, or short | drop `Malformed` / `Unsupported` |
//! | sender MAC is the port's own | drop `OwnFrame` (looped back) |
//! | sender MAC multicast or zero | drop `Malformed` |
//! | sender IP is one of our addresses, from another MAC | drop `AddressConflict` (logged) |
//! | request for a frontend answered on this interface | reply in place with the port's MAC |
//! | request for the interface's own address | to the kernel (its stack answers) |
//! | gratuitous request (sender IP = target IP) | to the kernel (it updates its cache) |
//! | other request | drop `NotForUs` |
//! | reply | to the kernel (its stack learns too) |
//!
//! Every ARP whose sender address is on-link of the interface teaches the neighbour table: it
//! updates known entries, and creates a passive entry when the ARP is addressed to us (request
//! for one of our addresses, or a reply) or is gratuitous. ARP probes (sender 0.0.0.0) teach
//! nothing; a probe for a frontend is answered, which defends the address (RFC 5227).

use super::neighbours::{Learned, NeighbourTable};
use super::ratelimit::Nanos;
use super::{Action, Frontends, IfIndex, SlowPathDrop, SlowPathFrontend, SlowPathInterface};
use crate::wire::{arp as warp, builder, ethernet, ArpPacket, ArpRepr, EthernetFrame, MacAddr};
use std::net::IpAddr;

/// What [`handle_arp`] needs to know about the ingress interface.
#[derive(Debug, Clone, Copy)]
pub struct ArpCtx<'a> {
    /// Ingress interface index.
    pub iface: IfIndex,
    /// Ingress interface.
    pub info: &'a SlowPathInterface,
    /// All frontends (only those answered on `iface` are answered).
    pub frontends: &'a Frontends,
}

/// Result of [`handle_arp`]: the frame's fate and whether a neighbour was learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpOutcome {
    /// What to do with the frame.
    pub action: Action,
    /// True when the neighbour table recorded a new or changed MAC.
    pub learned: bool,
}

impl ArpOutcome {
    fn drop(r: SlowPathDrop) -> Self {
        ArpOutcome {
            action: Action::Drop(r),
            learned: false,
        }
    }
}

/// Handles an ARP frame received on `ctx.iface` (see the module table). Rewrites `frame` in
/// place only when the action is [`Action::ReplyInPlace`].
pub fn handle_arp(
    frame: &mut [u8],
    ctx: &ArpCtx<'_>,
    neighbours: &mut NeighbourTable,
    now: Nanos,
) -> ArpOutcome {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        return ArpOutcome::drop(SlowPathDrop::Malformed);
    };
    let Ok(l3) = eth.l3() else {
        return ArpOutcome::drop(SlowPathDrop::Malformed);
    };
    if l3.ethertype != ethernet::ethertype::ARP {
        return ArpOutcome::drop(SlowPathDrop::Malformed);
    }
    let Ok(pkt) = ArpPacket::new_checked(&frame[l3.offset..]) else {
        return ArpOutcome::drop(SlowPathDrop::Malformed);
    };
    let Ok(req) = ArpRepr::parse(&pkt) else {
        return ArpOutcome::drop(SlowPathDrop::Unsupported);
    };
    let info = ctx.info;
    if req.sender_hw_addr == info.mac {
        return ArpOutcome::drop(SlowPathDrop::OwnFrame);
    }
    if req.sender_hw_addr.is_multicast() || req.sender_hw_addr == MacAddr::ZERO {
        return ArpOutcome::drop(SlowPathDrop::Malformed);
    }
    let is_ours = |ip| ip == info.addr || ctx.frontends.get(ip).is_some();
    if is_ours(req.sender_ip) {
        return ArpOutcome::drop(SlowPathDrop::AddressConflict);
    }
    let gratuitous = req.sender_ip == req.target_ip;
    let our_frontend = ctx
        .frontends
        .get(req.target_ip)
        .filter(|f| f.iface == Some(ctx.iface))
        .is_some();
    let for_us = our_frontend || req.target_ip == info.addr;
    let action = match req.operation {
        warp::OP_REQUEST if our_frontend => match builder::arp_reply_in_place(frame, info.mac) {
            Ok(len) => Action::ReplyInPlace {
                iface: ctx.iface,
                len,
            },
            Err(_) => Action::Drop(SlowPathDrop::Malformed),
        },
        warp::OP_REQUEST if for_us || gratuitous => Action::ToKernel { iface: ctx.iface },
        warp::OP_REQUEST => Action::Drop(SlowPathDrop::NotForUs),
        warp::OP_REPLY => Action::ToKernel { iface: ctx.iface },
        _ => return ArpOutcome::drop(SlowPathDrop::Unsupported),
    };
    let learned = !req.sender_ip.is_unspecified()
        && matches!(
            neighbours.learn(
                ctx.iface,
                req.sender_ip,
                req.sender_hw_addr,
                now,
                for_us || gratuitous || req.operation == warp::OP_REPLY,
            ),
            Learned::New | Learned::Changed
        );
    ArpOutcome { action, learned }
}

/// Gratuitous ARP requests (sender IP = target IP = the frontend, from the port's MAC, to
/// broadcast) for the IPv4 `frontends` on the interface `info`.
pub fn gratuitous_arps(info: &SlowPathInterface, frontends: &[SlowPathFrontend]) -> Vec<Vec<u8>> {
    frontends
        .iter()
        .filter_map(|f| {
            let IpAddr::V4(addr) = f.addr else {
                return None;
            };
            let mut v = vec![0u8; ethernet::TAGGED_HEADER_LEN + ethernet::MIN_FRAME_LEN];
            let n = builder::arp_request(&mut v, info.mac, info.vlan, addr, addr).ok()?;
            v.truncate(n);
            Some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::neighbours::NeighbourTimers;
    use super::*;
    use std::net::Ipv4Addr;

    const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
    const OWN: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 50);

    fn setup() -> (SlowPathInterface, Frontends, NeighbourTable) {
        let i = SlowPathInterface::new("dc", OUR_MAC, OWN, 24, None);
        let f = Frontends::new([SlowPathFrontend {
            addr: VIP.into(),
            iface: Some(0),
            any_member_up: true,
        }]);
        let n = NeighbourTable::new(vec![i.clone()], NeighbourTimers::default());
        (i, f, n)
    }

    fn arp(op: u16, sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr, vlan: Option<u16>) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        let n = builder::arp_request(&mut v, sha, vlan, spa, tpa).unwrap();
        v.truncate(n);
        let off = if vlan.is_some() { 18 } else { 14 };
        v[off + 6..off + 8].copy_from_slice(&op.to_be_bytes());
        v
    }

    fn run(frame: &mut [u8], iface: IfIndex) -> (ArpOutcome, NeighbourTable) {
        let (i, f, mut n) = setup();
        let ctx = ArpCtx {
            iface,
            info: &i,
            frontends: &f,
        };
        let out = handle_arp(frame, &ctx, &mut n, 0);
        (out, n)
    }

    #[test]
    fn request_for_vip_is_answered_with_our_mac() {
        for vlan in [None, Some(7)] {
            let mut f = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, VIP, vlan);
            let (out, n) = run(&mut f, 0);
            let len = match out.action {
                Action::ReplyInPlace { iface: 0, len } => len,
                other => panic!("{other:?}"),
            };
            assert!(out.learned);
            assert_eq!(n.get(CLIENT).unwrap().mac, Some(CLIENT_MAC));
            let f = &f[..len];
            let (eth, rest) = etherparse::Ethernet2Header::from_slice(f).unwrap();
            assert_eq!(eth.destination, CLIENT_MAC.0);
            assert_eq!(eth.source, OUR_MAC.0);
            let arp = match vlan {
                None => {
                    assert_eq!(eth.ether_type, etherparse::EtherType::ARP);
                    rest
                }
                Some(tci) => {
                    let (tag, rest) = etherparse::SingleVlanHeader::from_slice(rest).unwrap();
                    assert_eq!(tag.vlan_id.value(), tci);
                    assert_eq!(tag.ether_type, etherparse::EtherType::ARP);
                    rest
                }
            };
            assert_eq!(&arp[0..8], &[0, 1, 8, 0, 6, 4, 0, 2], "Ethernet/IPv4 reply");
            assert_eq!(&arp[8..14], &OUR_MAC.0);
            assert_eq!(&arp[14..18], &VIP.octets());
            assert_eq!(&arp[18..24], &CLIENT_MAC.0);
            assert_eq!(&arp[24..28], &CLIENT.octets());
        }
    }

    #[test]
    fn request_for_vip_on_another_interface_is_not_answered() {
        let (i, f, _) = setup();
        let mut n = NeighbourTable::new(vec![i.clone(), i.clone()], NeighbourTimers::default());
        let ctx = ArpCtx {
            iface: 1,
            info: &i,
            frontends: &f,
        };
        let mut fr = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, VIP, None);
        let out = handle_arp(&mut fr, &ctx, &mut n, 0);
        assert_eq!(out.action, Action::Drop(SlowPathDrop::NotForUs));
        assert!(
            n.get(CLIENT).is_none(),
            "not addressed to us: no passive entry"
        );
    }

    #[test]
    fn request_for_own_address_goes_to_kernel() {
        let mut f = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, OWN, None);
        let orig = f.clone();
        let (out, n) = run(&mut f, 0);
        assert_eq!(out.action, Action::ToKernel { iface: 0 });
        assert_eq!(f, orig, "unchanged");
        assert!(n.get(CLIENT).is_some());
    }

    #[test]
    fn replies_go_to_kernel_and_teach() {
        let mut f = arp(warp::OP_REPLY, CLIENT_MAC, CLIENT, OWN, None);
        let (out, n) = run(&mut f, 0);
        assert_eq!(out.action, Action::ToKernel { iface: 0 });
        assert!(out.learned);
        assert_eq!(n.snapshot().get(CLIENT), Some((CLIENT_MAC, 0)));
    }

    #[test]
    fn off_link_sender_is_not_learned() {
        let mut f = arp(
            warp::OP_REPLY,
            CLIENT_MAC,
            Ipv4Addr::new(192, 0, 2, 1),
            OWN,
            None,
        );
        let (out, n) = run(&mut f, 0);
        assert_eq!(out.action, Action::ToKernel { iface: 0 });
        assert!(!out.learned);
        assert!(n.is_empty());
    }

    #[test]
    fn other_requests_conflicts_and_loops_are_dropped() {
        let other = Ipv4Addr::new(10, 1, 0, 77);
        let cases = [
            (
                arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, other, None),
                SlowPathDrop::NotForUs,
            ),
            (
                arp(warp::OP_REQUEST, CLIENT_MAC, VIP, VIP, None),
                SlowPathDrop::AddressConflict,
            ),
            (
                arp(warp::OP_REPLY, CLIENT_MAC, OWN, CLIENT, None),
                SlowPathDrop::AddressConflict,
            ),
            (
                arp(warp::OP_REQUEST, OUR_MAC, OWN, CLIENT, None),
                SlowPathDrop::OwnFrame,
            ),
            (
                arp(3, CLIENT_MAC, CLIENT, VIP, None),
                SlowPathDrop::Unsupported,
            ),
            (
                arp(warp::OP_REQUEST, MacAddr::BROADCAST, CLIENT, VIP, None),
                SlowPathDrop::Malformed,
            ),
        ];
        for (mut f, want) in cases {
            let (out, _) = run(&mut f, 0);
            assert_eq!(out.action, Action::Drop(want));
        }
        let mut short = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, VIP, None);
        short.truncate(30);
        assert_eq!(
            run(&mut short, 0).0.action,
            Action::Drop(SlowPathDrop::Malformed)
        );
        let mut ipv4 = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, VIP, None);
        ipv4[12..14].copy_from_slice(&[8, 0]);
        assert_eq!(
            run(&mut ipv4, 0).0.action,
            Action::Drop(SlowPathDrop::Malformed)
        );
        let mut htype = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, VIP, None);
        htype[14] = 9;
        assert_eq!(
            run(&mut htype, 0).0.action,
            Action::Drop(SlowPathDrop::Unsupported)
        );
    }

    #[test]
    fn gratuitous_from_neighbour_goes_to_kernel_and_probe_is_defended() {
        let mut g = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, CLIENT, None);
        let (out, n) = run(&mut g, 0);
        assert_eq!(out.action, Action::ToKernel { iface: 0 });
        assert!(n.get(CLIENT).is_some());
        let mut probe = arp(
            warp::OP_REQUEST,
            CLIENT_MAC,
            Ipv4Addr::UNSPECIFIED,
            VIP,
            None,
        );
        let (out, n) = run(&mut probe, 0);
        assert!(matches!(out.action, Action::ReplyInPlace { .. }));
        assert!(n.is_empty());
    }

    #[test]
    fn gratuitous_arps_announce_frontends() {
        let (i, f, _) = setup();
        let v = gratuitous_arps(&i, &f.on_iface(0));
        assert_eq!(v.len(), 1);
        let (eth, a) = etherparse::Ethernet2Header::from_slice(&v[0]).unwrap();
        assert_eq!(eth.destination, [0xff; 6]);
        assert_eq!(eth.source, OUR_MAC.0);
        assert_eq!(eth.ether_type, etherparse::EtherType::ARP);
        assert_eq!(&a[6..8], &[0, 1]);
        assert_eq!(&a[8..14], &OUR_MAC.0);
        assert_eq!(&a[14..18], &VIP.octets());
        assert_eq!(&a[24..28], &VIP.octets());
        assert!(gratuitous_arps(&i, &f.on_iface(3)).is_empty());
    }

    #[test]
    fn routed_vip_is_neither_answered_nor_announced() {
        const ROUTED: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
        let i = SlowPathInterface::new("dc", OUR_MAC, OWN, 24, None);
        let f = Frontends::new([SlowPathFrontend {
            addr: ROUTED.into(),
            iface: None,
            any_member_up: true,
        }]);
        let mut n = NeighbourTable::new(vec![i.clone()], NeighbourTimers::default());
        let ctx = ArpCtx {
            iface: 0,
            info: &i,
            frontends: &f,
        };
        let mut req = arp(warp::OP_REQUEST, CLIENT_MAC, CLIENT, ROUTED, None);
        let out = handle_arp(&mut req, &ctx, &mut n, 0);
        assert_eq!(out.action, Action::Drop(SlowPathDrop::NotForUs));
        assert!(gratuitous_arps(&i, &f.on_iface(0)).is_empty());
    }
}
