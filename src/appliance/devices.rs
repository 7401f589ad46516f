//! The appliance's devices: one DPDK port per interface (with a slow-path tx queue when the
//! device allows it) and one `net_tap` port per interface, whose kernel side is the interface's
//! exception port.

use crate::balance::steer::{steer_plan, SteerPlan};
use crate::balance::{Health, Snapshot};
use crate::config::{Config, Interface};
use crate::dataplane::EgressPort;
use crate::dpdk::{
    port_queue_limits, Eal, FlowRules, Mempool, Port, PortConfig, Profile, TAP_RX_DESCRIPTORS,
};
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
    /// Per physical port in NIC steering: the flow rules programmed at start.
    flows: Vec<FlowRules>,
}

impl Devices {
    /// Opens every interface's port (`workers` rx queues, `workers + 1` tx queues where the
    /// device allows) and its TAP port. Every port is configured and every TAP started before
    /// the first physical port starts: a zero-copy memif client maps its regions from DPDK's
    /// interrupt thread as soon as it starts, inside a memory-segment walk that deadlocks
    /// against this thread creating a mempool (net_tap creates one per tx queue; docs/design.md
    /// §5.1).
    pub(super) fn open(
        eal: &Eal,
        pool: &Mempool,
        config: &Config,
        profile: &Profile,
        workers: usize,
    ) -> Result<Devices, BoxError> {
        let mut ports = Vec::new();
        let mut slow_queue = Vec::new();
        for ifc in &config.interfaces {
            let (port, dedicated) = configure_port(eal, pool, ifc, profile, workers)?;
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
        let mut queues = Vec::new();
        let mut flows = Vec::new();
        let snapshot = Snapshot::compile(config, &Health::all_up(config));
        for (ifc, port) in config.interfaces.iter().zip(&mut ports) {
            port.start()?;
            tracing::info!(port = %ifc.port, mac = %port.mac_addr()?, link = %port.link()?, rx_queues = port.rx_queue_count(), tx_queues = port.tx_queue_count(), "port up");
            let (steering, note, rules) = program_steering(port, &snapshot, workers);
            flows.extend(rules);
            queues.push(PortQueues {
                port: ifc.port.clone(),
                rx_queues: port.rx_queue_count(),
                steering,
                note,
            });
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
            flows,
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
            let ipv6 = ifc.address6.map(|a| kernel::TapIpv6 {
                addr: a.addr,
                prefix_len: a.prefix_len,
                gateway: ifc.gateway6,
            });
            kernel::configure_tap(
                &taps[i],
                self.infos[i].mac,
                ifc.address.addr,
                ifc.address.prefix_len,
                ifc.gateway,
                ipv6.as_ref(),
            )
            .map_err(|e| format!("configuring the kernel TAP of interface {}: {e}", ifc.name))?;
            tracing::info!(interface = %ifc.name, tap = %taps[i], address = %ifc.address, "kernel exception port up");
        }
        Ok(())
    }

    /// Destroys the flow rules, then stops and closes every port (physical first, then the
    /// TAPs); failures are logged.
    pub(super) fn close(mut self) {
        for rules in &mut self.flows {
            if let Err(e) = rules.destroy_all() {
                tracing::warn!("{e}");
            }
        }
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

/// How flows reach their owner on `port` with `workers` workers (docs/design.md §6.2), why,
/// and the rules programmed; logged once, here (a driver's refusal as a warning).
fn program_steering(
    port: &Port,
    snapshot: &Snapshot,
    workers: usize,
) -> (Steering, String, Option<FlowRules>) {
    let capable = workers > 1 && port.info().is_ok_and(|i| i.can_steer_by_endpoint());
    let (steering, note, rules) = steering_mode(workers, capable, snapshot, |plan| {
        FlowRules::program(port, plan)
    });
    if note.starts_with(REFUSED) || note.contains(OUTBOUND_REFUSED) {
        tracing::warn!(port = %port.name(), steering = steering.name(), "NIC steering: {note}");
    } else {
        tracing::info!(port = %port.name(), steering = steering.name(), "{note}");
    }
    (steering, note, rules)
}

/// The start of the note of a port whose driver refused a flow rule.
const REFUSED: &str = "the device refused a flow rule";

/// In the note of a port whose driver refused the outbound SNAT group.
const OUTBOUND_REFUSED: &str = "handed over in software:";

/// The steering of a port with `workers` workers whose device can (`capable`) or cannot hash
/// on the source or destination endpoint alone, with `program` creating the rules of a plan
/// (and saying why its outbound group was left out, if it was): single queue with one worker;
/// NIC steering when the device can and takes the frontend and NAT-reply rules of
/// `snapshot`'s plan; else software hand-off. Returns the mode, why, and what `program` gave.
fn steering_mode<R, E: std::fmt::Display>(
    workers: usize,
    capable: bool,
    snapshot: &Snapshot,
    program: impl FnOnce(&SteerPlan) -> Result<(R, Option<E>), E>,
) -> (Steering, String, Option<R>) {
    if workers <= 1 {
        return (Steering::SingleQueue, "one worker".into(), None);
    }
    if !capable {
        let why = "the device cannot hash on the source or the destination endpoint alone";
        return (Steering::SoftwareHandoff, why.into(), None);
    }
    let plan = match steer_plan(snapshot, workers) {
        Ok(plan) => plan,
        Err(why) => return (Steering::SoftwareHandoff, why.to_string(), None),
    };
    match program(&plan) {
        Ok((rules, None)) => {
            let n = plan.rules.len() + plan.outbound.len();
            let note = format!("{n} flow rules from the start configuration");
            (Steering::NicSteering, note, Some(rules))
        }
        Ok((rules, Some(e))) => {
            let note = format!(
                "{} flow rules from the start configuration; SNAT replies and members' outbound connections {OUTBOUND_REFUSED} {e}",
                plan.rules.len()
            );
            (Steering::NicSteering, note, Some(rules))
        }
        Err(e) => (Steering::SoftwareHandoff, format!("{REFUSED}: {e}"), None),
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

/// Configures interface `ifc`'s port (not started): one rx queue per worker, one tx queue per
/// worker plus one for the slow path when the device has it; returns the port and whether it
/// got that queue.
fn configure_port(
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
    let port = Port::configured(eal, &ifc.port, &pc, pool)?;
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
    }

    fn example() -> Snapshot {
        let path = format!("{}/examples/spec-example.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = Config::load(path).expect("config");
        Snapshot::compile(&cfg, &Health::all_up(&cfg))
    }

    /// Programming that must not be reached.
    fn unreachable_program(_: &SteerPlan) -> Result<((), Option<String>), String> {
        panic!("no rule may be programmed")
    }

    #[test]
    fn each_port_runs_the_mode_it_really_got_and_says_why() {
        let snap = example();
        let (mode, note, _) = steering_mode(1, true, &snap, unreachable_program);
        assert_eq!((mode, note.as_str()), (Steering::SingleQueue, "one worker"));
        let (mode, note, _) = steering_mode(2, false, &snap, unreachable_program);
        assert_eq!(mode, Steering::SoftwareHandoff);
        assert!(note.contains("cannot hash on the source"), "{note}");
        let (mode, note, _) = steering_mode(3, true, &snap, unreachable_program);
        assert_eq!(mode, Steering::SoftwareHandoff);
        assert!(note.contains("3 workers is not a power of two"), "{note}");
        // The driver refuses a rule: the fallback carries its message.
        let (mode, note, rules) = steering_mode(2, true, &snap, |_| {
            Err::<((), _), _>("rte_flow_validate failed (0000:3b:00.0): unsupported action")
        });
        assert_eq!((mode, rules), (Steering::SoftwareHandoff, None));
        assert_eq!(
            note,
            "the device refused a flow rule: rte_flow_validate failed (0000:3b:00.0): unsupported action"
        );
        // Every rule taken: NIC steering with the plan's rules over four queues.
        let (mode, note, rules) = steering_mode(4, true, &snap, |plan| {
            assert_eq!(plan.queues(), vec![0, 1, 2, 3]);
            Ok::<_, String>((plan.rules.len() + plan.outbound.len(), None))
        });
        assert_eq!(mode, Steering::NicSteering);
        assert_eq!(mode.name(), "nic-steering");
        let n = rules.expect("rules");
        assert_eq!(note, format!("{n} flow rules from the start configuration"));
        // The outbound group refused (no rule priorities): the rest still steers.
        let (mode, note, _) = steering_mode(2, true, &snap, |plan| {
            Ok::<_, String>((plan.rules.len(), Some("priorities not supported".into())))
        });
        assert_eq!(mode, Steering::NicSteering);
        assert!(
            note.ends_with("SNAT replies and members' outbound connections handed over in software: priorities not supported"),
            "{note}"
        );
    }
}
