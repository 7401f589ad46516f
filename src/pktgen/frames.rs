//! Frame templates: whole Ethernet/IPv4/TCP|UDP frames built once with correct checksums, and
//! the in-place patch that moves a template to another client (incremental checksums, RFC 1624),
//! used for synflood and for flow counts too large for one template per flow.
//!
//! Sizes follow the usual generator convention: `--size` is the Ethernet frame length including
//! the 4-byte FCS the NIC appends, so 64 gives 60-byte buffers (54 bytes of headers + 6 of payload
//! or padding).

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use super::flows::{FlowSet, VipTarget, FLOOD_MASK, FLOOD_NET};
use crate::balance::snapshot::IPPROTO_UDP;
use crate::wire::{ethernet, ipv4, tcp, FrameSpec, Ipv4Packet, L4Spec, MacAddr, TcpFlags};

/// Bytes of FCS counted in `--size` but not in the buffer.
pub const FCS_LEN: usize = 4;
/// Smallest `--size` (the minimum Ethernet frame).
pub const MIN_SIZE: usize = 64;
/// Largest `--size` (a 1500-byte IP packet plus Ethernet header and FCS).
pub const MAX_SIZE: usize = 1518;
/// Offset of the IPv4 header in generated (untagged) frames.
pub const L3_OFFSET: usize = ethernet::HEADER_LEN;
/// Offset of the transport header in generated frames.
pub const L4_OFFSET: usize = L3_OFFSET + ipv4::HEADER_LEN;

/// What a frame of a flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A TCP SYN (no payload; the frame is zero-padded to size). UDP targets get a datagram.
    Syn,
    /// A TCP ACK|PSH data segment filling the frame. UDP targets get a datagram.
    Data,
}

/// Buffer length (without FCS) of a frame of `size` bytes.
#[inline]
pub fn buffer_len(size: usize) -> usize {
    size.clamp(MIN_SIZE, MAX_SIZE) - FCS_LEN
}

/// The initial sequence number of flow `i`'s client (any fixed value per flow will do).
#[inline]
fn client_isn(i: u32) -> u32 {
    i.wrapping_mul(0x9e37_79b9) ^ 0x5eed_0001
}

/// Link-layer addresses of generated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Macs {
    /// The generator's port.
    pub src: MacAddr,
    /// The device under test (the VIP's MAC).
    pub dst: MacAddr,
}

/// Writes the frame of `kind` from `client` to `target` into `out` (exactly `out.len()` bytes,
/// at least 60): headers with correct checksums, payload (a fixed pattern) or zero padding. The
/// IPv4 identification carries `ident` (the target's index).
pub fn build(
    out: &mut [u8],
    macs: Macs,
    client: SocketAddrV4,
    target: &VipTarget,
    ident: u16,
    kind: FrameKind,
    isn: u32,
) {
    let vip = match target.vip {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => {
            return super::frames6::build6(out, macs, client, target, ident, kind, isn)
        }
    };
    let len = out.len();
    let mut payload = [0u8; MAX_SIZE];
    let payload_len = fill_payload(&mut payload, len, L4_OFFSET, target.proto, kind);
    let dst = SocketAddrV4::new(vip, target.port);
    let mut spec = if target.proto == IPPROTO_UDP {
        FrameSpec::udp(client, dst, &payload[..payload_len])
    } else {
        let (flags, seq, ack) = tcp_fields(kind, isn);
        FrameSpec {
            proto: L4Spec::Tcp {
                sport: client.port(),
                dport: target.port,
                seq,
                ack,
                flags,
                window: 0xffff,
            },
            payload: &payload[..payload_len],
            ..FrameSpec::tcp(client, dst, flags)
        }
    };
    spec.src_mac = macs.src;
    spec.dst_mac = macs.dst;
    spec.ident = ident;
    out.fill(0);
    spec.build(out);
}

/// Writes the payload pattern of a frame of `len` bytes whose transport header starts at `l4`
/// into `payload` and returns its length (none for a TCP SYN, which is zero-padded instead).
pub(super) fn fill_payload(
    payload: &mut [u8; MAX_SIZE],
    len: usize,
    l4: usize,
    proto: u8,
    kind: FrameKind,
) -> usize {
    let headers = l4
        + if proto == IPPROTO_UDP {
            crate::wire::udp::HEADER_LEN
        } else {
            tcp::HEADER_LEN
        };
    let payload_len = match (proto, kind) {
        (IPPROTO_UDP, _) | (_, FrameKind::Data) => len.saturating_sub(headers).min(MAX_SIZE),
        _ => 0,
    };
    for (k, b) in payload[..payload_len].iter_mut().enumerate() {
        *b = b'a' + (k % 26) as u8;
    }
    payload_len
}

