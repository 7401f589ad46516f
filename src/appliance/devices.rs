//! The appliance's devices: one DPDK port per interface (with a slow-path tx queue when the
//! device allows it) and one `net_tap` port per interface, whose kernel side is the interface's
//! exception port.

use crate::config::{Config, Interface};
use crate::dataplane::EgressPort;
use crate::dpdk::{port_queue_limits, Eal, Mempool, Port, PortConfig, Profile, TAP_RX_DESCRIPTORS};
use crate::runtime::hub::{PortQueues, Steering};
use crate::wire::MacAddr;

use super::{kernel, tap_port_name, BoxError};

/// The ports the appliance opened, in interface order.
#[derive(Debug)]
pub(super) struct Devices {
    /// The physical ports.
    pub(super) ports: Vec<Port>,
    /// Per physical port: whether it has a tx queue of its own for the slow path.
    pub(super) slow_queue: Vec<bool>,
    /// The TAP ports.
    pub(super) taps: Vec<Port>,
    /// Per physical port: MAC, address, MTU.
    pub(super) infos: Vec<EgressPort>,
    /// Per physical port: queues and steering mode.
    pub(super) queues: Vec<PortQueues>,
}

impl Devices {
    /// Opens every interface's port (`workers` rx queues, `workers + 1` tx queues where the
    /// device allows) and its TAP port.
    pub(super) fn open(
        eal: &Eal,
        pool: &Mempool,
        config: &Config,
        profile: &Profile,
        workers: usize,
    ) -> Result<Devices, BoxError> {
        let mut ports = Vec::new();
        let mut slow_queue = Vec::new();
        let mut queues = Vec::new();
        for ifc in &config.interfaces {
            let (port, dedicated) = open_port(eal, pool, ifc, profile, workers)?;
            if workers > 1 && port.info()?.can_steer_by_endpoint() {
                tracing::info!(port = %ifc.port, "the device can hash on source-only/destination-only fields: NIC steering by flow owner is possible but not programmed yet, frames are handed over in software");
            }
            queues.push(PortQueues {
                port: ifc.port.clone(),
                rx_queues: port.rx_queue_count(),
                steering: steering(workers),
            });
            ports.push(port);
            slow_queue.push(dedicated);
        }
        let mut taps = Vec::new();
        for i in 0..config.interfaces.len() {
            let pc = PortConfig {
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: TAP_RX_DESCRIPTORS,
                ..PortConfig::default()
            };
            taps.push(Port::open(eal, &tap_port_name(i), &pc, pool)?);
        }
        let mut infos = Vec::new();
        for (ifc, port) in config.interfaces.iter().zip(&ports) {
            infos.push(EgressPort {
                mac: port.mac_addr()?,
                addr: ifc.address.addr,
                mtu: u16::try_from(ifc.mtu).unwrap_or(1500),
            });
        }
        Ok(Devices {
            ports,
            slow_queue,
            taps,
            infos,
            queues,
        })
    }

    /// The physical ports' MACs, in interface order.
    pub(super) fn macs(&self) -> Vec<MacAddr> {
        self.infos.iter().map(|p| p.mac).collect()
    }

    /// Configures the kernel side of every TAP (MAC, address, route), named `taps`, and keeps
    /// the kernel off the interfaces the `af_packet` ports in `eal_args` sit on.
    pub(super) fn configure_kernel(
        &self,
        config: &Config,
        taps: &[String],
        eal_args: &[String],
    ) -> Result<(), BoxError> {
        for (i, ifc) in config.interfaces.iter().enumerate() {
            if let Some(dev) = kernel::af_packet_iface(eal_args, &ifc.port) {
                kernel::silence_af_packet_iface(dev);
            }
            kernel::configure_tap(
                &taps[i],
                self.infos[i].mac,
                ifc.address.addr,
                ifc.address.prefix_len,
                ifc.gateway,
            )
            .map_err(|e| format!("configuring the kernel TAP of interface {}: {e}", ifc.name))?;
            tracing::info!(interface = %ifc.name, tap = %taps[i], address = %ifc.address, "kernel exception port up");
        }
        Ok(())
    }

