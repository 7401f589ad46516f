//! The receive side: checks that every returned frame was rewritten as the configuration says,
//! counts mismatches by kind and the spread over members, and answers ARP as the network's
//! neighbours (members, gateway) so the device under test can resolve its next hops.
//!
//! Neighbour MACs encode the address they answer for (`02:76:a:b:c:d` for a.b.c.d), so a frame
//! delivered by MAC rewrite (floating IP, `dsr_encapsulation = "none"`) names its member, and a NAT
//! frame's next-hop MAC can be checked.
//!
//! Every generated frame carries its target's index in the IPv4 identification (kept by every
//! rewrite), so synflood frames with random sources can still be matched to their rule.
//!
//! Returned frames are also sorted by source into two classes, counted apart: the flows' own
//! (198.18.0.0/16) and the SYN flood's random sources (198.19.0.0/16), so a flood run can show
//! what happened to established flows while it went on.
//!
//! IPv6 frames (`--family 6`) are checked by `v6`: NAT66, floating IP by MAC rewrite,
//! IPv6-in-IPv6 and GUE over IPv6, the hop limit, the checksum over the IPv6 pseudo-header, and
//! Neighbour Solicitations answered as the neighbours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::flows::{is_client_addr, is_flood_addr, FlowSet, VipTarget};
use super::outbound::OutboundCheck;
use crate::balance::snapshot::{MemberId, RuleKind, Snapshot};
use crate::config::DsrEncapsulation;
use crate::dataplane::reason::reasons;
use crate::wire::builder::{arp_reply_in_place, GUE_HEADER_LEN};
use crate::wire::{
    arp, ethertype, protocol, ArpPacket, EthernetFrame, Ipv4Packet, MacAddr, TcpPacket, UdpPacket,
};

/// What the returned frames are expected to look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Rewritten by a vipmux running the same configuration (NAT, floating IP, IPIP, GUE).
    Rewrite,
    /// Returned unchanged apart from MACs (a reflector such as testpmd in macswap mode).
    Echo,
}

reasons! {
    /// Kinds of mismatch; each bad frame counts once, under the first kind found in this order.
    pub enum MismatchKind {
        /// Not parseable as Ethernet/IPv4/TCP|UDP (or a truncated encapsulation).
        Malformed => "malformed",
        /// Bad IPv4 header checksum (outer or inner).
        BadIpChecksum => "bad_ip_checksum",
        /// Bad TCP/UDP checksum.
        BadL4Checksum => "bad_l4_checksum",
        /// Source is not the flow's client ip:port (or not a client address at all).
        WrongSrc => "wrong_src",
        /// Destination address or port is not what the rule produces.
        WrongDst => "wrong_dst",
        /// Encapsulation missing, unexpected or of the wrong type.
        WrongEncap => "wrong_encap",
        /// Destination MAC is not the next hop's (or names no member for MAC-rewrite delivery).
        WrongMac => "wrong_mac",
        /// A flow seen at a member other than the one it went to before.
        Moved => "moved",
        /// Outbound: the source is not a frontend IP of the rule and a port of the member's
        /// SNAT block on it.
        WrongSnat => "wrong_snat",
        /// Outbound: a flow's frame with another SNAT endpoint than its first one had.
        SnatChanged => "snat_changed",
        /// IPv6: the hop limit is not the sent one less the MUX's hop (encapsulation keeps it).
        WrongHopLimit => "wrong_hop_limit",
    }
}

/// Mismatch counters, one per [`MismatchKind`]; serialized as an object keyed by the kinds'
/// names, in [`MismatchKind::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mismatches([u64; MismatchKind::COUNT]);

impl Mismatches {
    /// The counter of `kind`.
    pub fn get(&self, kind: MismatchKind) -> u64 {
        self.0[kind.index()]
    }

    fn bump(&mut self, kind: MismatchKind) {
        self.0[kind.index()] += 1;
    }

    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for Mismatches {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(MismatchKind::COUNT))?;
        for k in MismatchKind::ALL {
            map.serialize_entry(k.name(), &self.get(k))?;
        }
        map.end()
    }
}

/// Which part of the traffic a returned data frame belongs to, by its (inner) source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// From a flow's client (198.18.0.0/16, or any non-flood source).
    Established,
    /// From a SYN-flood source (198.19.0.0/16).
    Flood,
}

impl Class {
    /// The class of a frame whose client-side source is `src`.
    #[inline]
    pub fn of(src: Ipv4Addr) -> Class {
        if is_flood_addr(src) {
            Class::Flood
        } else {
            Class::Established
        }
    }
}

/// Returned data frames of one [`Class`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    /// Rewritten correctly.
    pub ok: u64,
    /// With a mismatch.
    pub mismatches: u64,
}

