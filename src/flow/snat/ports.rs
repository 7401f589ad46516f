//! [`PortSpace`]: the SNAT ports of one frontend IP, one use count per port and a bitmap of the
//! ports in use, so the lowest free port of a range is found a 64-port word at a time.

/// Ports of one frontend IP (all 65,536 port numbers, so a block anywhere fits).
pub struct PortSpace<A> {
    /// The frontend IP (host order).
    pub addr: A,
    uses: Box<[u16]>,
    busy: Box<[u64]>,
}

impl<A> PortSpace<A> {
    /// Every port of `addr` free.
    pub fn new(addr: A) -> Self {
        PortSpace {
            addr,
            uses: vec![0u16; 1 << 16].into_boxed_slice(),
            busy: vec![0u64; (1 << 16) / 64].into_boxed_slice(),
        }
    }

    /// Translations using `port`.
    #[inline]
    pub fn uses(&self, port: u16) -> u16 {
        self.uses.get(usize::from(port)).copied().unwrap_or(0)
    }

    /// The lowest port of `lo..hi` no translation uses.
    pub fn lowest_free(&self, lo: u16, hi: u32) -> Option<u16> {
        let hi = hi.min(1 << 16) as usize;
        let mut p = usize::from(lo);
        while p < hi {
            let word = self.busy.get(p / 64).copied().unwrap_or(u64::MAX);
            // Bits below `p` in this word are outside the range: count them busy.
            let free = !word & (u64::MAX << (p % 64));
            if free != 0 {
                let port = (p / 64) * 64 + free.trailing_zeros() as usize;
                return (port < hi).then_some(port as u16);
            }
            p = (p / 64 + 1) * 64;
        }
        None
    }

    /// Ports of `lo..hi` in use.
    pub fn used_in(&self, lo: u16, hi: u32) -> u32 {
        let hi = hi.min(1 << 16);
        (u32::from(lo)..hi)
            .filter(|&p| self.uses(p as u16) > 0)
            .count() as u32
    }

    /// One more translation on `port`.
    #[inline]
    pub fn take(&mut self, port: u16) {
        let i = usize::from(port);
        if let Some(u) = self.uses.get_mut(i) {
            *u = u.saturating_add(1);
            if let Some(w) = self.busy.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }

    /// One translation less on `port`; the port is free again at zero.
    #[inline]
    pub fn release(&mut self, port: u16) {
        let i = usize::from(port);
        if let Some(u) = self.uses.get_mut(i) {
            *u = u.saturating_sub(1);
            if *u == 0 {
                if let Some(w) = self.busy.get_mut(i / 64) {
                    *w &= !(1 << (i % 64));
                }
            }
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.uses.len() * 2 + self.busy.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_skips_busy_ports_across_words() {
        let mut s = PortSpace::new(1u32);
        for p in 1000..1100 {
            s.take(p);
        }
        assert_eq!(s.lowest_free(1000, 1200), Some(1100));
        assert_eq!(s.lowest_free(1000, 1100), None);
        assert_eq!(s.lowest_free(1050, 1101), Some(1100));
        s.take(1000);
        s.release(1000);
        assert_eq!(s.lowest_free(1000, 1200), Some(1100), "still one use left");
        s.release(1000);
        assert_eq!(s.lowest_free(1000, 1200), Some(1000));
        assert_eq!(s.used_in(1000, 1100), 99);
    }

    #[test]
    fn the_top_port_is_reachable() {
        let s = PortSpace::new(1u32);
        assert_eq!(s.lowest_free(65535, 65536), Some(65535));
        assert_eq!(s.lowest_free(65535, 70000), Some(65535));
    }
}