    /// Stops and closes every port (physical first, then the TAPs); failures are logged.
    pub(super) fn close(self) {
        for port in self.ports.into_iter().chain(self.taps) {
            let name = port.name().to_owned();
            if let Err(e) = port.close() {
                tracing::warn!("closing {name}: {e}");
            }
        }
    }
}

/// What to change when port `port` cannot give `workers` queue pairs, by device kind.
fn queue_hint(port: &str, workers: usize) -> String {
    let lower = "or lower [dataplane] workers";
    if port.starts_with("net_af_packet") {
        format!("add qpairs={workers} to its vdev arguments ({lower})")
    } else if port.starts_with("net_memif") {
        format!("the memif peer must offer {workers} queue pairs ({lower})")
    } else if port.starts_with("net_tap") {
        format!("a net_tap port opens one queue of its multi-queue TAP per worker, up to that limit ({lower})")
    } else if port.starts_with("net_") {
        format!("this virtual device cannot give more queues: use workers = 1 with it ({lower})")
    } else {
        format!("the NIC has fewer queues than workers ({lower})")
    }
}

/// How flows reach their owner with `workers` workers: software hand-off whenever there are
/// several (NIC steering is not programmed yet, docs/design.md §6.2).
fn steering(workers: usize) -> Steering {
    if workers > 1 {
        Steering::SoftwareHandoff
    } else {
        Steering::SingleQueue
    }
}

/// Whether port `port` can take a tx queue for the slow path beside the workers' pairs (1) or
/// not (0). A memif peer accepts only as many client rings as it configured itself (pktgen,
/// testpmd and VPP by default: one per worker); `net_tap` opens one TAP queue per rx/tx pair and
/// refuses unequal counts. Those share a worker's queue with the slow path instead.
fn slow_queue_extra(port: &str) -> u16 {
    if port.starts_with("net_memif") || port.starts_with("net_tap") {
        0
    } else {
        1
    }
}

/// Opens interface `ifc`'s port: one rx queue per worker, one tx queue per worker plus one for
/// the slow path when the device has it; returns the port and whether it got that queue.
fn open_port(
    eal: &Eal,
    pool: &Mempool,
    ifc: &Interface,
    profile: &Profile,
    workers: usize,
) -> Result<(Port, bool), BoxError> {
    let mut pc = profile
        .ports
        .iter()
        .find(|p| p.name == ifc.port)
        .map(PortConfig::from)
        .unwrap_or_default();
    let (max_rx, max_tx) = port_queue_limits(eal, &ifc.port)?;
    if usize::from(max_rx) < workers || usize::from(max_tx) < workers {
        return Err(format!(
            "interface {}: port {} can give {max_rx} rx / {max_tx} tx queues, [dataplane] workers = {workers} needs one queue pair per worker: {}",
            ifc.name,
            ifc.port,
            queue_hint(&ifc.port, workers)
        )
        .into());
    }
    pc.rx_queues = workers as u16;
    pc.tx_queues = (workers as u16 + slow_queue_extra(&ifc.port)).min(max_tx);
    if ifc.mtu > 0 && ifc.mtu != 1500 {
        pc.mtu = u16::try_from(ifc.mtu).ok();
    }
    let dedicated = usize::from(pc.tx_queues) > workers;
    let port = Port::open(eal, &ifc.port, &pc, pool)?;
    tracing::info!(port = %ifc.port, mac = %port.mac_addr()?, link = %port.link()?, rx_queues = pc.rx_queues, tx_queues = pc.tx_queues, "port up");
    Ok((port, dedicated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_what_to_change_per_device_kind() {
        assert!(queue_hint("net_af_packet0", 2).contains("qpairs=2"));
        assert!(queue_hint("net_memif0", 4).contains("offer 4 queue pairs"));
        assert!(queue_hint("net_tap0", 32).contains("multi-queue TAP per worker"));
        assert!(queue_hint("net_ring0", 2).contains("workers = 1"));
        assert_eq!(slow_queue_extra("net_tap0"), 0);
        assert_eq!(slow_queue_extra("net_memif0"), 0);
        assert_eq!(slow_queue_extra("net_af_packet0"), 1);
        assert!(queue_hint("0000:3b:00.0", 8).contains("NIC"));
        assert_eq!(steering(1), Steering::SingleQueue);
        assert_eq!(steering(2), Steering::SoftwareHandoff);
    }
}