/// TCP flags, sequence and acknowledgement numbers of a frame of `kind` from a client whose
/// initial sequence number is `isn`.
pub(super) fn tcp_fields(kind: FrameKind, isn: u32) -> (TcpFlags, u32, u32) {
    match kind {
        FrameKind::Syn => (TcpFlags::SYN, isn, 0),
        FrameKind::Data => (
            TcpFlags(TcpFlags::ACK.bits() | TcpFlags::PSH.bits()),
            isn.wrapping_add(1),
            1,
        ),
    }
}

/// Moves a generated frame (untagged, TCP or UDP, built by [`build`]) to a new client address and
/// port, updating the IPv4 and L4 checksums incrementally (an IPv6 frame gets the client's
/// [`super::flows::client6_of`] address).
#[inline]
pub fn patch_client(frame: &mut [u8], client: SocketAddrV4) {
    if frame.get(12..14) == Some(&crate::wire::ethernet::ethertype::IPV6.to_be_bytes()[..]) {
        return super::frames6::patch_client6(frame, client);
    }
    if frame.len() < L4_OFFSET + 8 {
        return;
    }
    let (l3, l4) = frame.split_at_mut(L4_OFFSET);
    let mut ip = Ipv4Packet::new_unchecked(&mut l3[L3_OFFSET..]);
    let proto = ip.protocol();
    let old = ip.rewrite_src_addr(*client.ip());
    if proto == IPPROTO_UDP {
        let mut u = crate::wire::UdpPacket::new_unchecked(l4);
        u.update_checksum_for_addr(old, *client.ip());
        u.rewrite_src_port(client.port());
    } else if l4.len() >= tcp::HEADER_LEN {
        let mut t = crate::wire::TcpPacket::new_unchecked(l4);
        t.update_checksum_for_addr(old, *client.ip());
        t.rewrite_src_port(client.port());
    }
}

/// Pre-built frames: one per (flow, kind) when that fits the memory budget, else one per
/// (target, kind) patched per packet.
#[derive(Debug, Clone)]
pub struct Templates {
    /// Frame buffer length (without FCS).
    pub frame_len: usize,
    /// One template per flow (true) or per target (false).
    pub per_flow: bool,
    kinds: Vec<FrameKind>,
    units: usize,
    bytes: Vec<u8>,
}

/// Where to take the frame of one packet from.
#[derive(Debug, Clone, Copy)]
pub enum TemplateRef<'a> {
    /// A ready frame: copy it.
    Ready(&'a [u8]),
    /// A target's frame: copy it, then [`patch_client`] to the flow's client.
    Patch(&'a [u8], SocketAddrV4),
}

impl Templates {
    /// Builds templates of `kinds` for `flows`: per flow when `per_flow` (the caller checks the
    /// memory budget with [`Templates::per_flow_bytes`]), else per target.
    pub fn build(
        flows: &FlowSet,
        kinds: &[FrameKind],
        size: usize,
        macs: Macs,
        per_flow: bool,
    ) -> Templates {
        let units = if per_flow {
            flows.count as usize
        } else {
            flows.targets.len()
        };
        Templates::from_fn(units, kinds, size, per_flow, |out, u, kind| {
            let i = u as u32;
            let t = u % flows.targets.len();
            let isn = if per_flow {
                client_isn(i)
            } else {
                client_isn(0)
            };
            build(
                out,
                macs,
                flows.client(i),
                &flows.targets[t],
                t as u16,
                kind,
                isn,
            );
        })
    }

    /// `units` templates of each of `kinds` (one per flow when `per_flow`, else one per target),
    /// each written by `make(frame, unit, kind)` into a zeroed buffer of the frame length.
    pub fn from_fn(
        units: usize,
        kinds: &[FrameKind],
        size: usize,
        per_flow: bool,
        mut make: impl FnMut(&mut [u8], usize, FrameKind),
    ) -> Templates {
        let frame_len = buffer_len(size);
        let mut bytes = vec![0u8; units * kinds.len() * frame_len];
        let mut chunks = bytes.chunks_exact_mut(frame_len);
        for &kind in kinds {
            for u in 0..units {
                if let Some(out) = chunks.next() {
                    make(out, u, kind);
                }
            }
        }
        Templates {
            frame_len,
            per_flow,
            kinds: kinds.to_vec(),
            units,
            bytes,
        }
    }

    /// Memory one template per flow would take.
    pub fn per_flow_bytes(flows: u32, kinds: usize, size: usize) -> usize {
        flows as usize * kinds * buffer_len(size)
    }

    /// The frame of flow `flow` (`flows` is the set the templates were built for) as `kind`.
    #[inline]
    pub fn get(&self, flows: &FlowSet, flow: u32, kind: FrameKind) -> TemplateRef<'_> {
        let k = self.kinds.iter().position(|x| *x == kind).unwrap_or(0);
        let unit = if self.per_flow {
            flow as usize
        } else {
            flow as usize % flows.targets.len()
        };
        let start = (k * self.units + unit) * self.frame_len;
        let frame = &self.bytes[start..start + self.frame_len];
        if self.per_flow {
            TemplateRef::Ready(frame)
        } else {
            TemplateRef::Patch(frame, flows.client(flow))
        }
    }

    /// The template of target `t` as `kind` (for synflood, which patches a random client in).
    #[inline]
    pub fn target_frame(&self, t: usize, kind: FrameKind) -> Option<&[u8]> {
        if self.per_flow {
            return None;
        }
        let k = self.kinds.iter().position(|x| *x == kind).unwrap_or(0);
        let start = (k * self.units + t) * self.frame_len;
        self.bytes.get(start..start + self.frame_len)
    }
}

