//! The testpmd-like forward loop of ports-only mode: rx burst -> (optional MAC swap) -> tx burst
//! on pinned workers, with no pipeline.
//!
//! It is the baseline a worker's loop is measured against: the same queues, bursts and pinning,
//! none of the load-balancing work. Port `2k` forwards to port `2k + 1` and back; a lone last
//! port sends back out of itself.

use std::time::Duration;

use crate::dpdk::{Burst, DpdkError, DpdkThread, Eal, Port, QueueId, RxQueue, TxQueue};
use crate::platform::signal;

/// Empty polls an adaptive forward loop makes before it starts sleeping.
const IDLE_SPIN_ROUNDS: u32 = 1024;
/// The forward loop's sleep after [`IDLE_SPIN_ROUNDS`] empty polls.
const IDLE_SLEEP: Duration = Duration::from_micros(100);

/// What the forward loop does to each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// Send packets out unchanged.
    Io,
    /// Swap source and destination MAC addresses.
    Macswap,
}

/// One forwarding lane: a receive queue and the transmit queue its packets leave by.
pub type Lane<'p> = (RxQueue<'p>, TxQueue<'p>);

/// What one forward loop did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTotals {
    /// Frames received.
    pub rx: u64,
    /// Frames the devices accepted.
    pub tx: u64,
    /// Frames the devices refused (freed).
    pub tx_dropped: u64,
}

/// The port every port's frames leave by: `i ^ 1` (pairs 0<->1, 2<->3, ...), or `i` itself for
/// a lone last port.
pub fn peer_port(i: usize, ports: usize) -> usize {
    if i ^ 1 < ports {
        i ^ 1
    } else {
        i
    }
}

/// Queue `q` of every port as a lane: its rx queue and its peer port's tx queue.
pub fn lanes(ports: &[Port], q: QueueId) -> Result<Vec<Lane<'_>>, DpdkError> {
    let mut lanes = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().enumerate() {
        let peer = peer_port(i, ports.len());
        lanes.push((port.rx_queue(q)?, ports[peer].tx_queue(q)?));
    }
    Ok(lanes)
}

/// A forwarding worker: pinned to `core`, registered with DPDK, polling its lanes until stop.
pub fn forward_worker(
    eal: &Eal,
    core: usize,
    mode: ForwardMode,
    mut lanes: Vec<Lane<'_>>,
    adaptive: bool,
) -> Result<ForwardTotals, DpdkError> {
    let reg = DpdkThread::pin_and_register(eal, core).inspect_err(|_| signal::request_stop())?;
    tracing::info!(
        "forwarding worker on core {core} ({}), {} lanes, mode {mode:?}",
        reg.lcore(),
        lanes.len()
    );
    let mut burst = Burst::new();
    let mut totals = ForwardTotals::default();
    let mut idle_rounds = 0u32;
    while !signal::stop_requested() {
        let mut busy = false;
        for (rx, tx) in lanes.iter_mut() {
            let n = rx.rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            busy = true;
            if mode == ForwardMode::Macswap {
                for m in burst.iter_mut() {
                    let d = m.data_mut();
                    if d.len() >= 12 {
                        let (dst, rest) = d.split_at_mut(6);
                        dst.swap_with_slice(&mut rest[..6]);
                    }
                }
            }
            let out = tx.tx_burst(&mut burst);
            totals.rx += n as u64;
            totals.tx += out.sent as u64;
            totals.tx_dropped += out.unsent as u64;
        }
        if adaptive {
            if busy {
                idle_rounds = 0;
            } else {
                idle_rounds = idle_rounds.saturating_add(1);
                if idle_rounds > IDLE_SPIN_ROUNDS {
                    std::thread::sleep(IDLE_SLEEP);
                }
            }
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::peer_port;

    #[test]
    fn ports_pair_up_and_a_lone_port_sends_back_out_of_itself() {
        assert_eq!(peer_port(0, 2), 1);
        assert_eq!(peer_port(1, 2), 0);
        assert_eq!(peer_port(2, 4), 3);
        assert_eq!(peer_port(2, 3), 2);
        assert_eq!(peer_port(0, 1), 0);
    }
}
