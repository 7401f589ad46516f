//! Which worker owns a received frame (docs/design.md §6.2): the frame-level half of
//! [`crate::balance::owner`], which says how a client endpoint maps to a worker.
//!
//! - to a frontend (client → VIP, inbound NAT, DSR): the client is the source (address, port);
//! - a NAT reply from a member (member → client): the client is the destination;
//! - outbound SNAT: a member's packet under an outbound rule is owned by f(member endpoint); a
//!   packet to a frontend IP's SNAT port by the worker whose part of the block holds the port
//!   ([`port_worker`]), which is the worker that allocated it;
//! - anything else (ARP, fragments, traffic to the appliance's own addresses — probe answers
//!   included —, packets of no rule): no owner, the
//!   receiving worker handles it (the pipeline sends it to the slow path or drops it).
//!
//! IPv6 frames: [`super::owner6`], the same rule.
//!
//! An ICMP error's owner is its quoted flow's ([`quoted_owner`] reads the IPv4 header the error
//! quotes), so the worker holding the flow's entry forwards it; ICMP queries have no owner. Reads are bounds-checked; no input panics.

use super::snat::port_worker;
use super::View;
use crate::balance::{Reta, Snapshot};
use crate::wire::{ethernet, ethertype, ipv4, protocol};

/// The fields of an IPv4 header (and the ports after it) ownership needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoints {
    proto: u8,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
}

