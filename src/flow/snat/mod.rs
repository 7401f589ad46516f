//! Outbound SNAT translations of one worker (docs/design.md §3.5.6): [`SnatTable`] allocates
//! ports of a member's block and maps each outbound connection both ways.
//!
//! A translation maps the member's endpoint and a remote endpoint to a frontend IP and SNAT port:
//!
//! - member side: `member:port → remote:port` ([`Translation::egress_key`], the key of the
//!   member's packets as received);
//! - remote side: `remote:port → frontend:snat_port` ([`Translation::reply_key`], the key of
//!   the replies as received). Every translation has its own, so a port may serve several
//!   connections at once as long as their remote endpoints differ.
//!
//! Port choice (`SnatTable::create`), within the range the caller gives (the worker's part of the
//! member's block):
//!
//! - the lowest port no translation uses (a bitmap of used ports, a 64-port word at a time);
//! - TCP, when none is free: the lowest port with no translation toward the same remote
//!   IP:port (Azure reuses a SNAT port for different destinations);
//! - UDP is port-restricted cone: a member endpoint keeps one SNAT port per destination IP (a
//!   new destination port of the same IP takes the port the endpoint already has there), and
//!   only the remote endpoints it sent to may answer;
//! - nothing left: [`SnatError::Exhausted`].
//!
//! A translation (and with it its port) is released when it idles out: 240 s after FINs both
//! ways ([`SNAT_FIN_TIMEOUT`]), 15 s after a RST ([`SNAT_RST_TIMEOUT`]), else the outbound rule's
//! idle timeout. TCP state is tracked in a [`FlowEntry`] with the member as the client, so
//! reset on idle reads the same numbers as for inbound flows.
//!
//! One table serves either family: its addresses are `u32` (IPv4, the default) or `u128` (IPv6),
//! [`SnatAddr`] gives the flow key of each.
//!
//! Fixed size: every vector is allocated by [`SnatTable::new`] and [`SnatTable::add_frontend`]
//! (between bursts); nothing allocates per packet. Time is a parameter (whole seconds).

mod addr;
mod index;
mod ports;
#[cfg(test)]
mod tests;

pub use addr::SnatAddr;
pub use index::KeyIndex;
pub use ports::PortSpace;

use super::entry::{FlowEntry, FlowFlags, FlowState};
use super::key::{PROTO_TCP, PROTO_UDP};

/// Release time of a port after FINs both ways, seconds.
pub const SNAT_FIN_TIMEOUT: u32 = 240;
/// Release time of a port after a RST, seconds.
pub const SNAT_RST_TIMEOUT: u32 = 15;

/// One outbound connection's translation (addresses `u32` for IPv4, `u128` for IPv6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Translation<A = u32> {
    /// The member's address (host order).
    pub member: A,
    /// The member's port.
    pub member_port: u16,
    /// The remote address (host order).
    pub remote: A,
    /// The remote port.
    pub remote_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// The frontend IP the member's packets leave with.
    pub frontend: A,
    /// The SNAT port the member's packets leave with.
    pub snat_port: u16,
    /// Index of the outbound rule in the snapshot that created it (informational).
    pub outbound: u32,
    /// TCP state, timers and reset numbers; the member is the client, `member_id` a hint,
    /// `member_addr`/`backend_port` the frontend IP and SNAT port.
    pub entry: FlowEntry,
    /// A packet came back from the remote side.
    pub answered: bool,
}

impl<A: SnatAddr> Translation<A> {
    /// The key of the member's packets (member → remote) as received.
    #[inline]
    pub fn egress_key(&self) -> A::Key {
        A::key(
            self.member,
            self.remote,
            self.member_port,
            self.remote_port,
            self.proto,
        )
    }

    /// The key of the replies (remote → frontend:snat_port) as received.
    #[inline]
    pub fn reply_key(&self) -> A::Key {
        A::key(
            self.remote,
            self.frontend,
            self.remote_port,
            self.snat_port,
            self.proto,
        )
    }

    /// The UDP cone key: member endpoint and destination IP (protocol 0 never collides).
    #[inline]
    fn cone_key(&self) -> A::Key {
        cone_key(self.member, self.member_port, self.remote)
    }

    /// The release time in the current state (see the module documentation).
    #[inline]
    pub fn timeout(&self) -> u32 {
        let e = &self.entry;
        let short = match e.state {
            FlowState::Closing
                if e.flags
                    .contains(FlowFlags::FIN_CLIENT | FlowFlags::FIN_SERVER) =>
            {
                SNAT_FIN_TIMEOUT
            }
            FlowState::Closed => SNAT_RST_TIMEOUT,
            _ => return e.idle_timeout,
        };
        short.min(e.idle_timeout)
    }

    /// Idle for longer than [`Translation::timeout`] (never early, at most 1 s late).
    #[inline]
    pub fn is_expired(&self, now: u32) -> bool {
        now.wrapping_sub(self.entry.last_seen) > self.timeout()
    }
}

#[inline]
fn cone_key<A: SnatAddr>(member: A, member_port: u16, remote: A) -> A::Key {
    A::key(member, remote, member_port, 0, 0)
}

