//! Ethernet ports: lookup by name, configure/start/stop/close, queues, link, MAC and counters.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use super::eal::Eal;
use super::error::DpdkError;
use super::link::BurstGate;
use super::mbuf::Burst;
use super::mempool::Mempool;
use super::profile::PortProfile;
use super::sys;
use crate::wire::MacAddr;

/// A DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// A queue index on a port (rx or tx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "queue {}", self.0)
    }
}

/// Link state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mb/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.up {
            return write!(f, "down");
        }
        let duplex = if self.full_duplex { "full" } else { "half" };
        write!(f, "up {} Mb/s {duplex}-duplex", self.speed_mbps)
    }
}

/// Port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device because rx queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive allocation failures (mempool empty).
    pub rx_nombuf: u64,
}

impl PortStats {
    /// Counter increase from `earlier` to `self` (wrapping).
    pub fn since(&self, earlier: &PortStats) -> PortStats {
        PortStats {
            ipackets: self.ipackets.wrapping_sub(earlier.ipackets),
            opackets: self.opackets.wrapping_sub(earlier.opackets),
            ibytes: self.ibytes.wrapping_sub(earlier.ibytes),
            obytes: self.obytes.wrapping_sub(earlier.obytes),
            imissed: self.imissed.wrapping_sub(earlier.imissed),
            ierrors: self.ierrors.wrapping_sub(earlier.ierrors),
            oerrors: self.oerrors.wrapping_sub(earlier.oerrors),
            rx_nombuf: self.rx_nombuf.wrapping_sub(earlier.rx_nombuf),
        }
    }
}

/// How to set up a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (RSS across them when > 1).
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// MTU, if it should be set.
    pub mtu: Option<u16>,
    /// Enable promiscuous mode (failure is only logged).
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            promiscuous: true,
        }
    }
}

impl From<&PortProfile> for PortConfig {
    fn from(p: &PortProfile) -> Self {
        Self {
            rx_queues: p.rx_queues,
            tx_queues: p.tx_queues,
            rx_descriptors: p.rx_descriptors,
            tx_descriptors: p.tx_descriptors,
            mtu: p.mtu,
            promiscuous: p.promiscuous,
        }
    }
}

/// What a device reports about itself (`rte_eth_dev_info`, the parts vipmux uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// PMD name, e.g. `net_ring`.
    pub driver: String,
    /// Maximum receive queues.
    pub max_rx_queues: u16,
    /// Maximum transmit queues.
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (`RTE_ETH_RSS_*` bits).
    pub flow_type_rss_offloads: u64,
}

/// RSS hash types vipmux asks for (IP, TCP, UDP), before masking by the device's.
pub fn rss_wanted() -> u64 {
    // SAFETY: reading immutable exported constants.
    unsafe { sys::VIPMUX_ETH_RSS_IP | sys::VIPMUX_ETH_RSS_TCP | sys::VIPMUX_ETH_RSS_UDP }
}

impl PortInfo {
    /// Whether the device can hash on the source or the destination endpoint alone (L3 and L4
    /// `SRC_ONLY`/`DST_ONLY`), what steering each flow to its owning worker in the NIC needs
    /// (docs/design.md §6.2).
    pub fn can_steer_by_endpoint(&self) -> bool {
        // SAFETY: reading an immutable exported constant.
        let want = unsafe { sys::VIPMUX_ETH_RSS_ENDPOINT_ONLY };
        self.flow_type_rss_offloads & want == want
    }
}

/// Finds a port by its DPDK device name.
pub fn port_by_name(_eal: &Eal, name: &str) -> Result<PortId, DpdkError> {
    let cname = CString::new(name)
        .map_err(|_| DpdkError::invalid("rte_eth_dev_get_port_by_name", name, "NUL in name"))?;
    let mut id = 0u16;
    // SAFETY: valid C string and out pointer; the EAL is initialised.
    let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if ret != 0 {
        return Err(DpdkError::from_code(
            "rte_eth_dev_get_port_by_name",
            format!("{name:?} (is the device in the EAL arguments?)"),
            ret,
        ));
    }
    Ok(PortId(id))
}

/// Number of ports DPDK probed.
pub fn port_count(_eal: &Eal) -> u16 {
    // SAFETY: plain getter after EAL init.
    unsafe { sys::rte_eth_dev_count_avail() }
}

