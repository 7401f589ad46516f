//! The slow-path control thread: exception path, ARP/neighbours, probes, ICMP, fragments, reload.
//!
//! This module holds the pure, I/O-free decision logic the slow-path thread runs on frames the
//! workers hand over ([`Exception`] says why) and the time the thread passes in ([`Nanos`] of a
//! monotonic clock). [`SlowPath::handle`] decides the fate of one frame as one [`Action`]: send
//! it back rewritten in place, send a new frame, pass it to the kernel TAP of its port, deliver
//! it to a load-balanced flow (ICMP errors), or drop it with a [`SlowPathDrop`].
//!
//! * [`ratelimit`]: token bucket on a virtual clock (all originated ICMP, rate-limited logs).
//! * [`neighbours`]: address -> MAC table of members, gateways and on-link hosts (one per family,
//!   the same state machine), with active resolution, refresh with backoff; the slow path
//!   publishes both as one immutable [`NeighbourMap`] for workers.
//! * [`arp`]: answers ARP for frontends, passes ARP for the appliance's own address to the
//!   kernel, learns neighbours, builds gratuitous ARPs.
//! * [`icmp`]: echo for frontends, ICMP errors to flows, originated errors (fragmentation
//!   needed, time exceeded); [`icmp6`]: the same for ICMPv6 (echo, Packet Too Big, Time
//!   Exceeded).
//! * [`nd`]: IPv6 Neighbour Discovery, IPv6's [`arp`]: answers solicitations for IPv6 frontends,
//!   passes ND for the interface's `address6` to the kernel, learns neighbours, builds
//!   unsolicited advertisements and solicitations.
//! * [`probe`]: TCP/HTTP/HTTPS health probes of all members on one thread.
//! * [`fragments`]: counts, logs (rate-limited) and drops IP fragments.
//!
//! Each call returns exactly one [`Action`]: every frame has exactly one fate, so no array of
//! actions is needed, and side effects (learned neighbours, counters) live in [`SlowPath`].

pub mod arp;
pub mod fragments;
pub mod icmp;
pub mod icmp6;
pub mod nd;
pub mod neighbours;
pub mod probe;
pub mod ratelimit;

pub use icmp::{FlowTuple, IcmpErrorInfo, IcmpSide};
pub use neighbours::{
    ArpRequestToSend, Learned, NeighbourAddr, NeighbourState, NeighbourTable, NeighbourTimers,
    NsToSend, RequestToSend,
};
pub use ratelimit::{LogLimiter, Nanos, RateSpec, TokenBucket};

use crate::dataplane::reason::reasons;
use crate::dataplane::Exception;
use crate::dataplane::NeighbourMap;
use crate::wire::{ethertype, EthernetFrame, MacAddr};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::dataplane::IfIndex;

/// One interface (port) of the appliance as the slow path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPathInterface {
    /// Configured name (for logs).
    pub name: String,
    /// The port's MAC address.
    pub mac: MacAddr,
    /// The appliance's own address on this port.
    pub addr: Ipv4Addr,
    /// Prefix length of `addr`'s subnet.
    pub prefix_len: u8,
    /// Default gateway reached through this port, if any.
    pub gateway: Option<Ipv4Addr>,
    /// 802.1Q TCI to tag originated frames with (ARP requests, gratuitous ARPs), if tagged.
    pub vlan: Option<u16>,
    /// The appliance's own IPv6 address on this port (`address6`), if any.
    pub addr6: Option<Ipv6Addr>,
    /// Prefix length of `addr6`'s subnet.
    pub prefix6_len: u8,
    /// IPv6 default gateway reached through this port (`gateway6`), if any.
    pub gateway6: Option<Ipv6Addr>,
}