impl ClassCounts {
    /// All returned frames of the class.
    pub fn received(&self) -> u64 {
        self.ok + self.mismatches
    }
}

/// What [`Checker::handle`] made of one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A data frame rewritten correctly (to this member, when the rewrite names one).
    Ok(Option<MemberId>),
    /// A data frame with this mismatch.
    Mismatch(MismatchKind),
    /// An ARP request (or IPv6 Neighbour Solicitation) answered in place: send the first `len`
    /// bytes back.
    ArpReply(usize),
    /// Anything else (ARP not to answer, other ethertypes): dropped silently.
    Ignored,
}

/// The MAC the generator answers ARP with for `ip`: `02:76:` followed by the address.
#[inline]
pub fn neighbour_mac(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x76, o[0], o[1], o[2], o[3]])
}

/// The address a [`neighbour_mac`] stands for.
#[inline]
pub fn neighbour_ip(mac: MacAddr) -> Option<Ipv4Addr> {
    let b = mac.0;
    (b[0] == 0x02 && b[1] == 0x76).then(|| Ipv4Addr::new(b[2], b[3], b[4], b[5]))
}

const NO_MEMBER: u32 = u32::MAX;

/// A flow's rewrite as fully checked once (unencapsulated frames): later frames of the flow that
/// carry exactly this destination, port and MAC are the same verdict without the snapshot lookups,
/// so checking a rewritten frame costs the generator about what checking an echo does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verified {
    dst: u32,
    dport: u16,
    mac: MacAddr,
}

/// The receive-side checker and ARP responder.
#[derive(Debug)]
pub struct Checker {
    snapshot: Snapshot,
    flows: FlowSet,
    expect: Expect,
    synflood: bool,
    own_mac: MacAddr,
    own_ip: Ipv4Addr,
    own_ip6: Option<Ipv6Addr>,
    dut_addrs: Vec<Ipv4Addr>,
    dut_addrs6: Vec<Ipv6Addr>,
    gue_ports: Vec<u16>,
    flow_member: Vec<u32>,
    flow_verified: Vec<Option<Verified>>,
    /// Frames of each flow that passed (saturating), for the loss of each flow.
    flow_rx: Vec<u32>,
    /// Flows seen at a second member (their later frames count as `moved`, not as received).
    flow_moved: Vec<bool>,
    /// Frames per member, indexed by `MemberId`.
    pub member_packets: Vec<u64>,
    /// Mismatch counters.
    pub mismatches: Mismatches,
    /// Data frames that passed.
    pub ok: u64,
    /// Data frames from the flows' clients. Frames whose source could not be read (malformed, or
    /// a bad outer checksum of an encapsulation) count in neither class.
    pub established: ClassCounts,
    /// Data frames from SYN-flood sources.
    pub flood: ClassCounts,
    class: Option<Class>,
    /// Frames whose checksums were verified.
    pub checksums_checked: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// Frames ignored (ARP not for a neighbour, other ethertypes).
    pub ignored: u64,
    /// Address whose ARP reply (or Neighbour Advertisement) is awaited (the VIP), and the MAC
    /// learned for it.
    pub resolve: Option<(IpAddr, Option<MacAddr>)>,
    /// Outbound traffic (`--direction outbound`): frames are checked for the rule's SNAT.
    outbound: Option<OutboundCheck>,
}

