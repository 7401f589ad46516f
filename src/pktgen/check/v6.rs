//! The checker's IPv6 side (`--family 6`): Neighbour Solicitations answered as the neighbours
//! (members, gateway), the Advertisement of the VIP awaited, and every returned IPv6 frame checked
//! against the rewrite the configuration prescribes:
//!
//! - NAT66: the destination is an IPv6 member of the rule's pool (for a port-range NAT rule, the
//!   slot's), the port the backend port, the MAC the next hop's ([`neighbour_mac6`]);
//! - floating IP: the destination stays the VIP and the MAC names the member;
//! - IPv6-in-IPv6 and GUE over IPv6: the outer destination is the member;
//! - the hop limit is the sent one less one (vipmux is a router hop), kept inside an
//!   encapsulation; the TCP/UDP checksum is right over the IPv6 pseudo-header; the source is the
//!   flow's client and the flow keeps its member.
//!
//! Multicast frames other than Neighbour Discovery (the device's MLD reports) are ignored.

use std::net::{IpAddr, Ipv6Addr};

use super::{Checker, Class, Expect, MismatchKind, Outcome};
use crate::balance::snapshot::{MemberId, RuleKind};
use crate::config::DsrEncapsulation;
use crate::pktgen::flows::{client4_of6, VipTarget};
use crate::wire::builder::{neighbor_advert_reply, DEFAULT_TTL, GUE_HEADER_LEN};
use crate::wire::ipv4::protocol;
use crate::wire::{Icmpv6Packet, Ipv6Packet, MacAddr, NdRepr, TcpPacket, UdpPacket};

/// IPv6 next header of ICMPv6.
const ICMPV6: u8 = 58;
/// IPv6 next header of an encapsulated IPv6 packet.
const IPV6_IN_IP: u8 = 41;

/// The MAC the generator answers Neighbour Solicitations with for `ip`: `02:77:` followed by the
/// address's last four bytes.
#[inline]
pub fn neighbour_mac6(ip: Ipv6Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x77, o[12], o[13], o[14], o[15]])
}

/// True when `mac` is one the generator answers with (either family).
fn is_neighbour_mac(mac: MacAddr) -> bool {
    mac.0[0] == 0x02 && (mac.0[1] == 0x76 || mac.0[1] == 0x77)
}

/// The parts of a returned IPv6 frame the checks need.
struct Seen6 {
    encap: Option<DsrEncapsulation>,
    outer_dst: Ipv6Addr,
    dst: Ipv6Addr,
    dport: u16,
    hop_limit: u8,
    mac: MacAddr,
}

impl Checker {
    /// Handles one IPv6 frame (`l3`: the IPv6 header's offset): Neighbour Discovery, or a data
    /// frame to check.
    pub(super) fn handle6(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        dst_mac: MacAddr,
        verify: bool,
    ) -> Outcome {
        let Some(Ok(ip)) = frame.get(l3..).map(Ipv6Packet::new_checked) else {
            return Outcome::Mismatch(MismatchKind::Malformed);
        };
        if ip.next_header() == ICMPV6 {
            return self.nd(frame, l3);
        }
        // Multicast that is not Neighbour Discovery (MLD reports of the device's kernel, behind a
        // Hop-by-Hop header) is no flow's frame.
        if ip.dst_addr().is_multicast() {
            return Outcome::Ignored;
        }
        match self.data6(&frame[l3..], dst_mac, verify) {
            Ok(m) => Outcome::Ok(m),
            Err(k) => Outcome::Mismatch(k),
        }
    }