fn check(ret: i32, call: &'static str, detail: impl FnOnce() -> String) -> Result<(), DpdkError> {
    if ret < 0 {
        Err(DpdkError::from_code(call, detail(), ret))
    } else {
        Ok(())
    }
}

/// The most rx and tx queues the device named `name` supports (before configuring it).
pub fn port_queue_limits(eal: &Eal, name: &str) -> Result<(u16, u16), DpdkError> {
    let id = port_by_name(eal, name)?;
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid port id (just looked up) and out pointer to a properly sized struct.
    let ret = unsafe { sys::rte_eth_dev_info_get(id.0, &mut info) };
    check(ret, "rte_eth_dev_info_get", || name.to_owned())?;
    Ok((info.max_rx_queues, info.max_tx_queues))
}

/// A configured port. Stopped and closed on drop (or explicitly with `close`).
///
/// Queue handles borrow the port, so it cannot be stopped or closed while a worker still holds
/// one; each queue can be taken by one handle at a time.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    name: String,
    rx_taken: Box<[AtomicBool]>,
    tx_taken: Box<[AtomicBool]>,
    rss_hf: u64,
    started: bool,
    closed: bool,
    /// memif ports only: keeps bursts out while the link is down (docs/design.md §5.1).
    gate: Option<BurstGate>,
}

impl Port {
    /// Looks the port up by name, configures `config.rx_queues`/`tx_queues` queues receiving into
    /// `pool`, and starts it. RSS (IP/TCP/UDP masked by the device's hash types) is enabled only
    /// with more than one rx queue.
    pub fn open(
        eal: &Eal,
        name: &str,
        config: &PortConfig,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let mut port = Port::configured(eal, name, config, pool)?;
        port.start()?;
        Ok(port)
    }

    /// `open` without the start: the queues are set up (every allocation the device makes for
    /// them done), the device is stopped until `start`. A memif client maps its zero-copy
    /// regions from DPDK's interrupt thread inside a memory-segment walk, which deadlocks
    /// against a heap growth on another thread (DPDK 22.11), so a process configures every
    /// port before it starts a memif one (docs/design.md §5.1).
    pub fn configured(
        eal: &Eal,
        name: &str,
        config: &PortConfig,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let id = port_by_name(eal, name)?;
        let mut port = Port {
            id,
            name: name.to_owned(),
            rx_taken: (0..config.rx_queues)
                .map(|_| AtomicBool::new(false))
                .collect(),
            tx_taken: (0..config.tx_queues)
                .map(|_| AtomicBool::new(false))
                .collect(),
            rss_hf: 0,
            started: false,
            closed: false,
            gate: None,
        };
        port.configure(config, pool)?;
        if port.info()?.driver == "net_memif" {
            port.gate = Some(BurstGate::new(config.rx_queues, config.tx_queues));
        }
        Ok(port)
    }