impl Checker {
    /// A checker for `flows` generated from `snapshot`; `own_mac`/`own_ip` are the generator's
    /// (never answered for); `synflood` means frames from flood sources (198.19.0.0/16) are
    /// expected besides the flows' own.
    pub fn new(
        snapshot: Snapshot,
        flows: FlowSet,
        expect: Expect,
        synflood: bool,
        own_mac: MacAddr,
        own_ip: Ipv4Addr,
    ) -> Checker {
        let mut dut_addrs: Vec<Ipv4Addr> = snapshot
            .frontends
            .iter()
            .filter_map(|f| crate::balance::snapshot::ipv4_of(f.addr))
            .collect();
        dut_addrs.extend(snapshot.interfaces.iter().map(|i| i.address.addr));
        let mut dut_addrs6: Vec<Ipv6Addr> = snapshot
            .frontends
            .iter()
            .filter_map(|f| match f.addr {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect();
        dut_addrs6.extend(
            snapshot
                .interfaces
                .iter()
                .filter_map(|i| i.address6)
                .map(|c| c.addr),
        );
        let mut gue_ports: Vec<u16> = snapshot
            .pools
            .iter()
            .filter(|p| p.dsr_encapsulation == DsrEncapsulation::Gue)
            .map(|p| p.gue_port)
            .collect();
        gue_ports.sort_unstable();
        gue_ports.dedup();
        let flow_member = vec![NO_MEMBER; flows.count as usize];
        let members = snapshot.members.len();
        Checker {
            snapshot,
            flows,
            expect,
            synflood,
            own_mac,
            own_ip,
            own_ip6: None,
            dut_addrs,
            dut_addrs6,
            gue_ports,
            flow_verified: vec![None; flow_member.len()],
            flow_rx: vec![0; flow_member.len()],
            flow_moved: vec![false; flow_member.len()],
            flow_member,
            member_packets: vec![0; members],
            mismatches: Mismatches::default(),
            ok: 0,
            established: ClassCounts::default(),
            flood: ClassCounts::default(),
            class: None,
            checksums_checked: 0,
            arp_replies: 0,
            ignored: 0,
            resolve: None,
            outbound: None,
        }
    }

    /// The checker of outbound traffic: returned frames must carry `check`'s SNAT (the flow set
    /// given to [`Checker::new`] must have `check`'s flow count).
    pub fn with_outbound(mut self, check: OutboundCheck) -> Checker {
        self.outbound = Some(check);
        self
    }

    /// The generator's own IPv6 address (never answered for; its Neighbour Solicitations come
    /// from it).
    pub fn with_own_ip6(mut self, ip: Ipv6Addr) -> Checker {
        self.own_ip6 = Some(ip);
        self
    }

    /// The generator's own IPv6 address, when set.
    pub fn own_ip6(&self) -> Option<Ipv6Addr> {
        self.own_ip6
    }

    /// The outbound check, with `--direction outbound`.
    pub fn outbound(&self) -> Option<&OutboundCheck> {
        self.outbound.as_ref()
    }

    /// Starts the measured run after an opening phase: forgets the frames counted so far (not
    /// the mismatches, nor what the flows are known by).
    pub fn start_run(&mut self) {
        self.ok = 0;
        self.established = ClassCounts::default();
        self.flood = ClassCounts::default();
        self.member_packets.fill(0);
        self.flow_rx.fill(0);
        self.checksums_checked = 0;
    }

    /// The snapshot the expectations come from.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Each flow's first member (`None` while none of its frames came back), whether it moved
    /// since, and its frames that passed.
    pub fn flow_outcomes(&self) -> impl Iterator<Item = (Option<MemberId>, bool, u64)> + '_ {
        self.flow_member
            .iter()
            .zip(&self.flow_moved)
            .zip(&self.flow_rx)
            .map(|((&m, &moved), &rx)| {
                (
                    (m != NO_MEMBER).then_some(MemberId(m)),
                    moved,
                    u64::from(rx),
                )
            })
    }

    /// Distinct flows seen at each member, indexed by `MemberId` (flood sources are no flows).
    pub fn member_flows(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.member_packets.len()];
        for &m in &self.flow_member {
            if let Some(c) = out.get_mut(m as usize) {
                *c += 1;
            }
        }
        out
    }

