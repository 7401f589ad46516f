//! Outbound traffic (`--direction outbound`): the generator plays the members of an outbound
//! rule's pool opening connections to the outside, and checks the SNAT vipmux applies
//! (docs/design.md §3.5.6).
//!
//! Flow `i` goes from member `i mod M` (the members with SNAT blocks, in pool order), port
//! [`MEMBER_PORT_BASE`]` + (i / M) mod `[`MEMBER_PORTS`], to the remote endpoint
//! [`client_of`]`(i)` in 198.18.0.0/16, standing for the internet: the remote endpoint alone names
//! the flow, so a returned frame finds its flow without a hash table, whatever its translated
//! source.
//!
//! With replies (modes established and mix), the remote host answers too: once every flow's SNAT
//! endpoint is known (the flows open first), the generator also sends the remote's data segment to
//! that frontend IP:SNAT port, and vipmux must translate it back to the member. Units `0..N` of
//! the generator's flow set are then the members' frames of flows `0..N`, units `N..2N` the
//! remotes' answers of the same flows, so each direction is counted (and its loss attributed) on
//! its own.
//!
//! A member's frame passes when its destination is the flow's remote endpoint unchanged, its
//! source is a frontend IP of the rule and a port of the member's block on that IP (the blocks
//! come from the same [`Snapshot`] vipmux compiles, so both sides agree), its destination MAC is
//! the next hop toward the remote (on-link, else the interface's gateway) and its checksums are
//! right; and every frame of a flow must carry the SNAT endpoint its first one had. A remote's
//! answer passes when it reaches the flow's member endpoint (address, port and next-hop MAC) with
//! its source unchanged and right checksums.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::check::MismatchKind;
use super::check::{l4_ports, neighbour_mac};
use super::flows::{client_of, flow_index, is_client_addr, TargetError, VipTarget, MAX_FLOWS};
use super::frames::{build, FrameKind, Macs, Templates};
use crate::balance::snapshot::{MemberId, RuleId, Snapshot, IPPROTO_TCP, IPPROTO_UDP};
use crate::config::Protocol;
use crate::wire::{Ipv4Packet, MacAddr};

/// First source port of the members' flows.
pub const MEMBER_PORT_BASE: u16 = 10_000;
/// Distinct member source ports used (flows beyond reuse them toward other remotes).
pub const MEMBER_PORTS: u32 = 50_000;

/// The flows of one outbound rule: members, protocol and count (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundFlows {
    /// The outbound rule's name.
    pub rule: String,
    /// Its first frontend IP (the address the generator resolves the device's MAC with).
    pub frontend: Ipv4Addr,
    /// IP protocol of the flows (UDP for a UDP rule, else TCP).
    pub proto: u8,
    /// Number of flows (connections).
    pub count: u32,
    /// The remote hosts answer (units `count..2 count` are their frames).
    pub replies: bool,
    /// The members with SNAT blocks, in pool order.
    pub members: Vec<(MemberId, Ipv4Addr)>,
}

impl OutboundFlows {
    /// `count` flows (clamped to 1..=[`MAX_FLOWS`] / 2) from the members of the outbound rule
    /// named `only` (else the first outbound rule) of `snapshot`, answered when `replies`.
    pub fn new(
        snapshot: &Snapshot,
        only: Option<&str>,
        count: u32,
        replies: bool,
    ) -> Result<OutboundFlows, TargetError> {
        let rule = match only {
            Some(name) => snapshot.outbound.iter().find(|o| o.name == name),
            None => snapshot.outbound.first(),
        }
        .ok_or_else(|| {
            TargetError(match only {
                Some(name) => format!("no outbound rule named {name:?}"),
                None => "the configuration has no outbound rule to send through".into(),
            })
        })?;
        let members: Vec<(MemberId, Ipv4Addr)> = rule
            .ports_by_member()
            .filter_map(|(m, _)| match snapshot.member(m)?.addr {
                std::net::IpAddr::V4(a) => Some((m, a)),
                std::net::IpAddr::V6(_) => None,
            })
            .collect();
        let frontend = rule.frontends.first().and_then(|a| match a {
            std::net::IpAddr::V4(a) => Some(*a),
            std::net::IpAddr::V6(_) => None,
        });
        let frontend = frontend.ok_or_else(|| {
            TargetError(format!("outbound rule {:?} has no frontend IP", rule.name))
        })?;
        if members.is_empty() {
            return Err(TargetError(format!(
                "outbound rule {:?} has no member with SNAT ports",
                rule.name
            )));
        }
        Ok(OutboundFlows {
            rule: rule.name.clone(),
            frontend,
            proto: match rule.protocol {
                Protocol::Udp => IPPROTO_UDP,
                Protocol::Tcp | Protocol::All => IPPROTO_TCP,
            },
            count: count.clamp(1, MAX_FLOWS / 2),
            replies,
            members,
        })
    }