/// A tiny xorshift generator for synflood sources (not for anything else).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A random synflood source in 198.19.0.0/16 (never a flow's client) with a port in
    /// 1024..=65535.
    #[inline]
    pub fn client(&mut self) -> SocketAddrV4 {
        let r = self.next_u64();
        let ip = FLOOD_NET | (r as u32 & !FLOOD_MASK);
        let port = 1024 + ((r >> 32) as u16 % (65535 - 1024 + 1));
        SocketAddrV4::new(Ipv4Addr::from(ip), port)
    }
}

/// The frame mix of a SYN flood with established traffic: which frames are established-flow data
/// segments when `share` percent of them should be, spread evenly (a Bresenham accumulator, so
/// any 100 consecutive frames hold exactly `share` established ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareMix {
    share: u32,
    acc: u32,
}

impl ShareMix {
    /// A mix with `share` percent (clamped to 0..=100) established frames.
    pub fn new(share: u8) -> ShareMix {
        ShareMix {
            share: u32::from(share.min(100)),
            acc: 0,
        }
    }

    /// True when the next frame is an established-flow frame, false for a flood SYN.
    #[inline]
    pub fn next_is_established(&mut self) -> bool {
        self.acc += self.share;
        if self.acc >= 100 {
            self.acc -= 100;
            true
        } else {
            false
        }
    }
}

/// Which of the frames waiting in a tx burst (at most 64, in send order) are established-flow
/// frames, so that what the device actually takes can be counted per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BurstClasses {
    bits: u64,
    len: u32,
}

impl BurstClasses {
    /// Records the class of the next frame appended to the burst (ignored beyond 64 frames).
    #[inline]
    pub fn push(&mut self, established: bool) {
        if self.len < 64 {
            self.bits |= u64::from(established) << self.len;
            self.len += 1;
        }
    }

    /// The first `n` frames were sent: forgets them and returns how many were established.
    #[inline]
    pub fn sent(&mut self, n: usize) -> u32 {
        let n = (n as u32).min(self.len);
        let mask = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let est = (self.bits & mask).count_ones();
        self.bits = if n >= 64 { 0 } else { self.bits >> n };
        self.len -= n;
        est
    }

    /// Frames recorded and not yet sent.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no frame is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::snapshot::{RuleId, IPPROTO_TCP};
    use crate::wire::{EthernetFrame, TcpPacket, UdpPacket};

    const MACS: Macs = Macs {
        src: MacAddr::ZERO,
        dst: MacAddr::BROADCAST,
    };

    fn target(proto: u8) -> VipTarget {
        VipTarget {
            rule: RuleId(0),
            vip: Ipv4Addr::new(10, 1, 0, 100).into(),
            port: 80,
            proto,
        }
    }

    fn checksums_ok(f: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(&f[L3_OFFSET..]).unwrap();
        let l4_ok = if ip.protocol() == IPPROTO_UDP {
            UdpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum(ip.src_addr(), ip.dst_addr())
        } else {
            TcpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum(ip.src_addr(), ip.dst_addr())
        };
        ip.verify_checksum() && l4_ok
    }