    /// Handles one received frame: answers ARP in place, or checks a data frame (checksums too
    /// when `verify_checksums`), updating the counters. Never panics on any input.
    pub fn handle(&mut self, frame: &mut [u8], verify_checksums: bool) -> Outcome {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            return self.count(Outcome::Mismatch(MismatchKind::Malformed));
        };
        let Ok(l3) = eth.l3() else {
            return self.count(Outcome::Mismatch(MismatchKind::Malformed));
        };
        let dst_mac = eth.dst_addr();
        match l3.ethertype {
            ethertype::ARP => {
                let out = self.arp(frame, l3.offset);
                self.count(out)
            }
            ethertype::IPV4 => {
                self.class = None;
                let out = match self.data(&frame[l3.offset..], dst_mac, verify_checksums) {
                    Ok(m) => Outcome::Ok(m),
                    Err(k) => Outcome::Mismatch(k),
                };
                self.count(out)
            }
            ethertype::IPV6 => {
                self.class = None;
                let out = self.handle6(frame, l3.offset, dst_mac, verify_checksums);
                self.count(out)
            }
            _ => self.count(Outcome::Ignored),
        }
    }

    fn count(&mut self, out: Outcome) -> Outcome {
        match out {
            Outcome::Ok(m) => {
                self.ok += 1;
                match self.class {
                    Some(Class::Established) => self.established.ok += 1,
                    Some(Class::Flood) => self.flood.ok += 1,
                    None => {}
                }
                if let Some(c) = m.and_then(|m| self.member_packets.get_mut(m.index())) {
                    *c += 1;
                }
            }
            Outcome::Mismatch(k) => {
                self.mismatches.bump(k);
                match self.class {
                    Some(Class::Established) => self.established.mismatches += 1,
                    Some(Class::Flood) => self.flood.mismatches += 1,
                    None => {}
                }
            }
            Outcome::ArpReply(_) => self.arp_replies += 1,
            Outcome::Ignored => self.ignored += 1,
        }
        out
    }

    fn arp(&mut self, frame: &mut [u8], l3: usize) -> Outcome {
        let Some(Ok(a)) = frame.get(l3..).map(ArpPacket::new_checked) else {
            return Outcome::Ignored;
        };
        if !a.is_ethernet_ipv4() {
            return Outcome::Ignored;
        }
        let (op, sender_ip, sender_mac, target_ip) = (
            a.operation(),
            a.sender_ip(),
            a.sender_hw_addr(),
            a.target_ip(),
        );
        if op == arp::OP_REPLY {
            if let Some((want, got)) = &mut self.resolve {
                if IpAddr::V4(sender_ip) == *want && neighbour_ip(sender_mac).is_none() {
                    *got = Some(sender_mac);
                }
            }
            return Outcome::Ignored;
        }
        let answer = op == arp::OP_REQUEST
            && sender_mac != self.own_mac
            && neighbour_ip(sender_mac).is_none()
            && target_ip != sender_ip
            && target_ip != self.own_ip
            && !target_ip.is_unspecified()
            && !self.dut_addrs.contains(&target_ip);
        if !answer {
            return Outcome::Ignored;
        }
        match arp_reply_in_place(frame, neighbour_mac(target_ip)) {
            Ok(len) => Outcome::ArpReply(len),
            Err(_) => Outcome::Ignored,
        }
    }

    /// Checks one returned IPv4 packet of outbound traffic and records its flow's member.
    fn outbound_data(
        &mut self,
        ip: &[u8],
        dst_mac: MacAddr,
        verify: bool,
    ) -> Result<MemberId, MismatchKind> {
        let Some(check) = self.outbound.as_mut() else {
            return Err(MismatchKind::Malformed);
        };
        self.checksums_checked += u64::from(verify);
        self.class = Some(Class::Established);
        let (flow, member) = check.check(&self.snapshot, ip, dst_mac, verify)?;
        let i = flow as usize;
        if let (Some(m), Some(rx)) = (self.flow_member.get_mut(i), self.flow_rx.get_mut(i)) {
            *m = member.0;
            *rx = rx.saturating_add(1);
        }
        Ok(member)
    }

    /// Checks one IPv4 packet (`ip` starts at the IPv4 header).
    fn data(
        &mut self,
        ip: &[u8],
        dst_mac: MacAddr,
        verify: bool,
    ) -> Result<Option<MemberId>, MismatchKind> {
        use MismatchKind::*;
        if self.outbound.is_some() {
            return self.outbound_data(ip, dst_mac, verify).map(Some);
        }
        let outer = Ipv4Packet::new_checked(ip).map_err(|_| Malformed)?;
        let (encap, inner) = self.decapsulate(ip, &outer, verify)?;
        let (src, dst, proto) = (inner.src_addr(), inner.dst_addr(), inner.protocol());
        self.class = Some(Class::of(src));
        let (sport, dport) = l4_ports(&inner, verify)?;
        let (flow, target) = self.flow_and_target(src, sport, inner.ident())?;
        if proto != target.proto {
            return Err(WrongDst);
        }
        let member = self.data_member(flow, &target, encap, &outer, dst, dport, dst_mac)?;
        if let Some(rx) = member
            .and(flow)
            .and_then(|i| self.flow_rx.get_mut(i as usize))
        {
            *rx = rx.saturating_add(1);
        }
        Ok(member)
    }

    /// The member a flow's frame reached, checked against the configuration and the flow's
    /// earlier frames (`None` when echoed).
    #[allow(clippy::too_many_arguments)]
    fn data_member(
        &mut self,
        flow: Option<u32>,
        target: &VipTarget,
        encap: Option<DsrEncapsulation>,
        outer: &Ipv4Packet<&[u8]>,
        dst: Ipv4Addr,
        dport: u16,
        dst_mac: MacAddr,
    ) -> Result<Option<MemberId>, MismatchKind> {
        use MismatchKind::*;
        let seen = Verified {
            dst: u32::from(dst),
            dport,
            mac: dst_mac,
        };
        if encap.is_none() && self.expect == Expect::Rewrite {
            if let Some(m) = self.verified_before(flow, seen) {
                return Ok(Some(m));
            }
        }
        if self.expect == Expect::Echo {
            if encap.is_some() {
                return Err(WrongEncap);
            }
            if dst != target.vip || dport != target.port {
                return Err(WrongDst);
            }
            return Ok(None);
        }
        let member = self.expected_member(target, encap, outer.dst_addr(), seen)?;
        self.record(flow, member, encap.is_none().then_some(seen))?;
        Ok(Some(member))
    }

    /// Verifies the outer header and strips IPIP, or GUE to one of the pools' GUE ports:
    /// (encapsulation, the client's packet, which is `outer` itself when not encapsulated).
    fn decapsulate<'a>(
        &mut self,
        ip: &'a [u8],
        outer: &'a Ipv4Packet<&'a [u8]>,
        verify: bool,
    ) -> Result<(Option<DsrEncapsulation>, Ipv4Packet<&'a [u8]>), MismatchKind> {
        use MismatchKind::*;
        // Unencapsulated frames keep the client as source; an encapsulation's outer source is the
        // MUX, and the class waits for the inner header.
        if is_client_addr(outer.src_addr()) {
            self.class = Some(Class::of(outer.src_addr()));
        }
        if verify {
            self.checksums_checked += 1;
            if !outer.verify_checksum() {
                return Err(BadIpChecksum);
            }
        }
        // Decapsulate IPIP, or GUE to one of the pools' GUE ports.
        let (encap, inner_bytes) = match outer.protocol() {
            protocol::IPIP => (Some(DsrEncapsulation::Ipip), outer.payload()),
            protocol::UDP => {
                let u = UdpPacket::new_checked(outer.payload()).map_err(|_| Malformed)?;
                if self.gue_ports.contains(&u.dst_port()) && !is_client_addr(outer.src_addr()) {
                    if verify && !u.verify_checksum(outer.src_addr(), outer.dst_addr()) {
                        return Err(BadL4Checksum);
                    }
                    let inner_at = crate::wire::udp::HEADER_LEN + GUE_HEADER_LEN;
                    (
                        Some(DsrEncapsulation::Gue),
                        outer.payload().get(inner_at..).ok_or(Malformed)?,
                    )
                } else {
                    (None, outer.payload())
                }
            }
            _ => (None, ip),
        };
        let inner = match encap {
            Some(_) => Ipv4Packet::new_checked(inner_bytes).map_err(|_| Malformed)?,
            None => Ipv4Packet::new_checked(ip).map_err(|_| Malformed)?,
        };
        if verify && encap.is_some() && !inner.verify_checksum() {
            return Err(BadIpChecksum);
        }
        Ok((encap, inner))
    }

    /// The flow index (none for synflood sources) and the target the packet was sent to.
    fn flow_and_target(
        &self,
        src: Ipv4Addr,
        sport: u16,
        ident: u16,
    ) -> Result<(Option<u32>, VipTarget), MismatchKind> {
        use MismatchKind::*;
        let flow = if self.synflood && is_flood_addr(src) {
            None
        } else {
            Some(self.flows.index_of(src, sport).ok_or(WrongSrc)?)
        };
        let target = match flow {
            Some(i) => *self.flows.target(i),
            None => *self.flows.targets.get(usize::from(ident)).ok_or(WrongDst)?,
        };
        Ok((flow, target))
    }

    /// The member of `flow` when its rewrite was already checked exactly as `seen`.
    fn verified_before(&self, flow: Option<u32>, seen: Verified) -> Option<MemberId> {
        let i = flow? as usize;
        match (self.flow_verified.get(i), self.flow_member.get(i)) {
            (Some(Some(v)), Some(&m)) if *v == seen => Some(MemberId(m)),
            _ => None,
        }
    }

    /// The member the snapshot says the packet must have gone to, checking destination, port,
    /// MAC and encapsulation against the target's rule.
    fn expected_member(
        &self,
        target: &VipTarget,
        encap: Option<DsrEncapsulation>,
        outer_dst: Ipv4Addr,
        seen: Verified,
    ) -> Result<MemberId, MismatchKind> {
        use MismatchKind::*;
        let (dst, dport, dst_mac) = (Ipv4Addr::from(seen.dst), seen.dport, seen.mac);
        let rule = self.snapshot.rule(target.rule).ok_or(WrongDst)?;
        let backend_port = rule.backend_port_for(target.port);
        let member = if !rule.floating_ip {
            if encap.is_some() {
                return Err(WrongEncap);
            }
            let m = self
                .snapshot
                .rule_member_by_addr(rule.id, u32::from(dst))
                .ok_or(WrongDst)?;
            if rule.kind == RuleKind::InboundNatRange
                && self.snapshot.nat_slot_member(rule.id, target.port) != Some(m)
            {
                return Err(WrongDst);
            }
            if dport != backend_port {
                return Err(WrongDst);
            }
            if let Some(info) = self.snapshot.member(m) {
                let hop = info.next_hop4().unwrap_or(Ipv4Addr::from(info.addr4()));
                if dst_mac != neighbour_mac(hop) {
                    return Err(WrongMac);
                }
            }
            m
        } else {
            if dst != target.vip || dport != backend_port {
                return Err(WrongDst);
            }
            match (rule.dsr_encapsulation, encap) {
                (DsrEncapsulation::None, None) => {
                    let by_mac = neighbour_ip(dst_mac).ok_or(WrongMac)?;
                    self.snapshot
                        .rule_member_by_addr(rule.id, u32::from(by_mac))
                        .ok_or(WrongMac)?
                }
                (want, Some(got)) if want == got => self
                    .snapshot
                    .rule_member_by_addr(rule.id, u32::from(outer_dst))
                    .ok_or(WrongDst)?,
                _ => return Err(WrongEncap),
            }
        };
        Ok(member)
    }

    /// Remembers the flow's member (a flow that moves is an error) and, when given, its checked
    /// rewrite (`verified`: unencapsulated IPv4 frames).
    fn record(
        &mut self,
        flow: Option<u32>,
        member: MemberId,
        verified: Option<Verified>,
    ) -> Result<(), MismatchKind> {
        use MismatchKind::*;
        if let Some(slot) = flow.and_then(|i| self.flow_member.get_mut(i as usize)) {
            if *slot == NO_MEMBER {
                *slot = member.0;
            } else if *slot != member.0 {
                if let Some(moved) = flow.and_then(|i| self.flow_moved.get_mut(i as usize)) {
                    *moved = true;
                }
                return Err(Moved);
            }
        }
        if let Some(seen) = verified {
            if let Some(v) = flow.and_then(|i| self.flow_verified.get_mut(i as usize)) {
                *v = Some(seen);
            }
        }
        Ok(())
    }
}