impl SlowPathInterface {
    /// An untagged interface.
    pub fn new(
        name: &str,
        mac: MacAddr,
        addr: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Self {
        SlowPathInterface {
            name: name.to_string(),
            mac,
            addr,
            prefix_len,
            gateway,
            vlan: None,
            addr6: None,
            prefix6_len: 0,
            gateway6: None,
        }
    }

    /// The same interface with the IPv6 address `addr6`/`prefix6_len` and IPv6 gateway.
    pub fn with_ipv6(
        mut self,
        addr6: Ipv6Addr,
        prefix6_len: u8,
        gateway6: Option<Ipv6Addr>,
    ) -> Self {
        self.addr6 = Some(addr6);
        self.prefix6_len = prefix6_len.min(128);
        self.gateway6 = gateway6;
        self
    }

    /// True when `ip` is on-link over IPv6: in `addr6`'s prefix, or link-local (fe80::/10).
    /// Nothing is on-link without `addr6`.
    pub fn on_link6(&self, ip: Ipv6Addr) -> bool {
        let Some(own) = self.addr6 else {
            return false;
        };
        let mask = match self.prefix6_len {
            0 => 0,
            p => u128::MAX << (128 - u32::from(p.min(128))),
        };
        nd::is_link_local(ip) || u128::from(ip) & mask == u128::from(own) & mask
    }

    /// True when `ip` can be an IPv6 neighbour on this interface: on-link, not our own address,
    /// not unspecified, loopback or multicast.
    pub fn is_neighbour_addr6(&self, ip: Ipv6Addr) -> bool {
        self.on_link6(ip)
            && Some(ip) != self.addr6
            && !ip.is_unspecified()
            && !ip.is_loopback()
            && !ip.is_multicast()
    }

    /// The IPv6 next hop toward `dst`: `dst` if on-link, else the IPv6 gateway.
    pub fn next_hop6(&self, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        if self.on_link6(dst) {
            Some(dst)
        } else {
            self.gateway6
        }
    }

    /// The subnet mask.
    pub fn netmask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    /// True when `ip` is in this interface's subnet.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        let m = self.netmask();
        u32::from(ip) & m == u32::from(self.addr) & m
    }

    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.netmask())
    }

    /// True when `ip` can be a neighbour on this interface: on-link, not the network or
    /// broadcast address (for prefixes up to /30), not our own address, not 0.0.0.0.
    pub fn is_neighbour_addr(&self, ip: Ipv4Addr) -> bool {
        if !self.on_link(ip) || ip == self.addr || ip.is_unspecified() {
            return false;
        }
        if self.prefix_len <= 30 {
            let m = self.netmask();
            let host = u32::from(ip) & !m;
            if host == 0 || host == !m {
                return false;
            }
        }
        true
    }

    /// The next hop toward `dst`: `dst` if on-link, else the gateway.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.on_link(dst) {
            Some(dst)
        } else {
            self.gateway
        }
    }
}

/// A frontend (VIP) as the slow path needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowPathFrontend {
    /// The frontend address (IPv4 or IPv6).
    pub addr: IpAddr,
    /// Interface on which ARP (IPv4) or Neighbour Discovery (IPv6) for it is answered (and
    /// gratuitous ARP / unsolicited advertisements sent); `None` for a routed VIP, which is never
    /// answered: several MUXes may share its LAN.
    pub iface: Option<IfIndex>,
    /// True while at least one member of one of its rules is eligible (answers pings).
    pub any_member_up: bool,
}

/// The frontends, by address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontends {
    by_addr: HashMap<IpAddr, SlowPathFrontend>,
}