/// What a new translation needs: the member's packet key, where its ports come from, and the
/// outbound rule's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewTranslation<A: SnatAddr = u32> {
    /// The member's packet (member → remote) as received.
    pub key: A::Key,
    /// Frontend IP of the block.
    pub frontend: A,
    /// First port this worker may use.
    pub first_port: u16,
    /// Ports after `first_port` this worker may use.
    pub ports: u16,
    /// Index of the outbound rule.
    pub outbound: u32,
    /// The member's id in the snapshot (hint, for counters).
    pub member_id: u32,
    /// The rule's idle timeout, seconds.
    pub idle_timeout: u32,
    /// The rule has `enable_tcp_reset`.
    pub reset: bool,
}

/// Why no translation was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnatError {
    /// No port of the member's range can take the connection.
    Exhausted,
    /// Every translation slot of the worker is taken.
    TableFull,
    /// The frontend IP has no port space (not announced with [`SnatTable::add_frontend`]).
    UnknownFrontend,
}

/// One worker's SNAT translations and port allocations (see the module documentation).
pub struct SnatTable<A: SnatAddr = u32> {
    slots: Vec<Translation<A>>,
    live: Vec<bool>,
    free: Vec<u32>,
    egress: KeyIndex<A::Key>,
    reply: KeyIndex<A::Key>,
    spaces: Vec<PortSpace<A>>,
    cursor: usize,
}