mod v6;
pub use v6::neighbour_mac6;

/// The L4 ports of the client's packet, verifying the L4 checksum when asked.
pub(super) fn l4_ports(
    inner: &Ipv4Packet<&[u8]>,
    verify: bool,
) -> Result<(u16, u16), MismatchKind> {
    use MismatchKind::*;
    let (src, dst) = (inner.src_addr(), inner.dst_addr());
    match inner.protocol() {
        protocol::TCP => {
            let t = TcpPacket::new_checked(inner.payload()).map_err(|_| Malformed)?;
            if verify && !t.verify_checksum(src, dst) {
                return Err(BadL4Checksum);
            }
            Ok((t.src_port(), t.dst_port()))
        }
        protocol::UDP => {
            let u = UdpPacket::new_checked(inner.payload()).map_err(|_| Malformed)?;
            if verify && !u.verify_checksum(src, dst) {
                return Err(BadL4Checksum);
            }
            Ok((u.src_port(), u.dst_port()))
        }
        _ => Err(Malformed),
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{self as support, CONFIG};
    use super::*;
    use crate::pktgen::flows::Family;
    use crate::pktgen::frames::{FrameKind, L3_OFFSET};
    use crate::wire::builder::{prepend_ipip, rewrite_endpoint, EncapSpec, Endpoint};
    use crate::wire::{PacketBuf, VecBuf};

    /// A checker of the NAT flows to `rule`.
    fn checker(rule: &str) -> Checker {
        support::checker(CONFIG, Family::V4, rule)
    }

    /// The generator's SYN of `flow`.
    fn sent(c: &Checker, flow: u32) -> Vec<u8> {
        support::sent(c, flow, FrameKind::Syn, 60)
    }

    /// What vipmux's NAT does: destination to `ip:port`, next-hop MAC.
    fn nat(frame: &mut [u8], ip: Ipv4Addr, port: u16) {
        rewrite_endpoint(&mut frame[L3_OFFSET..], Endpoint::Dst, ip, Some(port)).unwrap();
        frame[..6].copy_from_slice(&neighbour_mac(ip).0);
    }

    /// The generator's SYN of `flow` as NAT to `ip:port` makes it.
    fn natted(c: &Checker, flow: u32, ip: Ipv4Addr, port: u16) -> Vec<u8> {
        let mut f = sent(c, flow);
        nat(&mut f, ip, port);
        f
    }

    #[test]
    fn nat_rewrite_passes_and_mismatches_are_classified() {
        let mut c = checker("web");
        let vm1 = Ipv4Addr::new(10, 1, 0, 11);
        let mut f = natted(&c, 0, vm1, 8080);
        assert!(matches!(c.handle(&mut f, true), Outcome::Ok(Some(_))));
        // The same flow at another member.
        let mut g = natted(&c, 0, Ipv4Addr::new(10, 1, 0, 12), 8080);
        assert_eq!(
            c.handle(&mut g, true),
            Outcome::Mismatch(MismatchKind::Moved)
        );
        // Once verified, the same rewrite passes again (fast path) with the same member, while
        // any difference still goes through the full check: another port, another MAC.
        let mut f2 = natted(&c, 0, vm1, 8080);
        assert_eq!(c.handle(&mut f2, false), c.handle(&mut f.clone(), false));
        assert!(matches!(c.handle(&mut f2, false), Outcome::Ok(Some(_))));
        let mut p = natted(&c, 0, vm1, 8081);
        assert_eq!(
            c.handle(&mut p, false),
            Outcome::Mismatch(MismatchKind::WrongDst)
        );
        let mut q = natted(&c, 0, vm1, 8080);
        q[..6].copy_from_slice(&neighbour_mac(Ipv4Addr::new(10, 1, 0, 12)).0);
        assert_eq!(
            c.handle(&mut q, false),
            Outcome::Mismatch(MismatchKind::WrongMac)
        );
        // Not verified when sampling skips the frame.
        let mut h = natted(&c, 5, vm1, 8080);
        h[L3_OFFSET + 20 + 16] ^= 0xff;
        assert!(matches!(c.handle(&mut h, false), Outcome::Ok(_)));
        let mut cases = Vec::new();
        // Not a member / wrong port; unchanged (not rewritten at all).
        let vm3 = Ipv4Addr::new(10, 1, 0, 13);
        cases.push((MismatchKind::WrongDst, natted(&c, 1, vm3, 8080)));
        cases.push((MismatchKind::WrongDst, natted(&c, 1, vm1, 8081)));
        cases.push((MismatchKind::WrongDst, sent(&c, 2)));
        // Source changed.
        let mut h = natted(&c, 3, vm1, 8080);
        let appliance = Ipv4Addr::new(10, 1, 0, 2);
        rewrite_endpoint(&mut h[L3_OFFSET..], Endpoint::Src, appliance, Some(5555)).unwrap();
        cases.push((MismatchKind::WrongSrc, h));
        // Bad checksums: IP header, then TCP.
        let mut h = natted(&c, 4, vm1, 8080);
        h[L3_OFFSET + 10] ^= 0xff;
        cases.push((MismatchKind::BadIpChecksum, h));
        let mut h = natted(&c, 4, vm1, 8080);
        h[L3_OFFSET + 20 + 16] ^= 0xff;
        cases.push((MismatchKind::BadL4Checksum, h));
        // Wrong next-hop MAC.
        let mut h = natted(&c, 6, vm1, 8080);
        h[..6].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        cases.push((MismatchKind::WrongMac, h));
        // Truncated.
        cases.push((MismatchKind::Malformed, sent(&c, 7)[..30].to_vec()));
        support::assert_mismatches(&mut c, cases);

        let m = |k| c.mismatches.get(k);
        use MismatchKind::*;
        assert_eq!(
            (
                m(Moved),
                m(WrongDst),
                m(WrongSrc),
                m(BadIpChecksum),
                m(BadL4Checksum)
            ),
            (1, 4, 1, 1, 1)
        );
        assert_eq!((m(WrongMac), m(Malformed), c.ok), (2, 1, 5));
        // The JSON keys are the kinds' names, in order.
        assert_eq!(
            serde_json::to_string(&c.mismatches).unwrap(),
            r#"{"malformed":1,"bad_ip_checksum":1,"bad_l4_checksum":1,"wrong_src":1,"wrong_dst":4,"wrong_encap":0,"wrong_mac":2,"moved":1,"wrong_snat":0,"snat_changed":0,"wrong_hop_limit":0}"#
        );
        assert_eq!(c.member_packets.iter().sum::<u64>(), 5);
    }

    #[test]
    fn ipip_delivery_is_checked_by_outer_destination() {
        let mut c = checker("tun");
        let f = sent(&c, 0);
        let mut buf = VecBuf::with_room(64, &f[L3_OFFSET..], 0);
        let spec = EncapSpec {
            outer_src: Ipv4Addr::new(10, 1, 0, 2),
            outer_dst: Ipv4Addr::new(10, 9, 0, 1),
            ttl: 64,
        };
        prepend_ipip(&mut buf, &spec).unwrap();
        let mut out = f[..L3_OFFSET].to_vec();
        out.extend_from_slice(buf.data());
        assert!(matches!(
            c.handle(&mut out.clone(), true),
            Outcome::Ok(Some(_))
        ));
        // Plain (not encapsulated) delivery of a floating IPIP rule.
        let mut plain = f.clone();
        assert_eq!(
            c.handle(&mut plain, true),
            Outcome::Mismatch(MismatchKind::WrongEncap)
        );
    }

    #[test]
    fn arp_answered_for_neighbours_only() {
        let mut c = checker("web");
        let dut = MacAddr([2, 0, 0, 0, 0, 0x10]);
        let mut req = vec![0; 60];
        let n = crate::wire::builder::arp_request(
            &mut req,
            dut,
            None,
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 1, 0, 11),
        )
        .unwrap();
        assert_eq!(c.handle(&mut req[..n], false), Outcome::ArpReply(60));
        let a = ArpPacket::new_checked(&req[14..]).unwrap();
        assert_eq!(
            a.sender_hw_addr(),
            neighbour_mac(Ipv4Addr::new(10, 1, 0, 11))
        );
        assert_eq!(&req[..6], &dut.0);
        // Requests for the VIP, the generator itself and gratuitous ARP are not answered.
        for (sender, target) in [
            ([10, 1, 0, 2], [10, 1, 0, 100]),
            ([10, 1, 0, 2], [10, 1, 0, 254]),
            ([10, 1, 0, 2], [10, 1, 0, 2]),
        ] {
            let mut req = vec![0; 60];
            crate::wire::builder::arp_request(&mut req, dut, None, sender.into(), target.into())
                .unwrap();
            assert_eq!(c.handle(&mut req, false), Outcome::Ignored);
        }
        assert_eq!(c.arp_replies, 1);
    }

    #[test]
    fn echo_mode_accepts_unchanged_frames() {
        let mut c = support::checker_with(CONFIG, Family::V4, None, 4, Expect::Echo, false);
        for i in 0..4 {
            let mut f = sent(&c, i);
            assert_eq!(c.handle(&mut f, true), Outcome::Ok(None));
        }
        let mut f = natted(&c, 0, Ipv4Addr::new(10, 1, 0, 11), 8080);
        assert_eq!(
            c.handle(&mut f, true),
            Outcome::Mismatch(MismatchKind::WrongDst)
        );
    }

    #[test]
    fn flood_and_established_frames_are_counted_apart() {
        let web = Some("web");
        let mut c = support::checker_with(CONFIG, Family::V4, web, 8, Expect::Rewrite, true);
        let (vm1, vm2) = (Ipv4Addr::new(10, 1, 0, 11), Ipv4Addr::new(10, 1, 0, 12));
        // An established flow's frame, rewritten correctly.
        let mut f = natted(&c, 0, vm1, 8080);
        assert!(matches!(c.handle(&mut f, true), Outcome::Ok(Some(_))));
        // Flood SYNs from random sources, to either member: fine, and no flow is tracked.
        let mut rng = crate::pktgen::frames::XorShift::new(3);
        for vm in [vm1, vm2, vm1] {
            let mut g = sent(&c, 1);
            crate::pktgen::frames::patch_client(&mut g, rng.client());
            nat(&mut g, vm, 8080);
            assert!(matches!(c.handle(&mut g, true), Outcome::Ok(Some(_))));
        }
        // A flood frame rewritten to the wrong port, an established one moved to another member.
        let mut g = sent(&c, 1);
        crate::pktgen::frames::patch_client(&mut g, rng.client());
        nat(&mut g, vm1, 9999);
        assert_eq!(
            c.handle(&mut g, true),
            Outcome::Mismatch(MismatchKind::WrongDst)
        );
        let mut f = natted(&c, 0, vm2, 8080);
        assert_eq!(
            c.handle(&mut f, true),
            Outcome::Mismatch(MismatchKind::Moved)
        );
        // A client address that is neither a flow nor a flood source.
        let mut h = sent(&c, 2);
        crate::pktgen::frames::patch_client(&mut h, "198.18.200.1:1024".parse().unwrap());
        nat(&mut h, vm1, 8080);
        assert_eq!(
            c.handle(&mut h, true),
            Outcome::Mismatch(MismatchKind::WrongSrc)
        );
        // A flood frame with a broken TCP checksum still counts as flood.
        let mut g = sent(&c, 1);
        crate::pktgen::frames::patch_client(&mut g, rng.client());
        nat(&mut g, vm1, 8080);
        g[L3_OFFSET + 20 + 16] ^= 0xff;
        assert_eq!(
            c.handle(&mut g, true),
            Outcome::Mismatch(MismatchKind::BadL4Checksum)
        );
        // Garbage belongs to neither class.
        let mut junk = sent(&c, 3)[..30].to_vec();
        assert_eq!(
            c.handle(&mut junk, true),
            Outcome::Mismatch(MismatchKind::Malformed)
        );
        assert_eq!(
            c.established,
            ClassCounts {
                ok: 1,
                mismatches: 2
            }
        );
        assert_eq!(
            c.flood,
            ClassCounts {
                ok: 3,
                mismatches: 2
            }
        );
        assert_eq!(c.ok, 4);
        assert_eq!(c.mismatches.total(), 5);
        assert_eq!(
            c.established.received() + c.flood.received(),
            8,
            "all but the malformed frame"
        );
        assert_eq!(
            c.member_flows().iter().sum::<u64>(),
            1,
            "only flow 0 is tracked"
        );
    }

    #[test]
    fn without_synflood_a_flood_source_is_a_wrong_source() {
        let mut c = checker("web");
        let mut g = sent(&c, 1);
        crate::pktgen::frames::patch_client(&mut g, "198.19.1.2:3000".parse().unwrap());
        nat(&mut g, Ipv4Addr::new(10, 1, 0, 11), 8080);
        assert_eq!(
            c.handle(&mut g, true),
            Outcome::Mismatch(MismatchKind::WrongSrc)
        );
        assert_eq!(c.flood.mismatches, 1);
    }
}