    fn raw_info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out pointer to a properly sized struct.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id.0, &mut info) };
        check(ret, "rte_eth_dev_info_get", || self.name.clone())?;
        Ok(info)
    }

    /// What the device reports about itself.
    pub fn info(&self) -> Result<PortInfo, DpdkError> {
        let info = self.raw_info()?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: DPDK fills driver_name with a static NUL-terminated string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            flow_type_rss_offloads: info.flow_type_rss_offloads,
        })
    }

    fn configure(&mut self, config: &PortConfig, pool: &Mempool) -> Result<(), DpdkError> {
        let name = self.name.clone();
        let info = self.raw_info()?;
        if config.rx_queues == 0 || config.rx_queues > info.max_rx_queues {
            return Err(DpdkError::invalid(
                "rte_eth_dev_configure",
                name,
                format!(
                    "{} rx queues asked, device supports 1..={}",
                    config.rx_queues, info.max_rx_queues
                ),
            ));
        }
        if config.tx_queues == 0 || config.tx_queues > info.max_tx_queues {
            return Err(DpdkError::invalid(
                "rte_eth_dev_configure",
                name,
                format!(
                    "{} tx queues asked, device supports 1..={}",
                    config.tx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        if config.rx_queues > 1 {
            let hf = rss_wanted() & info.flow_type_rss_offloads;
            if hf == 0 {
                // Its queues are filled by whatever the device does (a memif peer's rings, the
                // kernel's af_packet fanout, net_tap's queues); the workers hand frames to each
                // flow's owner (docs/design.md §6.2).
                tracing::info!(port = %name, "device advertises no RSS hash types: its rx queues are filled by the device's own spreading");
            } else {
                conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
            self.rss_hf = hf;
        }
        if let Some(mtu) = config.mtu {
            conf.rxmode.mtu = u32::from(mtu);
        }
        // SAFETY: valid port id and a fully initialised configuration struct.
        let ret = unsafe {
            sys::rte_eth_dev_configure(self.id.0, config.rx_queues, config.tx_queues, &conf)
        };
        check(ret, "rte_eth_dev_configure", || {
            format!(
                "{name}: {} rx / {} tx queues, rss_hf {:#x}",
                config.rx_queues, config.tx_queues, self.rss_hf
            )
        })?;
        let (mut nb_rx, mut nb_tx) = (config.rx_descriptors, config.tx_descriptors);
        // SAFETY: valid port id and out pointers.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut nb_rx, &mut nb_tx) };
        check(ret, "rte_eth_dev_adjust_nb_rx_tx_desc", || name.clone())?;
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id.0) };
        // SOCKET_ID_ANY (-1) is passed as the unsigned value DPDK expects.
        let socket = socket as u32;
        for q in 0..config.rx_queues {
            // SAFETY: configured port, queue index below the configured count, default rx conf
            // (NULL) and a pool that lives for the whole process.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id.0,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(ret, "rte_eth_rx_queue_setup", || {
                format!("{name} queue {q}, {nb_rx} descriptors")
            })?;
        }
        for q in 0..config.tx_queues {
            // SAFETY: configured port, queue index below the configured count, default tx conf.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(self.id.0, q, nb_tx, socket, std::ptr::null())
            };
            check(ret, "rte_eth_tx_queue_setup", || {
                format!("{name} queue {q}, {nb_tx} descriptors")
            })?;
        }
        if config.promiscuous {
            // SAFETY: valid port id.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(self.id.0) };
            if ret < 0 {
                let e = DpdkError::from_code("rte_eth_promiscuous_enable", name.clone(), ret);
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    /// Starts the port (done by `open`; needed again after `stop`).
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.started {
            return Ok(());
        }
        // SAFETY: valid, configured port; `&mut self` excludes concurrent queue use.
        let ret = unsafe { sys::rte_eth_dev_start(self.id.0) };
        check(ret, "rte_eth_dev_start", || self.name.clone())?;
        self.started = true;
        Ok(())
    }

    /// Stops the port; no queue handle can exist meanwhile (they borrow the port).
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: valid port; `&mut self` proves no queue handle is polling it.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id.0) };
        check(ret, "rte_eth_dev_stop", || self.name.clone())?;
        self.started = false;
        Ok(())
    }

    /// Stops and closes the port, releasing the device.
    pub fn close(mut self) -> Result<(), DpdkError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), DpdkError> {
        if self.closed {
            return Ok(());
        }
        self.stop()?;
        self.closed = true;
        // SAFETY: the port is stopped and no queue handle exists; it is not used after this.
        let ret = unsafe { sys::rte_eth_dev_close(self.id.0) };
        check(ret, "rte_eth_dev_close", || self.name.clone())
    }

    /// The burst gate of a memif port (`None` on other devices).
    pub fn gate(&self) -> Option<&BurstGate> {
        self.gate.as_ref()
    }

    /// Runs `burst` (an rx or tx burst of the queue at gate slot `slot`) unless the gate is
    /// closed (then 0).
    #[inline]
    fn through_gate(&self, slot: usize, burst: impl FnOnce() -> usize) -> usize {
        let Some(gate) = &self.gate else {
            return burst();
        };
        if !gate.enter(slot) {
            return 0;
        }
        let n = burst();
        gate.leave(slot);
        n
    }

    /// Stops and starts a port whose gate is closed (a memif client whose peer went away: the
    /// start connects again). Does nothing while the gate is open or on a port without one;
    /// a start that fails (no server yet) leaves the device stopped until the next try.
    pub fn restart_closed(&self) {
        if self.gate.as_ref().is_none_or(|g| g.is_open()) {
            return;
        }
        // SAFETY: valid port id; the gate is closed and drained, so no queue handle is inside a
        // burst and none enters one until the gate opens again.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id.0) };
        if ret < 0 {
            tracing::debug!(port = %self.name, ret, "restart: stop failed");
        }
        // SAFETY: as above; a configured port.
        let ret = unsafe { sys::rte_eth_dev_start(self.id.0) };
        if ret < 0 {
            tracing::debug!(port = %self.name, ret, "restart: start failed (peer not back yet)");
        }
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The DPDK device name the port was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of rx queues configured.
    pub fn rx_queue_count(&self) -> u16 {
        self.rx_taken.len() as u16
    }

    /// Number of tx queues configured.
    pub fn tx_queue_count(&self) -> u16 {
        self.tx_taken.len() as u16
    }

    /// RSS hash types in use (0: no RSS).
    pub fn rss_hash_types(&self) -> u64 {
        self.rss_hf
    }

    /// Takes the handle of rx queue `queue`; fails if out of range or already taken.
    pub fn rx_queue(&self, queue: QueueId) -> Result<RxQueue<'_>, DpdkError> {
        take(&self.rx_taken, queue, &self.name, "rx")?;
        Ok(RxQueue { port: self, queue })
    }

    /// Takes the handle of tx queue `queue`; fails if out of range or already taken.
    pub fn tx_queue(&self, queue: QueueId) -> Result<TxQueue<'_>, DpdkError> {
        take(&self.tx_taken, queue, &self.name, "tx")?;
        Ok(TxQueue {
            port: self,
            queue,
            dropped: 0,
        })
    }

    /// Current link state (without waiting).
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port id and out pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id.0, &mut link) };
        check(ret, "rte_eth_link_get_nowait", || self.name.clone())?;
        Ok(LinkStatus {
            up: u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<MacAddr, DpdkError> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id and out pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id.0, &mut addr) };
        check(ret, "rte_eth_macaddr_get", || self.name.clone())?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// The port's counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port id and out pointer; reading counters concurrently with the data
        // path is supported by the PMDs (racy values, no memory unsafety).
        let ret = unsafe { sys::rte_eth_stats_get(self.id.0, &mut s) };
        check(ret, "rte_eth_stats_get", || self.name.clone())?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.close_inner() {
            tracing::warn!("closing {}: {e}", self.name);
        }
    }
}

