//! The generator's output: the live line printed once per second and the final summary, as text
//! or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::check::{Expect, MismatchKind, Mismatches};
use super::Mode;

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

impl Summary {
    /// The summary as human-readable text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pktgen: {} ({}), {}, core {}, mode {:?}, expect {:?}, {} flows over {} targets, {} B frames, rate {}, templates {}",
            self.port,
            self.driver,
            if self.hugepages { "hugepages" } else { "no hugepages" },
            self.core,
            self.mode,
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
        for m in &self.members {
            let _ = writeln!(
                s,
                "  {}/{} {}: {} packets ({:.1} %), {} flows",
                m.pool, m.name, m.address, m.packets, m.share_percent, m.flows
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
}