impl Frontends {
    /// The set of `frontends` (a later duplicate address replaces an earlier one).
    pub fn new<I: IntoIterator<Item = SlowPathFrontend>>(frontends: I) -> Self {
        Frontends {
            by_addr: frontends.into_iter().map(|f| (f.addr, f)).collect(),
        }
    }
    /// The frontend at `addr`.
    pub fn get(&self, addr: impl Into<IpAddr>) -> Option<&SlowPathFrontend> {
        self.by_addr.get(&addr.into())
    }
    /// Sets whether `addr` has an eligible member; false if no such frontend.
    pub fn set_up(&mut self, addr: impl Into<IpAddr>, up: bool) -> bool {
        match self.by_addr.get_mut(&addr.into()) {
            Some(f) => {
                f.any_member_up = up;
                true
            }
            None => false,
        }
    }
    /// The frontends answered on `iface` (both families), sorted by address.
    pub fn on_iface(&self, iface: IfIndex) -> Vec<SlowPathFrontend> {
        let mut v: Vec<_> = self
            .by_addr
            .values()
            .filter(|f| f.iface == Some(iface))
            .copied()
            .collect();
        v.sort_unstable_by_key(|f| f.addr);
        v
    }
    /// Number of frontends.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

reasons! {
    /// Why the slow path dropped a frame (one name and one counter each).
    pub enum SlowPathDrop {
        /// Not parsable as what the exception says (short, bad header, wrong ethertype).
        Malformed => "malformed",
        /// IPv4 header or ICMP checksum wrong.
        BadChecksum => "bad_checksum",
        /// Not for one of our addresses on that interface.
        NotForUs => "not_for_us",
        /// The interface index is unknown.
        UnknownInterface => "unknown_interface",
        /// Another host claims one of our addresses (logged, rate-limited).
        AddressConflict => "address_conflict",
        /// Our own frame came back (sender MAC is the port's).
        OwnFrame => "own_frame",
        /// An ARP operation, ICMP type or Neighbour Discovery message this appliance does not
        /// handle.
        Unsupported => "unsupported",
        /// An ICMP message or ARP reply we would have originated was over the rate limit.
        RateLimited => "rate_limited",
        /// No ICMP error may be sent about this packet (an ICMP error, a non-first fragment, a
        /// broadcast/multicast/invalid source or a broadcast/multicast destination).
        IcmpSuppressed => "icmp_suppressed",
        /// An IP fragment (the fragment policy: vipmux forwards no fragments).
        Fragment => "fragment",
        /// Too big for the egress MTU and DF clear: dropped without an ICMP error.
        TooBigNoDf => "too_big_no_df",
        /// An ICMP error whose quoted packet is not TCP/UDP of a load-balanced flow.
        NoFlow => "no_flow",
    }
}

/// The fate of one frame handed to [`SlowPath::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the input buffer, rewritten in place, cut to its first `len` bytes, out of `iface`
    /// (ARP reply for a frontend, ICMP echo reply).
    ReplyInPlace {
        /// Egress interface.
        iface: IfIndex,
        /// Length of the frame to send.
        len: usize,
    },
    /// Send `frame`, a new frame, out of `iface`; the input frame is dropped (ICMP errors the
    /// MUX originates).
    SendOnPort {
        /// Egress interface.
        iface: IfIndex,
        /// The whole Ethernet frame.
        frame: Vec<u8>,
    },
    /// Pass the input frame unchanged to the kernel TAP of `iface`.
    ToKernel {
        /// The interface whose TAP receives it.
        iface: IfIndex,
    },
    /// The input frame is an ICMP error about a load-balanced flow: look the flow up by `flow`
    /// and forward the error to that flow's backend (see [`IcmpSide`] for the orientation).
    DeliverToFlow {
        /// Ingress interface.
        iface: IfIndex,
        /// The flow's 5-tuple.
        flow: FlowTuple,
        /// Which way the error travels, and so how `flow` is oriented.
        side: IcmpSide,
        /// Type, code and MTU of the error.
        error: IcmpErrorInfo,
    },
    /// Drop the input frame.
    Drop(SlowPathDrop),
}

/// Counters of the slow path (plain integers, read by the control thread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlowPathCounters {
    /// Frames handled, all exceptions.
    pub handled: u64,
    /// ARP replies sent for frontends.
    pub arp_replies: u64,
    /// Neighbour advertisements sent for IPv6 frontends (answers to solicitations).
    pub nd_adverts: u64,
    /// Frames passed to a kernel TAP.
    pub to_kernel: u64,
    /// ICMP and ICMPv6 echo replies sent for frontends.
    pub echo_replies: u64,
    /// Destination-unreachable (host; ICMPv6: address) sent for echo requests to frontends with
    /// no member up.
    pub unreachable_sent: u64,
    /// Fragmentation-needed errors (ICMPv6: Packet Too Big) sent.
    pub frag_needed_sent: u64,
    /// Time-exceeded errors (IPv4 and ICMPv6) sent.
    pub time_exceeded_sent: u64,
    /// ICMP errors handed back for delivery to a flow.
    pub icmp_errors_to_flows: u64,
    /// Neighbour MACs learned or changed from ARP or Neighbour Discovery.
    pub neighbours_learned: u64,
    /// Drops, indexed by [`SlowPathDrop::index`].
    pub drops: [u64; SlowPathDrop::COUNT],
}

impl SlowPathCounters {
    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: SlowPathDrop) -> u64 {
        self.drops[reason.index()]
    }
}