fn take(flags: &[AtomicBool], queue: QueueId, name: &str, kind: &str) -> Result<(), DpdkError> {
    let flag = flags.get(usize::from(queue.0)).ok_or_else(|| {
        DpdkError::invalid(
            "queue",
            format!("{name} {kind} {queue}"),
            format!("port has {} {kind} queues", flags.len()),
        )
    })?;
    if flag.swap(true, Ordering::AcqRel) {
        return Err(DpdkError::invalid(
            "queue",
            format!("{name} {kind} {queue}"),
            "queue already taken",
        ));
    }
    Ok(())
}

/// Exclusive handle to one rx queue of a started port (`Send`: give it to a worker thread).
#[derive(Debug)]
pub struct RxQueue<'p> {
    port: &'p Port,
    queue: QueueId,
}

impl RxQueue<'_> {
    /// Receives into the free slots of `burst`; returns how many mbufs were added.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let port = self.port;
        port.through_gate(usize::from(self.queue.0), || self.rx_burst_inner(burst))
    }

    #[inline]
    fn rx_burst_inner(&mut self, burst: &mut Burst) -> usize {
        let (slots, room) = burst.free_slots();
        // SAFETY: `slots` has `room` (<= 32) free pointer slots; this handle is the only user of
        // the queue (taken once, `&mut self`), and the port is started and cannot be stopped
        // while this handle borrows it. DPDK writes `n` owned mbufs into the slots.
        unsafe {
            let n = usize::from(sys::vipmux_rx_burst(
                self.port.id.0,
                self.queue.0,
                slots,
                room as u16,
            ));
            burst.commit(n);
            n
        }
    }

    /// The port.
    pub fn port(&self) -> &Port {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> QueueId {
        self.queue
    }
}

impl Drop for RxQueue<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.port.rx_taken.get(usize::from(self.queue.0)) {
            f.store(false, Ordering::Release);
        }
    }
}