impl<A: SnatAddr> SnatTable<A> {
    /// A table for at most `capacity` translations, all memory allocated now (the port spaces
    /// come with [`SnatTable::add_frontend`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(u32::MAX as usize - 1);
        SnatTable {
            slots: vec![Translation::default(); capacity],
            live: vec![false; capacity],
            free: (0..capacity as u32).rev().collect(),
            // Member side: the exact key, plus a cone key per UDP translation.
            egress: KeyIndex::new(capacity * 2),
            reply: KeyIndex::new(capacity),
            spaces: Vec::new(),
            cursor: 0,
        }
    }

    /// Most translations it holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Translations held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether it holds no translation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * (core::mem::size_of::<Translation<A>>() + 1 + 4)
            + self.egress.memory_bytes()
            + self.reply.memory_bytes()
            + self
                .spaces
                .iter()
                .map(PortSpace::<A>::memory_bytes)
                .sum::<usize>()
    }

    /// Gives frontend IP `addr` its port space (allocates once per address; between bursts).
    pub fn add_frontend(&mut self, addr: A) {
        if !self.spaces.iter().any(|s| s.addr == addr) {
            self.spaces.push(PortSpace::new(addr));
        }
    }

    /// Whether `addr` has a port space.
    #[inline]
    pub fn has_frontend(&self, addr: A) -> bool {
        self.spaces.iter().any(|s| s.addr == addr)
    }

    /// The slot of the translation whose member-side key is `key`.
    #[inline]
    pub fn lookup_egress(&self, key: &A::Key) -> Option<u32> {
        self.egress.get(key)
    }

    /// The slot of the translation whose remote-side key is `key`.
    #[inline]
    pub fn lookup_reply(&self, key: &A::Key) -> Option<u32> {
        self.reply.get(key)
    }

    /// The translation in `slot`, if live.
    #[inline]
    pub fn get(&self, slot: u32) -> Option<&Translation<A>> {
        let i = slot as usize;
        if *self.live.get(i)? {
            self.slots.get(i)
        } else {
            None
        }
    }

    /// The translation in `slot`, if live, to update.
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Translation<A>> {
        let i = slot as usize;
        if *self.live.get(i)? {
            self.slots.get_mut(i)
        } else {
            None
        }
    }

    /// Every live translation (walks the whole table: for listings, not per packet).
    pub fn iter(&self) -> impl Iterator<Item = &Translation<A>> {
        self.slots
            .iter()
            .zip(&self.live)
            .filter_map(|(t, l)| l.then_some(t))
    }

    /// Translations using `port` of `frontend`.
    #[inline]
    pub fn port_uses(&self, frontend: A, port: u16) -> u16 {
        self.spaces
            .iter()
            .find(|s| s.addr == frontend)
            .map_or(0, |s| s.uses(port))
    }

    /// Ports of `frontend` in `first..first + count` in use by this table.
    pub fn used_ports(&self, frontend: A, first: u16, count: u16) -> u32 {
        self.spaces
            .iter()
            .find(|s| s.addr == frontend)
            .map_or(0, |s| s.used_in(first, u32::from(first) + u32::from(count)))
    }

    /// A new translation for `n.key` with a port from `n`'s range, last seen at `now`; the
    /// caller tracks its first packet. The caller has looked the key up and found nothing live.
    pub fn create(&mut self, n: &NewTranslation<A>, now: u32) -> Result<u32, SnatError> {
        let space = self
            .spaces
            .iter()
            .position(|s| s.addr == n.frontend)
            .ok_or(SnatError::UnknownFrontend)?;
        let Some(&slot) = self.free.last() else {
            return Err(SnatError::TableFull);
        };
        let port = self.pick_port(space, n)?;
        let (src, dst) = A::addrs(&n.key);
        let (src_port, dst_port, proto) = A::ports(&n.key);
        let mut flags = FlowFlags::NONE;
        if n.reset && proto == PROTO_TCP {
            flags.insert(FlowFlags::RESET_ENABLED);
        }
        let t = Translation {
            member: src,
            member_port: src_port,
            remote: dst,
            remote_port: dst_port,
            proto,
            frontend: n.frontend,
            snat_port: port,
            outbound: n.outbound,
            entry: FlowEntry::new(
                n.outbound,
                n.frontend.entry_addr(),
                port,
                n.member_id,
                flags,
                n.idle_timeout.max(1),
                now,
            ),
            answered: false,
        };
        if !self.egress.insert(t.egress_key(), slot) {
            return Err(SnatError::TableFull);
        }
        if !self.reply.insert(t.reply_key(), slot) {
            self.egress.remove_if(&t.egress_key(), slot);
            return Err(SnatError::TableFull);
        }
        if t.proto == PROTO_UDP {
            self.egress.insert(t.cone_key(), slot);
        }
        if let Some(s) = self.spaces.get_mut(space) {
            s.take(port);
        }
        self.free.pop();
        if let (Some(s), Some(l)) = (
            self.slots.get_mut(slot as usize),
            self.live.get_mut(slot as usize),
        ) {
            *s = t;
            *l = true;
        }
        Ok(slot)
    }

    /// The frontend IP of the translation a UDP member endpoint keeps toward `key`'s
    /// destination IP (the cone), if any; `None` for TCP.
    #[inline]
    pub fn cone_frontend(&self, key: &A::Key) -> Option<A> {
        let (src, dst) = A::addrs(key);
        let (src_port, _, proto) = A::ports(key);
        if proto != PROTO_UDP {
            return None;
        }
        let cone = cone_key(src, src_port, dst);
        let slot = self.egress.get(&cone)?;
        self.get(slot).map(|t| t.frontend)
    }

    /// The port a new translation takes (see the module documentation).
    fn pick_port(&self, space: usize, n: &NewTranslation<A>) -> Result<u16, SnatError> {
        let s = self.spaces.get(space).ok_or(SnatError::UnknownFrontend)?;
        let lo = n.first_port;
        let hi = u32::from(lo) + u32::from(n.ports);
        let (src, dst) = A::addrs(&n.key);
        let (src_port, dst_port, proto) = A::ports(&n.key);
        let reply_key = |p: u16| A::key(dst, n.frontend, dst_port, p, proto);
        if proto == PROTO_UDP {
            let cone = cone_key(src, src_port, dst);
            let kept = self.egress.get(&cone).and_then(|slot| self.get(slot));
            if let Some(t) = kept {
                let inside = (u32::from(lo)..hi).contains(&u32::from(t.snat_port));
                if t.frontend == n.frontend
                    && inside
                    && self.reply.get(&reply_key(t.snat_port)).is_none()
                {
                    return Ok(t.snat_port);
                }
            }
        }
        if let Some(p) = s.lowest_free(lo, hi) {
            return Ok(p);
        }
        if proto == PROTO_TCP {
            for p in u32::from(lo)..hi.min(1 << 16) {
                let p = p as u16;
                if self.reply.get(&reply_key(p)).is_none() {
                    return Ok(p);
                }
            }
        }
        Err(SnatError::Exhausted)
    }

    /// Removes the translation in `slot` and releases its port; returns it.
    pub fn remove(&mut self, slot: u32) -> Option<Translation<A>> {
        let t = *self.get(slot)?;
        self.egress.remove_if(&t.egress_key(), slot);
        self.reply.remove_if(&t.reply_key(), slot);
        if t.proto == PROTO_UDP {
            self.egress.remove_if(&t.cone_key(), slot);
        }
        if let Some(s) = self.spaces.iter_mut().find(|s| s.addr == t.frontend) {
            s.release(t.snat_port);
        }
        if let Some(l) = self.live.get_mut(slot as usize) {
            *l = false;
        }
        self.free.push(slot);
        Some(t)
    }

    /// Releases expired translations among the next `budget` slots (a full sweep takes
    /// `capacity / budget` calls), calling `f` on each once it is gone, with whether its port
    /// is free now; returns how many.
    pub fn expire_step<F: FnMut(&Translation<A>, bool)>(
        &mut self,
        now: u32,
        budget: usize,
        mut f: F,
    ) -> usize {
        let n = self.slots.len();
        if n == 0 {
            return 0;
        }
        let mut expired = 0;
        for _ in 0..budget.min(n) {
            let slot = self.cursor as u32;
            self.cursor = (self.cursor + 1) % n;
            let Some(t) = self.get(slot).filter(|t| t.is_expired(now)).copied() else {
                continue;
            };
            self.remove(slot);
            f(&t, self.port_uses(t.frontend, t.snat_port) == 0);
            expired += 1;
        }
        expired
    }
}