    /// The generator's units: the flows, and with replies as many remote answers.
    #[inline]
    pub fn units(&self) -> u32 {
        self.count * (1 + u32::from(self.replies))
    }

    /// The member of flow `i` and its source endpoint.
    #[inline]
    pub fn member(&self, i: u32) -> (MemberId, SocketAddrV4) {
        let n = self.members.len().max(1) as u32;
        let (id, addr) = self.members[(i % n) as usize];
        let port = MEMBER_PORT_BASE + ((i / n) % MEMBER_PORTS) as u16;
        (id, SocketAddrV4::new(addr, port))
    }

    /// The remote endpoint of flow `i`.
    #[inline]
    pub fn remote(&self, i: u32) -> SocketAddrV4 {
        client_of(i)
    }

    /// The flow whose remote endpoint is `ip:port`, if it is one of ours.
    #[inline]
    pub fn index_of(&self, ip: Ipv4Addr, port: u16) -> Option<u32> {
        flow_index(ip, port, self.count)
    }

    /// What the generator's flow set stands on: the rule's first frontend IP as the one target
    /// (its MAC is the device's; no rule id names an outbound rule, so the id is unused).
    pub fn target(&self) -> VipTarget {
        VipTarget {
            rule: RuleId(u32::MAX),
            vip: self.frontend.into(),
            port: 0,
            proto: self.proto,
        }
    }

    /// One template per unit and kind: the member's frame to its remote endpoint; with `opened`
    /// and replies also each remote's answer to the flow's SNAT endpoint (a data segment whatever
    /// the kind; to port 0 of the frontend IP for a flow that did not open). Without `opened`,
    /// only the members' frames.
    pub fn templates(
        &self,
        kinds: &[FrameKind],
        size: usize,
        macs: Macs,
        opened: Option<&OutboundCheck>,
    ) -> Templates {
        let units = match opened {
            Some(_) => self.units(),
            None => self.count,
        };
        Templates::from_fn(units as usize, kinds, size, true, |out, u, kind| {
            let u = u as u32;
            let i = u % self.count;
            let (_, member) = self.member(i);
            let remote = self.remote(i);
            let (src, dst, kind) = if u < self.count {
                (member, remote, kind)
            } else {
                let snat = opened.and_then(|c| c.snat_of(i));
                let to = snat.unwrap_or(SocketAddrV4::new(self.frontend, 0));
                (remote, to, FrameKind::Data)
            };
            let target = VipTarget {
                vip: (*dst.ip()).into(),
                port: dst.port(),
                ..self.target()
            };
            build(out, macs, src, &target, 0, kind, flow_isn(u));
        })
    }
}

/// The initial sequence number of outbound flow `i`.
#[inline]
fn flow_isn(i: u32) -> u32 {
    i.wrapping_mul(0x85eb_ca6b) ^ 0x0b0d_0001
}

/// The next hop vipmux sends a packet to `dst` to: `dst` when an interface is on-link of it, else
/// the gateway of the first interface with one (the data path's client route).
pub fn next_hop(snapshot: &Snapshot, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let ifs = &snapshot.interfaces;
    if ifs.iter().any(|i| i.address.contains(dst)) {
        return Some(dst);
    }
    ifs.iter().find_map(|i| i.gateway)
}

const UNSEEN: u64 = u64::MAX;

/// The SNAT frontend IP and port packed in one word.
#[inline]
fn pack(ip: Ipv4Addr, port: u16) -> u64 {
    (u64::from(u32::from(ip)) << 16) | u64::from(port)
}

/// The receive-side check of outbound flows: each flow's SNAT endpoint as first seen.
#[derive(Debug, Clone)]
pub struct OutboundCheck {
    flows: OutboundFlows,
    snat: Vec<u64>,
    opened: u32,
    /// The MAC every remote is reached through when all go via the gateway (else computed).
    gateway_mac: Option<MacAddr>,
}

