//! A small packet-buffer trait with headroom, implemented by [`VecBuf`] for tests and the pure
//! pipeline (and by a DPDK mbuf adapter elsewhere).
//!
//! The data region is `data()`; bytes before it are headroom that [`PacketBuf::prepend`] can claim
//! (for encapsulation headers) and bytes after it are tailroom that [`PacketBuf::append`] can claim.

/// Packets handled together: the size of a receive/transmit burst, of the pipeline's per-burst
/// arrays and of the flow table's batch lookups (one value for every room that works in bursts).
pub const BURST: usize = 32;

/// Headroom [`VecBuf::from_slice`] reserves, matching DPDK's default `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;

/// A packet buffer: a contiguous data region with headroom in front and tailroom behind.
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Bytes free in front of the data.
    fn headroom(&self) -> usize;
    /// Bytes free behind the data.
    fn tailroom(&self) -> usize;
    /// Grows the data region by `n` bytes at the front and returns them, or `None` (and no change)
    /// if the headroom is smaller than `n`. The returned bytes hold stale content.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the data region by `n` bytes at the back and returns them, or `None` (no change).
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front (they become headroom); false (no change) if `n > len()`.
    fn trim_front(&mut self, n: usize) -> bool;
    /// Shortens the data to `len` bytes; no change if it is already that short.
    fn truncate(&mut self, len: usize);
    /// Length of the data region.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the data region is empty.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap buffer with fixed headroom and tailroom, for tests and the pure pipeline.
#[derive(Clone, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl core::fmt::Debug for VecBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VecBuf")
            .field("headroom", &self.start)
            .field("data", &self.data())
            .field("tailroom", &(self.storage.len() - self.end))
            .finish()
    }
}

impl VecBuf {
    /// An empty buffer with `headroom` bytes in front and `capacity` bytes of tailroom.
    pub fn new(headroom: usize, capacity: usize) -> Self {
        VecBuf {
            storage: vec![0; headroom + capacity],
            start: headroom,
            end: headroom,
        }
    }

    /// A buffer holding a copy of `data` with [`DEFAULT_HEADROOM`] in front and no tailroom.
    pub fn from_slice(data: &[u8]) -> Self {
        Self::with_room(DEFAULT_HEADROOM, data, 0)
    }

    /// A buffer holding a copy of `data`, with `headroom` in front and `tailroom` behind.
    pub fn with_room(headroom: usize, data: &[u8], tailroom: usize) -> Self {
        let mut storage = vec![0; headroom + data.len() + tailroom];
        storage[headroom..headroom + data.len()].copy_from_slice(data);
        VecBuf {
            storage,
            start: headroom,
            end: headroom + data.len(),
        }
    }

    /// The data as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl PacketBuf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }
    #[inline]
    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.storage[self.start..self.start + n])
    }
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.end;
        self.end += n;
        Some(&mut self.storage[old..self.end])
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        if len < self.end - self.start {
            self.end = self.start + len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_prepend_trim_truncate() {
        let mut b = VecBuf::with_room(4, &[1, 2, 3], 2);
        assert_eq!(b.len(), 3);
        assert_eq!(b.headroom(), 4);
        assert_eq!(b.tailroom(), 2);
        assert!(b.prepend(5).is_none());
        assert_eq!(b.data(), &[1, 2, 3]);
        b.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        assert_eq!(b.data(), &[8, 9, 1, 2, 3]);
        assert!(!b.trim_front(6));
        assert!(b.trim_front(1));
        assert_eq!(b.data(), &[9, 1, 2, 3]);
        b.append(2).unwrap().copy_from_slice(&[4, 5]);
        assert!(b.append(1).is_none());
        assert_eq!(b.data(), &[9, 1, 2, 3, 4, 5]);
        b.truncate(10);
        assert_eq!(b.len(), 6);
        b.truncate(2);
        assert_eq!(b.data(), &[9, 1]);
        b.data_mut()[0] = 7;
        assert_eq!(b.to_vec(), vec![7, 1]);
        assert!(!b.is_empty());
        b.truncate(0);
        assert!(b.is_empty());
    }

    #[test]
    fn from_slice_default_headroom() {
        let b = VecBuf::from_slice(&[1]);
        assert_eq!(b.headroom(), DEFAULT_HEADROOM);
        assert_eq!(b.tailroom(), 0);
    }
}