/// Everything [`SlowPath`] is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPathConfig {
    /// Interfaces, indexed by [`IfIndex`].
    pub interfaces: Vec<SlowPathInterface>,
    /// Frontends.
    pub frontends: Vec<SlowPathFrontend>,
    /// Rate of every ICMP message the MUX originates, echo replies included (default 1000/s,
    /// burst 50: Linux's `icmp_msgs_per_sec` / `icmp_msgs_burst`).
    pub icmp_rate: RateSpec,
    /// Rate of ARP replies and neighbour advertisements the MUX originates for its frontends
    /// (default 1000/s, burst 100, one bucket); requests over it are dropped `rate_limited`.
    pub arp_rate: RateSpec,
    /// Rate of slow-path log lines of one kind (default 1/s, burst 5).
    pub log_rate: RateSpec,
    /// Neighbour-table timers.
    pub neighbour_timers: NeighbourTimers,
}

impl SlowPathConfig {
    /// A configuration with default rates and timers.
    pub fn new(interfaces: Vec<SlowPathInterface>, frontends: Vec<SlowPathFrontend>) -> Self {
        SlowPathConfig {
            interfaces,
            frontends,
            icmp_rate: RateSpec::new(1000, 50),
            arp_rate: RateSpec::new(1000, 100),
            log_rate: RateSpec::new(1, 5),
            neighbour_timers: NeighbourTimers::default(),
        }
    }
}

/// The slow path's state: interfaces, frontends, neighbour tables, rate limiters, counters.
#[derive(Debug, Clone)]
pub struct SlowPath {
    interfaces: Vec<SlowPathInterface>,
    frontends: Frontends,
    neighbours: NeighbourTable,
    neighbours6: NeighbourTable<Ipv6Addr>,
    icmp_limiter: TokenBucket,
    arp_limiter: TokenBucket,
    conflict_log: LogLimiter,
    fragments: fragments::FragmentRejector,
    counters: SlowPathCounters,
}

impl SlowPath {
    /// A slow path for `cfg`, its clocks starting at `now`.
    pub fn new(cfg: SlowPathConfig, now: Nanos) -> Self {
        SlowPath {
            neighbours: NeighbourTable::new(cfg.interfaces.clone(), cfg.neighbour_timers),
            neighbours6: NeighbourTable::new(cfg.interfaces.clone(), cfg.neighbour_timers),
            interfaces: cfg.interfaces,
            frontends: Frontends::new(cfg.frontends),
            icmp_limiter: TokenBucket::new(cfg.icmp_rate, now),
            arp_limiter: TokenBucket::new(cfg.arp_rate, now),
            conflict_log: LogLimiter::new(cfg.log_rate, now),
            fragments: fragments::FragmentRejector::new(cfg.log_rate, now),
            counters: SlowPathCounters::default(),
        }
    }

    /// Applies a new configuration (reload), keeping learned neighbours still on-link, counters
    /// and rate-limiter credit. Wanted neighbours are set by the caller
    /// ([`NeighbourTable::set_wanted`] through [`SlowPath::neighbours_mut`]).
    pub fn reconfigure(&mut self, cfg: SlowPathConfig, now: Nanos) {
        self.neighbours.set_interfaces(cfg.interfaces.clone());
        self.neighbours6.set_interfaces(cfg.interfaces.clone());
        self.interfaces = cfg.interfaces;
        self.frontends = Frontends::new(cfg.frontends);
        self.icmp_limiter.set_spec(cfg.icmp_rate, now);
        self.arp_limiter.set_spec(cfg.arp_rate, now);
        self.conflict_log.set_spec(cfg.log_rate, now);
        self.fragments.set_log_rate(cfg.log_rate, now);
    }

    /// Records whether frontend `addr` has an eligible member (health change); false if unknown.
    pub fn set_frontend_up(&mut self, addr: impl Into<IpAddr>, up: bool) -> bool {
        self.frontends.set_up(addr, up)
    }

    /// The interfaces.
    pub fn interfaces(&self) -> &[SlowPathInterface] {
        &self.interfaces
    }

    /// The frontends.
    pub fn frontends(&self) -> &Frontends {
        &self.frontends
    }

