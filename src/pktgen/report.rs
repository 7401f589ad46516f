//! The generator's output: the live line printed once per second and the final summary, as text
//! or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::check::{ClassCounts, Expect, MismatchKind, Mismatches};
use super::{Mode, TrafficDirection};

/// Packets of one member in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberSpread {
    /// Pool name.
    pub pool: String,
    /// Member name.
    pub name: String,
    /// Member address.
    pub address: String,
    /// Data frames delivered to it.
    pub packets: u64,
    /// Distinct flows delivered to it.
    pub flows: u64,
    /// Share of all correctly rewritten frames, in percent.
    pub share_percent: f64,
    /// Frames sent and not received back, of the flows first seen here that never moved (flows
    /// are sent in turn, so each flow's sent count follows from the total).
    pub lost: u64,
    /// Flows first seen here and later at another member.
    pub moved_flows: u64,
}

/// A SYN flood's two parts (mode synflood): the established flows' data segments and the
/// random-source SYNs, each sent, received back and lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloodSplit {
    /// Percent of frames that were established-flow data segments (`--established-share`).
    pub established_share_percent: u8,
    /// Established-flow frames sent.
    pub established_tx_packets: u64,
    /// Established-flow frames received back (correct or not).
    pub established_rx_packets: u64,
    /// Established-flow frames sent and not received back.
    pub established_lost: u64,
    /// `established_lost` in percent of `established_tx_packets`.
    pub established_loss_percent: f64,
    /// Established-flow send rate.
    pub established_tx_mpps: f64,
    /// Established-flow receive rate.
    pub established_rx_mpps: f64,
    /// Established-flow frames received with a rewrite mismatch.
    pub established_errors: u64,
    /// Flood SYNs sent.
    pub syn_tx_packets: u64,
    /// Flood SYNs received back (each a new flow the device forwarded).
    pub syn_rx_packets: u64,
    /// Flood SYNs sent and not received back, in percent.
    pub syn_loss_percent: f64,
    /// Flood send rate.
    pub syn_tx_mpps: f64,
    /// Flood SYNs forwarded per second, in millions: the new-flow rate.
    pub syn_rx_mpps: f64,
    /// Flood SYNs received with a rewrite mismatch.
    pub syn_errors: u64,
}

impl FloodSplit {
    /// The split from the per-class counts: frames sent (`est_tx` of them established), the
    /// checker's per-class receive counts, and the seconds of sending.
    pub fn new(
        share: u8,
        tx: u64,
        est_tx: u64,
        established: ClassCounts,
        flood: ClassCounts,
        secs: f64,
    ) -> FloodSplit {
        let syn_tx = tx.saturating_sub(est_tx);
        let (est_rx, syn_rx) = (established.received(), flood.received());
        FloodSplit {
            established_share_percent: share,
            established_tx_packets: est_tx,
            established_rx_packets: est_rx,
            established_lost: est_tx.saturating_sub(est_rx),
            established_loss_percent: loss_percent(est_tx, est_rx),
            established_tx_mpps: mpps(est_tx, secs),
            established_rx_mpps: mpps(est_rx, secs),
            established_errors: established.mismatches,
            syn_tx_packets: syn_tx,
            syn_rx_packets: syn_rx,
            syn_loss_percent: loss_percent(syn_tx, syn_rx),
            syn_tx_mpps: mpps(syn_tx, secs),
            syn_rx_mpps: mpps(syn_rx, secs),
            syn_errors: flood.mismatches,
        }
    }
}

/// The final summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// DPDK port used.
    pub port: String,
    /// Its driver.
    pub driver: String,
    /// EAL memory: hugepages or not.
    pub hugepages: bool,
    /// Core the send/receive loop ran on.
    pub core: usize,
    /// Traffic mode.
    pub mode: Mode,
    /// Inbound (clients to frontends) or outbound (members through SNAT).
    pub direction: TrafficDirection,
    /// What returned frames were checked against.
    pub expect: Expect,
    /// Flows.
    pub flows: u32,
    /// Targets (frontend ip:port) the flows are spread over.
    pub targets: usize,
    /// Frame size in bytes, FCS included.
    pub size: usize,
    /// Rate limit in packets/s (0 = none).
    pub rate_limit_pps: u64,
    /// Templates: one per flow or one per target patched per packet.
    pub templates: String,
    /// Seconds of sending.
    pub duration_secs: f64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Data frames received back (ARP and ignored frames excluded).
    pub rx_packets: u64,
    /// Send rate.
    pub tx_mpps: f64,
    /// Receive rate.
    pub rx_mpps: f64,
    /// Frames sent and not received back, in percent of those sent.
    pub loss_percent: f64,
    /// Frames received with a mismatch (sum of `mismatches`).
    pub errors: u64,
    /// Mismatches by kind.
    pub mismatches: Mismatches,
    /// Frames whose checksums were verified (a sample).
    pub checksums_checked: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// Frames ignored (not IPv4 data, ARP not answered).
    pub ignored: u64,
    /// Spread over members (empty in echo mode).
    pub members: Vec<MemberSpread>,
    /// Flows none of whose frames came back (their loss belongs to no member).
    pub unanswered_flows: u64,
    /// Mode synflood: established flows and flood SYNs apart (absent in other modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodSplit>,
}

/// Mpps from a packet count and seconds.
pub fn mpps(packets: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        packets as f64 / secs / 1e6
    } else {
        0.0
    }
}