    /// Answers a Neighbour Solicitation for a neighbour in place, or learns the awaited VIP's MAC
    /// from its Advertisement.
    fn nd(&mut self, frame: &mut [u8], l3: usize) -> Outcome {
        let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
        let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
            return Outcome::Ignored;
        };
        let src_mac = MacAddr(frame[6..12].try_into().unwrap_or([0; 6]));
        match NdRepr::parse(&icmp) {
            Ok(NdRepr::Advert {
                target,
                target_ll: Some(mac),
                ..
            }) => {
                if let Some((want, got)) = &mut self.resolve {
                    if IpAddr::V6(target) == *want && !is_neighbour_mac(mac) {
                        *got = Some(mac);
                    }
                }
                Outcome::Ignored
            }
            Ok(NdRepr::Solicit { target, .. }) => {
                let answer = src_mac != self.own_mac
                    && !is_neighbour_mac(src_mac)
                    && Some(target) != self.own_ip6
                    && !target.is_unspecified()
                    && !self.dut_addrs6.contains(&target);
                if !answer {
                    return Outcome::Ignored;
                }
                let mut out = [0u8; 128];
                match neighbor_advert_reply(&mut out, frame, neighbour_mac6(target)) {
                    Ok(n) if n <= frame.len() => {
                        frame[..n].copy_from_slice(&out[..n]);
                        Outcome::ArpReply(n)
                    }
                    _ => Outcome::Ignored,
                }
            }
            _ => Outcome::Ignored,
        }
    }

    /// Checks one returned IPv6 packet (`ip` starts at the IPv6 header).
    fn data6(
        &mut self,
        ip: &[u8],
        dst_mac: MacAddr,
        verify: bool,
    ) -> Result<Option<MemberId>, MismatchKind> {
        use MismatchKind::*;
        let outer = Ipv6Packet::new_checked(ip).map_err(|_| Malformed)?;
        let (encap, inner) = self.decapsulate6(ip, &outer, verify)?;
        let src4 = client4_of6(inner.src_addr()).ok_or(WrongSrc)?;
        self.class = Some(Class::of(src4));
        let (sport, dport) = l4_ports6(&inner, verify)?;
        if verify {
            self.checksums_checked += 1;
        }
        let ident = (inner.flow_label() & 0xffff) as u16;
        let (flow, target) = self.flow_and_target(src4, sport, ident)?;
        if inner.next_header() != target.proto {
            return Err(WrongDst);
        }
        let seen = Seen6 {
            encap,
            outer_dst: outer.dst_addr(),
            dst: inner.dst_addr(),
            dport,
            hop_limit: inner.hop_limit(),
            mac: dst_mac,
        };
        let member = match self.expect {
            Expect::Echo => {
                if encap.is_some() {
                    return Err(WrongEncap);
                }
                if IpAddr::V6(seen.dst) != target.vip || dport != target.port {
                    return Err(WrongDst);
                }
                return Ok(None);
            }
            Expect::Rewrite => self.expected_member6(&target, &seen)?,
        };
        self.record(flow, member, None)?;
        if let Some(rx) = flow.and_then(|i| self.flow_rx.get_mut(i as usize)) {
            *rx = rx.saturating_add(1);
        }
        Ok(Some(member))
    }

    /// Strips IPv6-in-IPv6, or GUE to one of the pools' GUE ports from a non-client source:
    /// (encapsulation, the client's packet, `outer` itself when not encapsulated).
    fn decapsulate6<'a>(
        &self,
        bytes: &'a [u8],
        outer: &Ipv6Packet<&[u8]>,
        verify: bool,
    ) -> Result<(Option<DsrEncapsulation>, Ipv6Packet<&'a [u8]>), MismatchKind> {
        use MismatchKind::*;
        let payload = bytes
            .get(crate::wire::ipv6::HEADER_LEN..outer.total_len())
            .ok_or(Malformed)?;
        let from_client = client4_of6(outer.src_addr()).is_some();
        let (encap, inner) = match outer.next_header() {
            IPV6_IN_IP => (Some(DsrEncapsulation::Ipip), payload),
            protocol::UDP if !from_client => {
                let u = UdpPacket::new_checked(payload).map_err(|_| Malformed)?;
                if !self.gue_ports.contains(&u.dst_port()) {
                    return Err(WrongSrc);
                }
                if verify && !u.verify_checksum_v6(outer.src_addr(), outer.dst_addr()) {
                    return Err(BadL4Checksum);
                }
                let at = crate::wire::udp::HEADER_LEN + GUE_HEADER_LEN;
                (
                    Some(DsrEncapsulation::Gue),
                    payload.get(at..).ok_or(Malformed)?,
                )
            }
            _ => (None, bytes),
        };
        let inner = Ipv6Packet::new_checked(inner).map_err(|_| Malformed)?;
        Ok((encap, inner))
    }

    /// The member the snapshot says the packet must have gone to, checking destination, port,
    /// MAC, hop limit and encapsulation against the target's rule.
    fn expected_member6(&self, target: &VipTarget, s: &Seen6) -> Result<MemberId, MismatchKind> {
        use MismatchKind::*;
        let rule = self.snapshot.rule(target.rule).ok_or(WrongDst)?;
        let backend_port = rule.backend_port_for(target.port);
        let hop = match s.encap {
            Some(_) => DEFAULT_TTL,
            None => DEFAULT_TTL - 1,
        };
        let member = if !rule.floating_ip {
            if s.encap.is_some() {
                return Err(WrongEncap);
            }
            let m = self
                .snapshot
                .rule_member_by_addr6(rule.id, u128::from(s.dst))
                .ok_or(WrongDst)?;
            if rule.kind == RuleKind::InboundNatRange
                && self.snapshot.nat_slot_member(rule.id, target.port) != Some(m)
            {
                return Err(WrongDst);
            }
            if s.dport != backend_port {
                return Err(WrongDst);
            }
            if let Some(info) = self.snapshot.member(m) {
                let next = match info.next_hop {
                    Some(IpAddr::V6(h)) => h,
                    _ => s.dst,
                };
                if s.mac != neighbour_mac6(next) {
                    return Err(WrongMac);
                }
            }
            m
        } else {
            if IpAddr::V6(s.dst) != target.vip || s.dport != backend_port {
                return Err(WrongDst);
            }
            match (rule.dsr_encapsulation, s.encap) {
                (DsrEncapsulation::None, None) => self.member_by_mac6(rule.id, s.mac)?,
                (want, Some(got)) if want == got => self
                    .snapshot
                    .rule_member_by_addr6(rule.id, u128::from(s.outer_dst))
                    .ok_or(WrongDst)?,
                _ => return Err(WrongEncap),
            }
        };
        if s.hop_limit != hop {
            return Err(WrongHopLimit);
        }
        Ok(member)
    }

    /// The rule's IPv6 member whose [`neighbour_mac6`] is `mac` (MAC-rewrite delivery).
    fn member_by_mac6(
        &self,
        rule: crate::balance::snapshot::RuleId,
        mac: MacAddr,
    ) -> Result<MemberId, MismatchKind> {
        self.snapshot
            .members
            .iter()
            .filter_map(|m| match m.addr {
                IpAddr::V6(a) if neighbour_mac6(a) == mac => Some(a),
                _ => None,
            })
            .find_map(|a| self.snapshot.rule_member_by_addr6(rule, u128::from(a)))
            .ok_or(MismatchKind::WrongMac)
    }
}

/// The L4 ports of the client's IPv6 packet, verifying the checksum (IPv6 pseudo-header) when
/// asked.
fn l4_ports6(inner: &Ipv6Packet<&[u8]>, verify: bool) -> Result<(u16, u16), MismatchKind> {
    use MismatchKind::*;
    let (src, dst) = (inner.src_addr(), inner.dst_addr());
    match inner.next_header() {
        protocol::TCP => {
            let t = TcpPacket::new_checked(inner.payload()).map_err(|_| Malformed)?;
            if verify && !t.verify_checksum_v6(src, dst) {
                return Err(BadL4Checksum);
            }
            Ok((t.src_port(), t.dst_port()))
        }
        protocol::UDP => {
            let u = UdpPacket::new_checked(inner.payload()).map_err(|_| Malformed)?;
            if verify && !u.verify_checksum_v6(src, dst) {
                return Err(BadL4Checksum);
            }
            Ok((u.src_port(), u.dst_port()))
        }
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests;