    /// The neighbour table.
    pub fn neighbours(&self) -> &NeighbourTable {
        &self.neighbours
    }

    /// The neighbour table, to want addresses or feed the kernel's entries.
    pub fn neighbours_mut(&mut self) -> &mut NeighbourTable {
        &mut self.neighbours
    }

    /// The IPv6 neighbour table.
    pub fn neighbours6(&self) -> &NeighbourTable<Ipv6Addr> {
        &self.neighbours6
    }

    /// The IPv6 neighbour table, to want addresses.
    pub fn neighbours6_mut(&mut self) -> &mut NeighbourTable<Ipv6Addr> {
        &mut self.neighbours6
    }

    /// Generation of the neighbour map workers see: changes whenever either table's content
    /// does (each table's generation only moves forward, one step per change).
    pub fn neighbour_generation(&self) -> u64 {
        self.neighbours
            .generation()
            .wrapping_add(self.neighbours6.generation())
    }

    /// The neighbour map to publish to workers: both tables' resolved entries, at
    /// [`SlowPath::neighbour_generation`].
    pub fn neighbour_map(&self) -> NeighbourMap {
        NeighbourMap::from_entries(self.neighbours.published(), self.neighbour_generation())
            .with_ipv6(self.neighbours6.published())
    }

    /// The counters.
    pub fn counters(&self) -> &SlowPathCounters {
        &self.counters
    }

    /// Advances timers to `now` and returns the ARP requests to send
    /// ([`NeighbourTable::poll`]).
    pub fn poll(&mut self, now: Nanos) -> Vec<ArpRequestToSend> {
        self.neighbours.poll(now)
    }

    /// Advances both tables' timers to `now` and returns every request to send as a frame, with
    /// its interface: ARP requests, then Neighbour Solicitations.
    pub fn poll_frames(&mut self, now: Nanos) -> Vec<(IfIndex, Vec<u8>)> {
        let arp = self.neighbours.poll(now).into_iter();
        let arp = arp.map(|r| (r.iface, r.to_vec()));
        let ns = self.neighbours6.poll(now).into_iter();
        arp.chain(ns.map(|r| (r.iface, r.to_vec()))).collect()
    }

    /// Gratuitous ARPs announcing every IPv4 frontend answered on `iface` (at start and after a
    /// reload), one frame each.
    pub fn gratuitous_arps(&self, iface: IfIndex) -> Vec<Vec<u8>> {
        match self.interfaces.get(iface) {
            Some(i) => arp::gratuitous_arps(i, &self.frontends.on_iface(iface)),
            None => Vec::new(),
        }
    }