/// Loss in percent: sent and not received (0 when nothing was sent).
pub fn loss_percent(tx: u64, rx: u64) -> f64 {
    if tx == 0 {
        0.0
    } else {
        tx.saturating_sub(rx) as f64 * 100.0 / tx as f64
    }
}

/// The live line for one interval.
pub fn live_line(elapsed_secs: u64, dtx: u64, drx: u64, secs: f64, errors: u64) -> String {
    format!(
        "[{elapsed_secs:>4}s] tx {:>6.2} Mpps  rx {:>6.2} Mpps  loss {:>6.2} %  errors {errors}",
        mpps(dtx, secs),
        mpps(drx, secs),
        loss_percent(dtx, drx)
    )
}

/// What the live line adds in a SYN flood with established traffic, for one interval:
/// established frames sent and received, flood SYNs received.
pub fn live_split(dest_tx: u64, dest_rx: u64, dsyn_rx: u64, secs: f64) -> String {
    format!(
        "  | established tx {:>6.2} rx {:>6.2} Mpps loss {:>6.2} %  | SYN rx {:>6.2} M new flows/s",
        mpps(dest_tx, secs),
        mpps(dest_rx, secs),
        loss_percent(dest_tx, dest_rx),
        mpps(dsyn_rx, secs)
    )
}

impl Summary {
    /// The summary as human-readable text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pktgen: {} ({}), {}, core {}, mode {:?}, direction {:?}, expect {:?}, {} flows over {} targets, {} B frames, rate {}, templates {}",
            self.port,
            self.driver,
            if self.hugepages { "hugepages" } else { "no hugepages" },
            self.core,
            self.mode,
            self.direction,
            self.expect,
            self.flows,
            self.targets,
            self.size,
            if self.rate_limit_pps == 0 {
                "max".to_owned()
            } else {
                format!("{} pps", self.rate_limit_pps)
            },
            self.templates
        );
        let _ = writeln!(
            s,
            "sent {} in {:.2} s ({:.2} Mpps), received {} ({:.2} Mpps), loss {:.3} %",
            self.tx_packets,
            self.duration_secs,
            self.tx_mpps,
            self.rx_packets,
            self.rx_mpps,
            self.loss_percent
        );
        let _ = write!(
            s,
            "errors {} (checksums verified on {} frames)",
            self.errors, self.checksums_checked
        );
        for k in MismatchKind::ALL {
            let v = self.mismatches.get(k);
            if v > 0 {
                let _ = write!(s, " {} {v}", k.name());
            }
        }
        let _ = writeln!(
            s,
            "; ARP replies {}, ignored {}",
            self.arp_replies, self.ignored
        );
        if let Some(f) = &self.flood {
            let _ = writeln!(
                s,
                "established ({} % of frames): sent {} ({:.2} Mpps), received {} ({:.2} Mpps), lost {} ({:.3} %), errors {}",
                f.established_share_percent,
                f.established_tx_packets,
                f.established_tx_mpps,
                f.established_rx_packets,
                f.established_rx_mpps,
                f.established_lost,
                f.established_loss_percent,
                f.established_errors
            );
            let _ = writeln!(
                s,
                "SYN flood: sent {} ({:.2} Mpps), received {} ({:.2} M new flows/s), loss {:.3} %, errors {}",
                f.syn_tx_packets,
                f.syn_tx_mpps,
                f.syn_rx_packets,
                f.syn_rx_mpps,
                f.syn_loss_percent,
                f.syn_errors
            );
        }
        for m in &self.members {
            let _ = writeln!(
                s,
                "  {}/{} {}: {} packets ({:.1} %), {} flows, lost {}, moved flows {}",
                m.pool,
                m.name,
                m.address,
                m.packets,
                m.share_percent,
                m.flows,
                m.lost,
                m.moved_flows
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_loss() {
        assert_eq!(mpps(2_000_000, 2.0), 1.0);
        assert_eq!(mpps(5, 0.0), 0.0);
        assert_eq!(loss_percent(0, 0), 0.0);
        assert_eq!(loss_percent(200, 150), 25.0);
        assert_eq!(loss_percent(100, 120), 0.0);
        assert!(live_line(3, 1_000_000, 500_000, 1.0, 2).contains("loss  50.00 %"));
    }

    #[test]
    fn flood_split_counts_each_part() {
        let est = ClassCounts {
            ok: 240,
            mismatches: 10,
        };
        let flood = ClassCounts {
            ok: 600,
            mismatches: 0,
        };
        let f = FloodSplit::new(25, 1000, 250, est, flood, 2.0);
        assert_eq!(f.established_tx_packets, 250);
        assert_eq!(f.established_rx_packets, 250);
        assert_eq!(f.established_lost, 0);
        assert_eq!(f.established_errors, 10);
        assert_eq!(f.syn_tx_packets, 750);
        assert_eq!(f.syn_rx_packets, 600);
        assert_eq!(f.syn_loss_percent, 20.0);
        assert_eq!(f.syn_rx_mpps, 300.0 / 1e6);
        let lossy = FloodSplit::new(
            50,
            100,
            50,
            ClassCounts {
                ok: 40,
                mismatches: 0,
            },
            flood,
            1.0,
        );
        assert_eq!(
            (lossy.established_lost, lossy.established_loss_percent),
            (10, 20.0)
        );
        let line = live_split(1_000_000, 500_000, 2_000_000, 1.0);
        assert!(
            line.contains("loss  50.00 %") && line.contains("SYN rx   2.00"),
            "{line}"
        );
    }
}
