//! The SNAT blocks by frontend IP and port: which block (and so which member and worker) a
//! reply to a frontend IP's SNAT port belongs to. Built once per snapshot from
//! [`Snapshot::outbound`]; the lookup is a binary search, no allocation.

use super::{Snapshot, SnatBlock};

impl Snapshot {
    /// Indexes every outbound rule's blocks by (frontend IP, first port), after `outbound`.
    pub(super) fn index_snat_ports(&mut self) {
        let mut v: Vec<SnatBlock> = self
            .outbound
            .iter()
            .flat_map(|o| o.blocks.iter().copied())
            .filter(|b| b.count > 0)
            .collect();
        v.sort_by_key(|b| (u32::from(b.frontend_addr), b.first_port));
        self.snat_ports = v;
    }

    /// The SNAT block holding `port` of frontend IP `addr` (host order), if any.
    #[inline]
    pub fn snat_block_at(&self, addr: u32, port: u16) -> Option<&SnatBlock> {
        let v = &self.snat_ports;
        // The last block starting at or before (addr, port).
        let i = v.partition_point(|b| (u32::from(b.frontend_addr), b.first_port) <= (addr, port));
        let b = v.get(i.checked_sub(1)?)?;
        let end = u32::from(b.first_port) + u32::from(b.count);
        (u32::from(b.frontend_addr) == addr && u32::from(port) < end).then_some(b)
    }
}