impl OutboundCheck {
    /// A check of `flows` (from `snapshot`).
    pub fn new(flows: OutboundFlows, snapshot: &Snapshot) -> OutboundCheck {
        let off_link = (0..flows.count).all(|i| {
            let r = *flows.remote(i).ip();
            !snapshot.interfaces.iter().any(|x| x.address.contains(r))
        });
        let gateway_mac = off_link
            .then(|| snapshot.interfaces.iter().find_map(|i| i.gateway))
            .flatten()
            .map(neighbour_mac);
        OutboundCheck {
            snat: vec![UNSEEN; flows.count as usize],
            flows,
            opened: 0,
            gateway_mac,
        }
    }

    /// The flows checked.
    pub fn flows(&self) -> &OutboundFlows {
        &self.flows
    }

    /// Flows that have had a correct frame back (their translation exists).
    pub fn opened(&self) -> u32 {
        self.opened
    }

    /// Whether flow `i` has had a correct frame back.
    #[inline]
    pub fn is_open(&self, i: u32) -> bool {
        self.snat.get(i as usize).is_some_and(|s| *s != UNSEEN)
    }

    /// The SNAT endpoint of flow `i` as first seen.
    pub fn snat_of(&self, i: u32) -> Option<SocketAddrV4> {
        let s = *self.snat.get(i as usize).filter(|s| **s != UNSEEN)?;
        Some(SocketAddrV4::new(
            Ipv4Addr::from((s >> 16) as u32),
            s as u16,
        ))
    }

    /// Checks one returned IPv4 packet (`ip` starts at its header, `dst_mac` is the frame's):
    /// the flow and its member, or the first mismatch found.
    pub fn check(
        &mut self,
        snapshot: &Snapshot,
        ip: &[u8],
        dst_mac: MacAddr,
        verify: bool,
    ) -> Result<(u32, MemberId), MismatchKind> {
        use MismatchKind::*;
        let p = Ipv4Packet::new_checked(ip).map_err(|_| Malformed)?;
        if verify && !p.verify_checksum() {
            return Err(BadIpChecksum);
        }
        let (sport, dport) = l4_ports(&p, verify)?;
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if p.protocol() != self.flows.proto {
            return Err(WrongDst);
        }
        if is_client_addr(src) {
            return self.reply(snapshot, (src, sport), (dst, dport), dst_mac);
        }
        let flow = self.flows.index_of(dst, dport).ok_or(WrongDst)?;
        let (member, from) = self.flows.member(flow);
        let seen = pack(src, sport);
        let hop_mac = match self.gateway_mac {
            Some(m) => Some(m),
            None => next_hop(snapshot, dst).map(neighbour_mac),
        };
        let slot = &mut self.snat[flow as usize];
        if *slot == seen && Some(dst_mac) == hop_mac {
            return Ok((flow, member));
        }
        let in_block = snapshot
            .snat_block(u32::from(*from.ip()), self.flows.proto, u32::from(src))
            .is_some_and(|b| b.contains(sport));
        if !in_block {
            return Err(WrongSnat);
        }
        if Some(dst_mac) != hop_mac {
            return Err(WrongMac);
        }
        if *slot != UNSEEN {
            return Err(SnatChanged);
        }
        *slot = seen;
        self.opened += 1;
        Ok((flow, member))
    }

    /// Checks a remote's answer as returned (`src` the remote, `dst` what vipmux translated the
    /// SNAT endpoint to): its unit (flow + N) and member.
    fn reply(
        &self,
        snapshot: &Snapshot,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        dst_mac: MacAddr,
    ) -> Result<(u32, MemberId), MismatchKind> {
        use MismatchKind::*;
        let flow = self.flows.index_of(src.0, src.1).ok_or(WrongSrc)?;
        if !self.flows.replies {
            return Err(WrongSrc);
        }
        let (member, to) = self.flows.member(flow);
        if (dst.0, dst.1) != (*to.ip(), to.port()) {
            return Err(WrongDst);
        }
        let info = snapshot.member(member).ok_or(WrongDst)?;
        if dst_mac != neighbour_mac(info.next_hop4().unwrap_or(*to.ip())) {
            return Err(WrongMac);
        }
        Ok((flow + self.flows.count, member))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::check::test_support::{self as support, macs, GEN_MAC};
    use crate::pktgen::check::{Checker, Expect, Outcome};
    use crate::pktgen::flows::FlowSet;
    use crate::pktgen::frames::{TemplateRef, L3_OFFSET};
    use crate::wire::builder::{rewrite_endpoint, Endpoint};

    /// The checker tests' configuration plus an outbound rule over pool "web".
    fn config() -> String {
        let rule = "[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"fe\"]\n\
                    backend_pool = \"web\"\nallocated_outbound_ports = 64\n";
        format!("{}\n{rule}", support::CONFIG)
    }
    const FE: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);

