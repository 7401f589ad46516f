//! Azure's load-balancer metrics with Azure's dimensions (frontend IP and port, backend IP and
//! port, protocol, direction), derived at scrape time from the snapshot and the aggregated
//! counters — nothing is added to the packet path.
//!
//! Data path availability (`VipAvailability`) is a synthetic probe of each frontend IP, port and
//! protocol run through the data path's own code: on every scrape a private [`Pipeline`] (the
//! workers' code, not a copy) processes a crafted new connection (a TCP SYN, or a UDP datagram)
//! from a documentation address to the frontend against the live snapshot, neighbour map and
//! ports. The frontend is available when that frame would be forwarded to a member, i.e. the rule
//! matches, a member is eligible, its next hop's MAC is known and the frame fits the egress MTU,
//! and the appliance is forwarding. The member's own answer is what the health probe status
//! (`DipAvailability`) measures.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::balance::{Rule, RuleKind, Snapshot};
use crate::config::Protocol;
use crate::control::metrics::{LbBackendMetrics, LbFrontendMetrics};
use crate::dataplane::{Pipeline, PipelineConfig, Verdict, View, WorkerCounters};
use crate::wire::{FrameSpec, TcpFlags, VecBuf};

/// Source of the synthetic connection: TEST-NET-1 (RFC 5737), never a real client.
pub const PROBE_CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40_000);

/// Headroom of the probe frame's buffer (room for an encapsulation header).
const PROBE_HEADROOM: usize = 128;

/// The frontend port label of a rule: the port, `start-end` for an inbound NAT range.
fn frontend_port(r: &Rule) -> String {
    if r.kind == RuleKind::InboundNatRange && r.frontend_port_end != r.frontend_port {
        format!("{}-{}", r.frontend_port, r.frontend_port_end)
    } else {
        r.frontend_port.to_string()
    }
}

/// Per rule: traffic by direction and data path availability.
pub fn lb_frontends(
    view: &View<'_>,
    c: &WorkerCounters,
    forwarding: bool,
) -> Vec<LbFrontendMetrics> {
    let mut probe = Pipeline::new(&PipelineConfig {
        flow_capacity: 64,
        recent_capacity: 16,
    });
    view.snapshot
        .rules
        .iter()
        .map(|r| {
            let rc = c.rules.get(r.id.index()).copied().unwrap_or_default();
            LbFrontendMetrics {
                frontend_ip: r.frontend_addr.to_string(),
                frontend_port: frontend_port(r),
                protocol: r.protocol.as_str().to_string(),
                packets_in: rc.packets,
                packets_out: rc.reply_packets,
                bytes_in: rc.bytes,
                bytes_out: rc.reply_bytes,
                syns_in: rc.syns,
                vip_available: forwarding && reaches_member(&mut probe, view, r),
            }
        })
        .collect()
}

/// Run one new connection to `r`'s frontend through `probe`: forwarded means available.
fn reaches_member(probe: &mut Pipeline, view: &View<'_>, r: &Rule) -> bool {
    let port_index = view
        .snapshot
        .frontends
        .get(r.frontend.index())
        .and_then(|f| f.interface)
        .map_or(0, |i| i.index());
    let Some(port) = view.ports.get(port_index) else {
        return false;
    };
    // HA ports (port 0) take any port; probe a common one.
    let dport = if r.frontend_port == 0 {
        80
    } else {
        r.frontend_port
    };
    let dst = SocketAddrV4::new(r.frontend_addr, dport);
    let payload = [0u8; 8];
    let mut spec = match r.protocol {
        Protocol::Udp => FrameSpec::udp(PROBE_CLIENT, dst, &payload),
        Protocol::Tcp | Protocol::All => FrameSpec::tcp(PROBE_CLIENT, dst, TcpFlags::SYN),
    };
    spec.dst_mac = port.mac;
    let mut frame = [0u8; 128];
    let len = spec.build(&mut frame);
    let mut bufs = [VecBuf::with_room(PROBE_HEADROOM, &frame[..len], 0)];
    let mut verdicts = [Verdict::Drop(crate::dataplane::DropReason::NoRule)];
    probe.process(view, port_index, &mut bufs, &mut verdicts, 0);
    matches!(verdicts[0], Verdict::Forward { .. })
}

/// Per rule and member: whether the member takes the rule's new flows (health probe status).
pub fn lb_backends(snap: &Snapshot) -> Vec<LbBackendMetrics> {
    let mut out = Vec::new();
    for r in &snap.rules {
        for (pos, id) in r.members.iter().enumerate() {
            let Some(m) = snap.member(*id) else { continue };
            out.push(LbBackendMetrics {
                frontend_ip: r.frontend_addr.to_string(),
                frontend_port: frontend_port(r),
                backend_ip: m.addr.to_string(),
                backend_port: r.backend_port.to_string(),
                protocol: r.protocol.as_str().to_string(),
                available: r.eligible.get(pos).copied().unwrap_or(false),
            });
        }
    }
    out
}