    /// Unsolicited neighbour advertisements announcing every IPv6 frontend answered on `iface`
    /// (at start and after a reload, as gratuitous ARPs), one frame each.
    pub fn unsolicited_adverts(&self, iface: IfIndex) -> Vec<Vec<u8>> {
        let Some(i) = self.interfaces.get(iface) else {
            return Vec::new();
        };
        let addrs: Vec<Ipv6Addr> = self
            .frontends
            .on_iface(iface)
            .iter()
            .filter_map(|f| match f.addr {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect();
        nd::unsolicited_adverts(i.mac, i.vlan, &addrs)
    }

    /// Decides the fate of `frame` (a whole Ethernet frame received on `iface`, handed over for
    /// `why`) at time `now`. May rewrite `frame` (only for [`Action::ReplyInPlace`]). Never
    /// panics, whatever the bytes.
    pub fn handle(
        &mut self,
        why: Exception,
        frame: &mut [u8],
        iface: IfIndex,
        now: Nanos,
    ) -> Action {
        self.counters.handled += 1;
        let action = match self.interfaces.get(iface) {
            None => Action::Drop(SlowPathDrop::UnknownInterface),
            Some(info) => match why {
                Exception::Arp | Exception::NeighbourDiscovery => {
                    self.handle_neighbour(why, frame, iface, now)
                }
                Exception::IcmpToFrontend | Exception::IcmpError if is_ipv6(frame) => {
                    icmp6::handle_icmp6(
                        frame,
                        iface,
                        info,
                        &self.frontends,
                        &mut self.icmp_limiter,
                        now,
                    )
                }
                Exception::IcmpToFrontend | Exception::IcmpError => icmp::handle_icmp(
                    frame,
                    iface,
                    info,
                    &self.frontends,
                    &mut self.icmp_limiter,
                    now,
                ),
                Exception::ToAppliance => Action::ToKernel { iface },
                Exception::Fragment => {
                    self.fragments.reject(frame, info, now);
                    Action::Drop(SlowPathDrop::Fragment)
                }
                Exception::TooBig { mtu } if is_ipv6(frame) => match info.addr6 {
                    Some(src) => icmp6::packet_too_big(
                        frame,
                        iface,
                        info.mac,
                        src,
                        mtu,
                        &mut self.icmp_limiter,
                        now,
                    ),
                    None => Action::Drop(SlowPathDrop::IcmpSuppressed),
                },
                Exception::TooBig { mtu } => {
                    icmp::frag_needed(frame, iface, info, mtu, &mut self.icmp_limiter, now)
                }
                Exception::TtlExceeded if is_ipv6(frame) => match info.addr6 {
                    Some(src) => icmp6::hop_limit_exceeded(
                        frame,
                        iface,
                        info.mac,
                        src,
                        &mut self.icmp_limiter,
                        now,
                    ),
                    None => Action::Drop(SlowPathDrop::IcmpSuppressed),
                },
                Exception::TtlExceeded => {
                    icmp::time_exceeded(frame, iface, info, &mut self.icmp_limiter, now)
                }
            },
        };
        self.count(why, &action);
        action
    }

    /// ARP (the IPv4 table) or Neighbour Discovery (the IPv6 table), for the frontends answered
    /// on `iface`; counts a learned neighbour, logs (rate-limited) an address conflict, and holds
    /// answers to the ARP/ND rate.
    fn handle_neighbour(
        &mut self,
        why: Exception,
        frame: &mut [u8],
        iface: IfIndex,
        now: Nanos,
    ) -> Action {
        let Some(info) = self.interfaces.get(iface) else {
            return Action::Drop(SlowPathDrop::UnknownInterface);
        };
        let ctx = arp::ArpCtx {
            iface,
            info,
            frontends: &self.frontends,
        };
        let (out, what) = if why == Exception::Arp {
            let out = arp::handle_arp(frame, &ctx, &mut self.neighbours, now);
            (out, "ARP")
        } else {
            let out = nd::handle_nd(frame, &ctx, &mut self.neighbours6, now);
            (out, "Neighbour Discovery")
        };
        if out.learned {
            self.counters.neighbours_learned += 1;
        }
        if let Action::Drop(SlowPathDrop::AddressConflict) = out.action {
            if let Some(suppressed) = self.conflict_log.check(now) {
                let name = self.interfaces.get(iface).map_or("?", |i| i.name.as_str());
                tracing::warn!(
                    interface = %name,
                    suppressed,
                    "{what} from another host claims one of our addresses"
                );
            }
        }
        match out.action {
            Action::ReplyInPlace { .. } | Action::SendOnPort { .. }
                if !self.arp_limiter.try_take(now) =>
            {
                Action::Drop(SlowPathDrop::RateLimited)
            }
            action => action,
        }
    }

    fn count(&mut self, why: Exception, action: &Action) {
        let c = &mut self.counters;
        match action {
            Action::ReplyInPlace { .. } if why == Exception::Arp => c.arp_replies += 1,
            Action::ReplyInPlace { .. } => c.echo_replies += 1,
            Action::SendOnPort { .. } if why == Exception::NeighbourDiscovery => c.nd_adverts += 1,
            Action::SendOnPort { .. } => match why {
                Exception::TooBig { .. } => c.frag_needed_sent += 1,
                Exception::TtlExceeded => c.time_exceeded_sent += 1,
                _ => c.unreachable_sent += 1,
            },
            Action::ToKernel { .. } => c.to_kernel += 1,
            Action::DeliverToFlow { .. } => c.icmp_errors_to_flows += 1,
            Action::Drop(r) => c.drops[r.index()] += 1,
        }
    }
}

/// True when `frame` is Ethernet (one optional tag) carrying IPv6.
fn is_ipv6(frame: &[u8]) -> bool {
    EthernetFrame::new_checked(frame)
        .and_then(|e| e.l3())
        .is_ok_and(|l3| l3.ethertype == ethertype::IPV6)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;