    struct Fixture {
        checker: Checker,
        flows: OutboundFlows,
        snap: Snapshot,
    }

    fn fixture(count: u32, replies: bool) -> Fixture {
        let snap = support::snapshot(&config());
        let flows = OutboundFlows::new(&snap, None, count, replies).expect("flows");
        let set = FlowSet::new(flows.units(), vec![flows.target()]);
        let checker = Checker::new(
            snap.clone(),
            set,
            Expect::Rewrite,
            false,
            GEN_MAC,
            Ipv4Addr::new(10, 1, 0, 253),
        )
        .with_outbound(OutboundCheck::new(flows.clone(), &snap));
        Fixture {
            checker,
            flows,
            snap,
        }
    }

    /// The frame of `unit` as `kind` from templates built with `opened`.
    fn frame(f: &Fixture, unit: u32, kind: FrameKind, opened: Option<&OutboundCheck>) -> Vec<u8> {
        let t = f.flows.templates(&[kind], 64, macs(), opened);
        let set = FlowSet::new(f.flows.units(), vec![f.flows.target()]);
        let TemplateRef::Ready(b) = t.get(&set, unit, kind) else {
            panic!("per-flow templates")
        };
        b.to_vec()
    }

    /// What vipmux does to a member's frame: source to `fe:port`, next hop the gateway.
    fn snat(frame: &mut [u8], fe: Ipv4Addr, port: u16) {
        rewrite_endpoint(&mut frame[L3_OFFSET..], Endpoint::Src, fe, Some(port)).expect("snat");
        frame[..6].copy_from_slice(&neighbour_mac(Ipv4Addr::new(10, 1, 0, 1)).0);
    }

    fn block_first(f: &Fixture, member: u32) -> u16 {
        let (_, ep) = f.flows.member(member);
        f.snap
            .snat_block(u32::from(*ep.ip()), IPPROTO_TCP, u32::from(FE))
            .expect("block")
            .first_port
    }

    #[test]
    fn addressing_round_trips() {
        let f = fixture(10_000, true);
        assert_eq!(f.flows.members.len(), 2);
        assert_eq!(f.flows.units(), 20_000);
        for i in [0, 1, 2, 4095, 4096, 9_999] {
            let r = f.flows.remote(i);
            assert_eq!(f.flows.index_of(*r.ip(), r.port()), Some(i));
            let (_, m) = f.flows.member(i);
            assert_eq!(m.ip().octets()[3], 11 + (i % 2) as u8);
        }
        assert_eq!(f.flows.member(0).1.port(), MEMBER_PORT_BASE);
        assert_eq!(f.flows.member(2).1.port(), MEMBER_PORT_BASE + 1);
        let snap = support::snapshot(&config());
        assert!(OutboundFlows::new(&snap, Some("nope"), 1, false).is_err());
    }