/// The big-endian u16 at `i` of `b`, if inside.
#[inline(always)]
fn be16(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// The big-endian u32 at `i` of `b`, if inside.
#[inline(always)]
fn be32(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Endpoints of the IPv4 header at the start of `ip` (`None` for fragments after the first and
/// short headers; ports read as 0 when absent, as for protocols without ports).
#[inline(always)]
fn endpoints(ip: &[u8]) -> Option<Endpoints> {
    let ver_ihl = *ip.get(ipv4::field::VER_IHL)?;
    if ver_ihl >> 4 != 4 {
        return None;
    }
    let hl = usize::from(ver_ihl & 0x0f) * 4;
    if hl < ipv4::HEADER_LEN {
        return None;
    }
    let proto = *ip.get(ipv4::field::PROTOCOL)?;
    let src = be32(ip, ipv4::field::SRC_ADDR.start)?;
    let dst = be32(ip, ipv4::field::DST_ADDR.start)?;
    let frag = be16(ip, ipv4::field::FLG_OFF.start)?;
    if frag & 0x1fff != 0 {
        return None;
    }
    let (sport, dport) = if proto == protocol::TCP || proto == protocol::UDP {
        (be16(ip, hl).unwrap_or(0), be16(ip, hl + 2).unwrap_or(0))
    } else {
        (0, 0)
    };
    Some(Endpoints {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

/// The offset of the IPv4 header of `frame` (untagged or one 802.1Q tag), if it carries IPv4.
#[inline(always)]
fn ipv4_offset(frame: &[u8]) -> Option<usize> {
    match be16(frame, ethernet::field::ETHERTYPE.start)? {
        ethertype::IPV4 => Some(ethernet::HEADER_LEN),
        ethertype::VLAN
            if be16(frame, ethernet::field::VLAN_ETHERTYPE.start)? == ethertype::IPV4 =>
        {
            Some(ethernet::TAGGED_HEADER_LEN)
        }
        _ => None,
    }
}

/// The worker that owns `frame`, or `None` when any worker may handle it (see the module
/// documentation). With one worker the answer is `Some(0)` for flow packets, computed without a
/// hash.
#[inline]
pub fn frame_owner(frame: &[u8], view: &View<'_>, reta: &Reta) -> Option<usize> {
    let Some(off) = ipv4_offset(frame) else {
        return super::owner6::frame_owner6(frame, view, reta);
    };
    let ip = frame.get(off..)?;
    let e = endpoints(ip)?;
    let snapshot = view.snapshot;
    if view.ports.iter().any(|p| u32::from(p.addr) == e.dst) {
        return None;
    }
    if e.proto == protocol::ICMP {
        return icmp_error_owner(ip, snapshot, reta);
    }
    if snapshot.is_frontend(e.dst) {
        if let Some((_, b)) = snapshot.snat_block_by_port(e.dst, e.proto, e.dport) {
            return Some(port_worker(b, e.dport, reta.workers()));
        }
        return Some(reta.owner(e.src, e.sport));
    }
    if snapshot.reverse(e.src, e.proto, e.sport).is_some() {
        return Some(reta.owner(e.dst, e.dport));
    }
    if snapshot.outbound_for(e.src, e.proto).is_some() {
        return Some(reta.owner(e.src, e.sport));
    }
    None
}

/// ICMP types that quote the packet they are about: destination unreachable, time exceeded,
/// parameter problem.
const ICMP_ERROR_TYPES: [u8; 3] = [3, 11, 12];

/// The owner of an ICMP message to or through the MUX: an error's is its quoted flow's owner
/// (so the worker that holds the flow's entry forwards it); echo and other queries have none.
#[inline]
fn icmp_error_owner(ip: &[u8], snapshot: &Snapshot, reta: &Reta) -> Option<usize> {
    let hl = usize::from(*ip.get(ipv4::field::VER_IHL)? & 0x0f) * 4;
    if !ICMP_ERROR_TYPES.contains(ip.get(hl)?) {
        return None;
    }
    quoted_owner(ip.get(hl + 8..)?, snapshot, reta)
}

/// The owner of the flow an ICMP error is about, from the IPv4 header (and 8 bytes after it) the
/// error quotes: a packet the MUX sent toward a member (client → member or VIP: the client is its
/// source) or toward a client (VIP → client after reverse NAT: the client is its destination);
/// a member's packet after SNAT (frontend IP:SNAT port → remote) names the worker whose part of
/// the block holds the port.
pub fn quoted_owner(quoted: &[u8], snapshot: &Snapshot, reta: &Reta) -> Option<usize> {
    let e = endpoints(quoted)?;
    if let Some((_, b)) = snapshot.snat_block_by_port(e.src, e.proto, e.sport) {
        return Some(port_worker(b, e.sport, reta.workers()));
    }
    if snapshot.is_frontend(e.src) {
        return Some(reta.owner(e.dst, e.dport));
    }
    if snapshot.is_frontend(e.dst) || snapshot.reverse(e.dst, e.proto, e.dport).is_some() {
        return Some(reta.owner(e.src, e.sport));
    }
    None
}

#[cfg(test)]
pub(super) mod test_rig;

#[cfg(test)]
mod tests {
    use super::test_rig::{assert_both_directions, frame, owner};
    use super::*;
    use crate::balance::Health;
    use crate::config::Config;
    use std::net::Ipv4Addr;

    /// 10.1.0.100:80 (TCP) -> web members 10.1.0.11, 10.1.0.12 port 8080 (NAT).
    fn snapshot() -> Snapshot {
        let path = format!("{}/examples/spec-example.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = Config::load(path).expect("config");
        Snapshot::compile(&cfg, &Health::all_up(&cfg))
    }

    const CLIENT: [u8; 4] = [198, 18, 0, 7];
    const VIP: [u8; 4] = [10, 1, 0, 100];
    const MEMBER: [u8; 4] = [10, 1, 0, 11];

    #[test]
    fn both_directions_of_a_nat_flow_have_one_owner() {
        let snap = snapshot();
        let reta = Reta::new(4);
        for port in 40_000u16..40_064 {
            assert_both_directions(&snap, &reta, CLIENT, port, (VIP, MEMBER));
        }
    }

    #[test]
    fn an_outbound_connection_is_owned_by_its_member_endpoint_and_its_snat_port() {
        // Outbound rule "egress": pool "web" leaves as 10.1.0.100, 1024 ports per member;
        // the first member's block is 1024..=2047, split 512 / 512 between two workers.
        let snap = snapshot();
        let reta = Reta::new(2);
        let member = u32::from(Ipv4Addr::from(MEMBER));
        for port in 30_000u16..30_032 {
            let out = frame(MEMBER, port, CLIENT, 443, false);
            assert_eq!(owner(&out, &snap, &reta), Some(reta.owner(member, port)));
        }
        for (snat_port, worker) in [(1024, 0), (1535, 0), (1536, 1), (2047, 1)] {
            let reply = frame(CLIENT, 443, VIP, snat_port, false);
            assert_eq!(
                owner(&reply, &snap, &reta),
                Some(worker),
                "port {snat_port}"
            );
            // An ICMP error quoting the member's packet after SNAT: the same worker.
            let out = frame(VIP, snat_port, CLIENT, 443, false);
            let quoted = &out[ethernet::HEADER_LEN..];
            assert_eq!(quoted_owner(quoted, &snap, &reta), Some(worker));
        }
    }

    #[test]
    fn packets_of_no_flow_have_no_owner() {
        let snap = snapshot();
        let reta = Reta::new(2);
        // Not to a frontend, not from a member's backend port.
        assert_eq!(
            owner(&frame(CLIENT, 1, [10, 1, 0, 50], 80, false), &snap, &reta),
            None
        );
        // A probe's answer from a member's backend port to the appliance.
        assert_eq!(
            owner(
                &frame(MEMBER, 8080, [10, 1, 0, 2], 5000, false),
                &snap,
                &reta
            ),
            None
        );
        // ARP, a truncated frame, a later fragment.
        let mut arp = frame(CLIENT, 1, VIP, 80, false);
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(owner(&arp, &snap, &reta), None);
        let full = frame(CLIENT, 1, VIP, 80, false);
        for n in 0..ethernet::HEADER_LEN + ipv4::HEADER_LEN {
            assert_eq!(owner(&full[..n], &snap, &reta), None, "{n} bytes");
        }
        let mut frag = full.clone();
        frag[ethernet::HEADER_LEN + 7] = 8;
        assert_eq!(owner(&frag, &snap, &reta), None);
    }

    #[test]
    fn an_icmp_error_quoting_either_direction_finds_the_owner() {
        let snap = snapshot();
        let reta = Reta::new(8);
        let want = reta.owner(u32::from(Ipv4Addr::from(CLIENT)), 51_000);
        let l3 = ethernet::HEADER_LEN;
        // The MUX's packet toward the member (after NAT) and toward the client (after reverse NAT).
        let to_member = frame(CLIENT, 51_000, MEMBER, 8080, false);
        let to_client = frame(VIP, 80, CLIENT, 51_000, false);
        let to_vip = frame(CLIENT, 51_000, VIP, 80, false);
        assert_eq!(quoted_owner(&to_member[l3..], &snap, &reta), Some(want));
        assert_eq!(quoted_owner(&to_client[l3..], &snap, &reta), Some(want));
        assert_eq!(quoted_owner(&to_vip[l3..], &snap, &reta), Some(want));
        assert_eq!(quoted_owner(&to_member[l3..l3 + 8], &snap, &reta), None);
        // A whole frame: a router's Fragmentation Needed to the VIP quoting VIP -> client is owned
        // by the client's flow, not by the router's address; an echo request has no owner.
        let mut err = frame([192, 0, 2, 1], 0, VIP, 0, false);
        err.truncate(l3 + ipv4::HEADER_LEN);
        err[l3 + ipv4::field::PROTOCOL] = protocol::ICMP;
        err.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0xdc]);
        err.extend_from_slice(&to_client[l3..l3 + ipv4::HEADER_LEN + 8]);
        assert_eq!(owner(&err, &snap, &reta), Some(want));
        err[l3 + ipv4::HEADER_LEN] = 8;
        assert_eq!(owner(&err, &snap, &reta), None);
    }

    /// What a NIC given `rules` (docs/design.md §6.2) does with a TCP frame from `src:sport` to
    /// `dst:dport`: the matching rule of the lowest priority number (only one may match there),
    /// RSS with the ownership key and a table filled from the queue list in turn (`reta`), or
    /// QUEUE; `None` when no rule matches (the port's own RSS, then a hand-off).
    fn nic_queue(
        rules: &[crate::balance::steer::SteerRule],
        reta: &Reta,
        (src, sport): (u32, u16),
        (dst, dport): (u32, u16),
    ) -> Option<usize> {
        use crate::balance::steer::SteerAction;
        let hits: Vec<_> = rules
            .iter()
            .filter(|r| r.proto == protocol::TCP)
            .filter(|r| r.src.is_none_or(|a| u32::from(a) == src))
            .filter(|r| r.dst.is_none_or(|a| u32::from(a) == dst))
            .filter(|r| r.src_port.is_none_or(|p| p == sport))
            .filter(|r| r.dst_ports.is_none_or(|(v, m)| dport & m == v))
            .collect();
        let top = hits.iter().map(|r| r.priority).min()?;
        let first: Vec<_> = hits.iter().filter(|r| r.priority == top).collect();
        assert_eq!(first.len(), 1, "ambiguous rules {first:?}");
        Some(match first[0].action {
            SteerAction::HashSource => reta.owner(src, sport),
            SteerAction::HashDestination => reta.owner(dst, dport),
            SteerAction::Queue(q) => usize::from(q),
        })
    }

    /// The NIC steering rules put every frame they cover on the queue of the worker
    /// `frame_owner` names: client → VIP, NAT replies, members' outbound connections and replies
    /// to each worker's SNAT ports, for 2, 4 and 8 workers, with and without the outbound group
    /// (a NIC computing RSS with the ownership key and its table filled from the queue list).
    #[test]
    fn nic_steering_rules_agree_with_the_ownership_rule() {
        let snap = snapshot();
        let ob = &snap.outbound[0];
        let ip = |a: [u8; 4]| u32::from(Ipv4Addr::from(a));
        for workers in [2usize, 4, 8] {
            let reta = Reta::new(workers);
            let plan = crate::balance::steer::steer_plan(&snap, workers).expect("plan");
            // Without the outbound group a SNAT reply to a frontend that has load-balancing rules
            // matches the frontend's RSS rule and lands on the client's queue: handed over, so
            // only the full set is asked about SNAT replies.
            for (rules, snat) in [(plan.rules.clone(), false), (plan.with_outbound(), true)] {
                let mut frames = Vec::new();
                for port in (40_000u16..40_256).step_by(7) {
                    frames.push((CLIENT, port, VIP, 80));
                    frames.push((MEMBER, 8080, CLIENT, port));
                    frames.push((MEMBER, port, CLIENT, 443));
                }
                for b in ob.blocks.iter().filter(|_| snat) {
                    let fe = crate::balance::snapshot::ipv4_of(b.frontend_addr)
                        .expect("IPv4 block")
                        .octets();
                    for p in (b.first_port..=b.last_port()).step_by(61) {
                        frames.push((CLIENT, 443, fe, p));
                    }
                    frames.push((CLIENT, 443, fe, b.last_port()));
                }
                let mut covered = 0;
                for (s, sp, d, dp) in frames {
                    let f = frame(s, sp, d, dp, false);
                    let Some(q) = nic_queue(&rules, &reta, (ip(s), sp), (ip(d), dp)) else {
                        continue;
                    };
                    covered += 1;
                    assert_eq!(
                        owner(&f, &snap, &reta),
                        Some(q),
                        "{workers} workers: {s:?}:{sp} -> {d:?}:{dp}"
                    );
                }
                assert!(covered > 50, "{covered} frames covered");
            }
        }
    }
}