/// Result of one `tx_burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOutcome {
    /// Mbufs handed to the device.
    pub sent: usize,
    /// Mbufs the device refused (freed by `tx_burst`, kept by `tx_burst_keep`).
    pub unsent: usize,
}

/// Exclusive handle to one tx queue of a started port (`Send`: give it to a worker thread).
#[derive(Debug)]
pub struct TxQueue<'p> {
    port: &'p Port,
    queue: QueueId,
    dropped: u64,
}

impl TxQueue<'_> {
    #[inline]
    fn send(&mut self, burst: &mut Burst) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let port = self.port;
        let slot = usize::from(port.rx_queue_count()) + usize::from(self.queue.0);
        port.through_gate(slot, || self.send_inner(burst))
    }

    #[inline]
    fn send_inner(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: the first `n` slots hold owned mbufs; the device takes ownership of the first
        // `sent` of them, which `consumed` then forgets. Exclusive queue as in `RxQueue`.
        unsafe {
            let sent = usize::from(sys::vipmux_tx_burst(
                self.port.id.0,
                self.queue.0,
                burst.live_ptr(),
                n as u16,
            ));
            burst.consumed(sent);
            sent
        }
    }

    /// Sends the mbufs of `burst`; what the device refuses is freed and counted in `dropped`.
    /// The burst is empty afterwards.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> TxOutcome {
        let sent = self.send(burst);
        let unsent = burst.len();
        if unsent > 0 {
            self.dropped += unsent as u64;
            burst.clear();
        }
        TxOutcome { sent, unsent }
    }

    /// Sends the mbufs of `burst`; what the device refuses stays in `burst` (at the front) for
    /// a retry.
    #[inline]
    pub fn tx_burst_keep(&mut self, burst: &mut Burst) -> TxOutcome {
        let sent = self.send(burst);
        TxOutcome {
            sent,
            unsent: burst.len(),
        }
    }

    /// True while the port's burst gate is closed (a memif port whose link is down): every send
    /// is refused until the link comes back. Always false on ports without a gate.
    #[inline]
    pub fn link_closed(&self) -> bool {
        self.port.gate.as_ref().is_some_and(|g| !g.is_open())
    }

    /// Mbufs freed by `tx_burst` because the device refused them, since this handle was taken.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The port.
    pub fn port(&self) -> &Port {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> QueueId {
        self.queue
    }
}

impl Drop for TxQueue<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.port.tx_taken.get(usize::from(self.queue.0)) {
            f.store(false, Ordering::Release);
        }
    }
}

/// The DPDK name of a port id (for ports not opened by name).
pub fn port_name(_eal: &Eal, id: PortId) -> Result<String, DpdkError> {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: the buffer has RTE_ETH_NAME_MAX_LEN bytes as the API requires.
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(id.0, buf.as_mut_ptr()) };
    check(ret, "rte_eth_dev_get_name_by_port", || id.to_string())?;
    // SAFETY: on success DPDK wrote a NUL-terminated name into the buffer.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_since_subtracts() {
        let a = PortStats {
            ipackets: 10,
            opackets: 5,
            ..Default::default()
        };
        let b = PortStats {
            ipackets: 25,
            opackets: 6,
            ..Default::default()
        };
        assert_eq!(b.since(&a).ipackets, 15);
        assert_eq!(b.since(&a).opackets, 1);
    }

    #[test]
    fn endpoint_steering_needs_all_four_modifiers() {
        let info = |hf: u64| PortInfo {
            driver: "test".into(),
            max_rx_queues: 4,
            max_tx_queues: 4,
            flow_type_rss_offloads: hf,
        };
        // The modifiers are the four top bits of the RSS type mask (L3/L4, SRC_ONLY/DST_ONLY).
        let four = 0xf << 60;
        assert!(info(four | rss_wanted()).can_steer_by_endpoint());
        assert!(!info(rss_wanted()).can_steer_by_endpoint());
        assert!(!info(1 << 63 | 1 << 61).can_steer_by_endpoint());
    }

    #[test]
    fn mac_display() {
        assert_eq!(
            MacAddr([0x02, 0, 0, 0xab, 0xcd, 0xef]).to_string(),
            "02:00:00:ab:cd:ef"
        );
    }
}