    #[test]
    fn right_snat_passes_and_every_wrong_one_is_named() {
        let mut f = fixture(8, false);
        let (b1, b2) = (block_first(&f, 0), block_first(&f, 1));
        assert_ne!(b1, b2, "each member has its own block");
        let mut ok = frame(&f, 0, FrameKind::Syn, None);
        snat(&mut ok, FE, b1);
        assert!(matches!(
            f.checker.handle(&mut ok, true),
            Outcome::Ok(Some(_))
        ));
        // The same frame again: the same SNAT endpoint passes (the fast path).
        let mut again = frame(&f, 0, FrameKind::Syn, None);
        snat(&mut again, FE, b1);
        assert!(matches!(f.checker.handle(&mut again, true), Outcome::Ok(_)));

        let mut cases: Vec<(Vec<u8>, MismatchKind)> = Vec::new();
        // Flow 0 later with another port of its block.
        let mut changed = frame(&f, 0, FrameKind::Data, None);
        snat(&mut changed, FE, b1 + 1);
        cases.push((changed, MismatchKind::SnatChanged));
        // Flow 1 (member vm2) with a port of vm1's block.
        let mut foreign = frame(&f, 1, FrameKind::Syn, None);
        snat(&mut foreign, FE, b1 + 2);
        cases.push((foreign, MismatchKind::WrongSnat));
        // Not translated at all (the member's own source).
        let mut plain = frame(&f, 2, FrameKind::Syn, None);
        plain[..6].copy_from_slice(&neighbour_mac(Ipv4Addr::new(10, 1, 0, 1)).0);
        cases.push((plain, MismatchKind::WrongSnat));
        // Another source address with a port of the block.
        let mut other_ip = frame(&f, 2, FrameKind::Syn, None);
        snat(&mut other_ip, Ipv4Addr::new(10, 1, 0, 2), b1);
        cases.push((other_ip, MismatchKind::WrongSnat));
        // Destination rewritten.
        let mut dst = frame(&f, 4, FrameKind::Syn, None);
        snat(&mut dst, FE, b1);
        rewrite_endpoint(&mut dst[L3_OFFSET..], Endpoint::Dst, FE, Some(80)).unwrap();
        cases.push((dst, MismatchKind::WrongDst));
        // Sent to the member's MAC instead of the gateway's.
        let mut mac = frame(&f, 3, FrameKind::Syn, None);
        snat(&mut mac, FE, b2);
        mac[..6].copy_from_slice(&neighbour_mac(Ipv4Addr::new(10, 1, 0, 12)).0);
        cases.push((mac, MismatchKind::WrongMac));
        // Port rewritten without fixing the TCP checksum.
        let mut sum = frame(&f, 5, FrameKind::Syn, None);
        snat(&mut sum, FE, b2);
        let sport = crate::pktgen::frames::L4_OFFSET;
        sum[sport + 1] ^= 1;
        cases.push((sum, MismatchKind::BadL4Checksum));
        for (i, (mut fr, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                f.checker.handle(&mut fr, true),
                Outcome::Mismatch(want),
                "case {i}"
            );
        }
        assert_eq!(f.checker.mismatches.total(), 7);
        assert_eq!(f.checker.ok, 2);
        let check = f.checker.outbound().expect("outbound");
        assert_eq!(check.opened(), 1);
        assert_eq!(check.snat_of(0), Some(SocketAddrV4::new(FE, b1)));
    }

    #[test]
    fn replies_must_reach_the_member_endpoint() {
        let mut f = fixture(4, true);
        let b1 = block_first(&f, 0);
        let mut out = frame(&f, 0, FrameKind::Syn, None);
        snat(&mut out, FE, b1);
        assert!(matches!(f.checker.handle(&mut out, true), Outcome::Ok(_)));
        let opened = f.checker.outbound().cloned();
        // Unit 4 is flow 0's answer, sent to the SNAT endpoint learnt.
        let reply = frame(&f, 4, FrameKind::Data, opened.as_ref());
        let ip = Ipv4Packet::new_checked(&reply[L3_OFFSET..]).unwrap();
        assert_eq!(ip.dst_addr(), FE);
        assert_eq!(ip.src_addr(), *f.flows.remote(0).ip());
        // vipmux's reverse translation: to vm1's endpoint, its MAC.
        let (_, member) = f.flows.member(0);
        let back = |port: u16, to: Ipv4Addr| {
            let mut b = reply.clone();
            rewrite_endpoint(&mut b[L3_OFFSET..], Endpoint::Dst, *member.ip(), Some(port)).unwrap();
            b[..6].copy_from_slice(&neighbour_mac(to).0);
            b
        };
        let mut good = back(member.port(), *member.ip());
        assert!(matches!(
            f.checker.handle(&mut good, true),
            Outcome::Ok(Some(_))
        ));
        let mut port = back(member.port() + 1, *member.ip());
        assert_eq!(
            f.checker.handle(&mut port, true),
            Outcome::Mismatch(MismatchKind::WrongDst)
        );
        let mut mac = back(member.port(), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(
            f.checker.handle(&mut mac, true),
            Outcome::Mismatch(MismatchKind::WrongMac)
        );
        // The answer counts under its own unit (flow 0 + 4).
        let rx: Vec<u64> = f.checker.flow_outcomes().map(|o| o.2).collect();
        assert_eq!(rx, vec![1, 0, 0, 0, 1, 0, 0, 0]);
    }
}