    #[test]
    fn sizes_and_checksums() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        for size in [64, 65, 128, 1518] {
            for proto in [IPPROTO_TCP, IPPROTO_UDP] {
                for kind in [FrameKind::Syn, FrameKind::Data] {
                    let mut f = vec![0xa5; buffer_len(size)];
                    let c = "198.18.0.9:2000".parse().unwrap();
                    let macs = Macs {
                        src: mac,
                        dst: MacAddr::BROADCAST,
                    };
                    build(&mut f, macs, c, &target(proto), 0, kind, 7);
                    assert_eq!(f.len(), size - 4);
                    assert!(checksums_ok(&f), "{size} {proto} {kind:?}");
                    let e = EthernetFrame::new_checked(&f[..]).unwrap();
                    assert_eq!(e.src_addr(), mac);
                    let ip = Ipv4Packet::new_checked(&f[L3_OFFSET..]).unwrap();
                    if proto == IPPROTO_TCP && kind == FrameKind::Syn {
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.syn() && !t.ack());
                        assert_eq!(ip.total_len(), 40);
                    } else {
                        assert_eq!(usize::from(ip.total_len()), f.len() - L3_OFFSET);
                    }
                }
            }
        }
    }

    #[test]
    fn patch_keeps_checksums_valid() {
        let mut rng = XorShift::new(42);
        for proto in [IPPROTO_TCP, IPPROTO_UDP] {
            let mut f = vec![0; 60];
            let c = "198.18.0.1:1024".parse().unwrap();
            build(&mut f, MACS, c, &target(proto), 0, FrameKind::Data, 1);
            for _ in 0..100 {
                let c = rng.client();
                assert!(crate::pktgen::flows::is_client_addr(*c.ip()));
                patch_client(&mut f, c);
                assert!(checksums_ok(&f));
                let ip = Ipv4Packet::new_checked(&f[L3_OFFSET..]).unwrap();
                assert_eq!(ip.src_addr(), *c.ip());
            }
        }
    }

    #[test]
    fn per_flow_and_patched_templates_agree() {
        let flows = FlowSet::new(10, vec![target(IPPROTO_TCP), target(IPPROTO_UDP)]);
        let kinds = [FrameKind::Syn, FrameKind::Data];
        let a = Templates::build(&flows, &kinds, 64, MACS, true);
        let b = Templates::build(&flows, &kinds, 64, MACS, false);
        for i in 0..10 {
            for kind in kinds {
                let TemplateRef::Ready(x) = a.get(&flows, i, kind) else {
                    panic!("per-flow")
                };
                let TemplateRef::Patch(y, c) = b.get(&flows, i, kind) else {
                    panic!("patch")
                };
                let mut y = y.to_vec();
                patch_client(&mut y, c);
                assert!(checksums_ok(x) && checksums_ok(&y));
                let (px, py) = (
                    Ipv4Packet::new_checked(&x[L3_OFFSET..]).unwrap(),
                    Ipv4Packet::new_checked(&y[L3_OFFSET..]).unwrap(),
                );
                assert_eq!(
                    (px.src_addr(), px.dst_addr()),
                    (py.src_addr(), py.dst_addr())
                );
                assert_eq!(x[L4_OFFSET..L4_OFFSET + 4], y[L4_OFFSET..L4_OFFSET + 4]);
            }
        }
    }

    #[test]
    fn share_mix_is_exact_over_every_hundred_frames() {
        for share in [0u8, 1, 25, 33, 50, 99, 100, 200] {
            let mut m = ShareMix::new(share);
            let picks: Vec<bool> = (0..1000).map(|_| m.next_is_established()).collect();
            let want = usize::from(share.min(100));
            for w in picks.chunks(100) {
                assert_eq!(w.iter().filter(|x| **x).count(), want, "share {share}");
            }
            // Evenly spread: never more than one extra established frame in any 10-frame window.
            for w in picks.windows(10) {
                let est = w.iter().filter(|x| **x).count();
                assert!(est.abs_diff(want / 10) <= 1, "share {share}: {est} in 10");
            }
        }
    }

    #[test]
    fn burst_classes_count_what_was_sent() {
        let mut c = BurstClasses::default();
        for est in [true, false, true, true, false] {
            c.push(est);
        }
        assert_eq!(c.len(), 5);
        assert_eq!(c.sent(2), 1);
        assert_eq!(c.len(), 3);
        // Frames appended after a partial send queue up behind the unsent ones.
        c.push(true);
        assert_eq!(c.sent(3), 2);
        assert_eq!(c.sent(10), 1, "more than recorded is clamped");
        assert!(c.is_empty());
        for i in 0..70 {
            c.push(i % 2 == 0);
        }
        assert_eq!(c.len(), 64);
        assert_eq!(c.sent(64), 32);
        assert_eq!(c.sent(0), 0);
    }

    #[test]
    fn flood_sources_stay_out_of_the_flows() {
        let mut rng = XorShift::new(7);
        let flows = FlowSet::new(crate::pktgen::flows::MAX_FLOWS, vec![target(IPPROTO_TCP)]);
        for _ in 0..10_000 {
            let c = rng.client();
            assert!(crate::pktgen::flows::is_flood_addr(*c.ip()));
            assert!(c.port() >= 1024);
            assert_eq!(flows.index_of(*c.ip(), c.port()), None);
        }
    }
}
