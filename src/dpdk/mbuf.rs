//! `Mbuf`: an owned `rte_mbuf` freed on drop; `Burst`: up to [`BURST`] of them in a fixed array.

use std::fmt;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::port::PortId;
use super::sys;
use crate::wire::builder::GUE_OVERHEAD;
use crate::wire::BURST;

/// One packet buffer, owned: freed (returned to its mempool) on drop.
///
/// The byte accessors cover the first segment; vipmux configures no scatter, so received
/// packets are single-segment (`is_contiguous`).
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an `Mbuf` is the sole owner of its rte_mbuf (never aliased: created from DPDK's
// allocation or rx results, consumed by tx or drop). Moving that ownership to another thread is
// what DPDK pipelines do; freeing from any thread is safe because pktmbuf pools use the
// multi-producer/multi-consumer ring ops (threads without an lcore id bypass the cache).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free.
    pub(crate) unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: `self.0` is a valid mbuf owned by `self` for as long as `self` lives.
        unsafe { self.0.as_ref() }
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's data buffer (a DPDK
        // invariant kept by every mutator here), and `&self` keeps it alive and unmutated.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (
            m.buf_addr.cast::<u8>(),
            usize::from(m.data_off),
            usize::from(m.data_len),
        );
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive (the mbuf is not
        // shared: vipmux never increments reference counts).
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// Bytes in the first segment (`data().len()`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// True when the first segment holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw().data_len == 0
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// True when the packet is a single segment (all of it is in `data()`).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Free bytes before the data (room for `prepend`).
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes after the data in the last segment (room for `append`).
    pub fn tailroom(&self) -> usize {
        // SAFETY: the mbuf is valid and owned; the call only reads it.
        usize::from(unsafe { sys::vipmux_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// The port the packet was received on.
    #[inline]
    pub fn port(&self) -> PortId {
        PortId(self.raw().port)
    }

    /// Grows the packet by `n` bytes at the front; returns them (uninitialised contents), or
    /// `None` (unchanged) without enough headroom. What `rte_pktmbuf_prepend` does, inline: the
    /// encapsulating delivery calls it once a packet, and the C call costs more than the edit.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: the mbuf is valid and exclusively ours (`&mut self`).
        let m = unsafe { self.0.as_mut() };
        if n16 > m.data_off {
            return None;
        }
        // data_off + data_len <= buf_len (a u16) and n <= data_off: neither field wraps.
        m.data_off -= n16;
        m.data_len = m.data_len.wrapping_add(n16);
        m.pkt_len = m.pkt_len.wrapping_add(u32::from(n16));
        // SAFETY: the new data starts data_off bytes into the buffer, and its first n bytes were
        // headroom, inside the buffer; `&mut self` makes the access exclusive.
        Some(unsafe {
            std::slice::from_raw_parts_mut(m.buf_addr.cast::<u8>().add(usize::from(m.data_off)), n)
        })
    }

    /// Grows the packet by `n` bytes at the end; returns them, or `None` (unchanged) without
    /// enough tailroom.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: as in `prepend`; DPDK returns NULL and changes nothing when the room is short.
        let p = unsafe { sys::vipmux_pktmbuf_append(self.0.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: on success p..p+n is the appended region of the last segment.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Appends a copy of `bytes`; false (unchanged) without enough tailroom.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        match self.append(bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// Removes `n` bytes from the front; false (unchanged) if the first segment is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the mbuf is valid and exclusively ours; DPDK checks the length.
        !unsafe { sys::vipmux_pktmbuf_adj(self.0.as_ptr(), n16) }.is_null()
    }

    /// Removes `n` bytes from the end; false (unchanged) if the last segment is shorter.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the mbuf is valid and exclusively ours; DPDK checks the length.
        unsafe { sys::vipmux_pktmbuf_trim(self.0.as_ptr(), n16) == 0 }
    }

    /// Empties a single-segment packet and restores the default headroom (as on alloc).
    pub fn reset(&mut self) {
        if self.is_contiguous() {
            // SAFETY: the mbuf is valid, exclusively ours and single-segment, so resetting its
            // metadata loses no segment.
            unsafe { sys::vipmux_pktmbuf_reset(self.0.as_ptr()) }
        }
    }
}

impl crate::wire::PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn headroom(&self) -> usize {
        Mbuf::headroom(self)
    }
    #[inline]
    fn tailroom(&self) -> usize {
        Mbuf::tailroom(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, n)
    }
    #[inline]
    fn trim_front(&mut self, n: usize) -> bool {
        self.adj(n)
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        let cur = Mbuf::len(self);
        if len < cur {
            if self.is_contiguous() {
                // One segment: both lengths set in place. An encapsulating delivery drops a
                // short frame's Ethernet padding (a bare ACK's) this way, once a packet.
                // SAFETY: the mbuf is valid and exclusively ours; len < data_len (a u16).
                let m = unsafe { self.0.as_mut() };
                m.data_len = len as u16;
                m.pkt_len = len as u32;
            } else {
                self.trim(cur - len);
            }
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and drop it exactly once; rte_pktmbuf_free frees every segment.
        unsafe { sys::vipmux_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .finish()
    }
}

/// The address of `m`'s first data byte (computed, not dereferenced).
#[inline(always)]
fn data_start(m: &Mbuf) -> *const u8 {
    let raw = m.raw();
    raw.buf_addr
        .cast::<u8>()
        .cast_const()
        .wrapping_add(usize::from(raw.data_off))
}

/// Up to [`BURST`] owned mbufs in a fixed array: no allocation, usable in a hot loop.
///
/// Filled by `RxQueue::rx_burst` or `Mempool::alloc_bulk`/`push`, emptied by
/// `TxQueue::tx_burst`; whatever is left is freed on drop or `clear`.
pub struct Burst {
    slots: [MaybeUninit<Mbuf>; BURST],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    pub const fn new() -> Burst {
        Burst {
            slots: [const { MaybeUninit::uninit() }; BURST],
            len: 0,
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no mbuf is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when [`BURST`] mbufs are held.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Free slots.
    #[inline]
    pub fn room(&self) -> usize {
        BURST - self.len
    }

    /// The mbufs held.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialised, and MaybeUninit<Mbuf> has Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs held, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Iterates over the mbufs.
    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the mbufs.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Adds an mbuf at the end; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live range: read once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Removes the mbuf at `index`, replacing it with the last one; `None` when out of range.
    pub fn swap_remove(&mut self, index: usize) -> Option<Mbuf> {
        if index >= self.len {
            return None;
        }
        let last = self.len - 1;
        self.as_mut_slice().swap(index, last);
        self.pop()
    }

    /// Keeps the mbufs for which `keep` is true (order preserved); frees the others and returns
    /// how many were freed.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) -> usize {
        let mut kept = 0;
        let len = self.len;
        // Live range during the loop: [0, kept) kept, [i, len) unvisited. Mark the burst empty
        // first so a panic in `keep` leaks rather than double-frees.
        self.len = 0;
        for i in 0..len {
            // SAFETY: slot i is initialised and not yet visited; it is read exactly once.
            let mut m = unsafe { self.slots[i].assume_init_read() };
            if keep(&mut m) {
                self.slots[kept].write(m);
                kept += 1;
            }
        }
        self.len = kept;
        len - kept
    }

    /// Hands every mbuf, in order, to `f`, which keeps ownership of those it takes and gives
    /// back (`Some`) those that stay in the burst (order preserved).
    #[inline]
    pub fn keep_or_take(&mut self, mut f: impl FnMut(Mbuf) -> Option<Mbuf>) {
        let mut kept = 0;
        let len = self.len;
        // As in `retain`: the burst is marked empty first so a panic in `f` leaks rather than
        // double-frees.
        self.len = 0;
        for i in 0..len {
            // SAFETY: slot i is initialised and not yet visited; it is read exactly once.
            let m = unsafe { self.slots[i].assume_init_read() };
            if let Some(m) = f(m) {
                self.slots[kept].write(m);
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Prefetches the first cache line of every frame's data (issue right after `rx_burst`, so
    /// the burst's misses overlap), and the second one of a frame longer than a line: an IPv6
    /// TCP frame's headers end at byte 74, past the first line (a hint never faults). With
    /// `headroom` (some rule encapsulates), also the line an IPv4 GUE header prepended to the
    /// frame starts in: at the default headroom the line before the data, which receiving never
    /// touched and an encapsulation writes (a store miss per packet otherwise; prefetched here,
    /// the burst's misses overlap). That line is prefetched to be written (`prefetchw`, where the
    /// CPU has it): a software peer (memif) that took this buffer's last encapsulated frame read
    /// it from its own core, so a read prefetch would leave the stores a second request to take
    /// it back.
    #[inline]
    pub fn prefetch_data(&self, headroom: bool) {
        for m in self.iter() {
            let start = data_start(m);
            crate::platform::prefetch_ptr(start);
            if m.raw().data_len > 64 {
                crate::platform::prefetch_ptr(start.wrapping_add(64));
            }
        }
        if headroom {
            let hint = crate::platform::WriteHint::get();
            for m in self.iter() {
                let line = data_start(m).wrapping_sub(GUE_OVERHEAD);
                match hint {
                    Some(w) => w.prefetch(line),
                    None => crate::platform::prefetch_ptr(line),
                }
            }
        }
    }

    /// Hands every mbuf, in order, with its index, to `f` (which takes ownership); the burst is
    /// empty afterwards.
    #[inline]
    pub fn drain_each(&mut self, mut f: impl FnMut(usize, Mbuf)) {
        let len = self.len;
        // Mark the burst empty first so a panic in `f` leaks rather than double-frees.
        self.len = 0;
        for i in 0..len {
            // SAFETY: slot i is initialised (i < old len) and read exactly once.
            let m = unsafe { self.slots[i].assume_init_read() };
            f(i, m);
        }
    }

    /// Frees every mbuf held.
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = self.len as u32;
        self.len = 0;
        // SAFETY: slots[..n] hold owned, valid mbufs (layout of *mut rte_mbuf); ownership passes
        // to DPDK, which frees them all, and `len` is already 0 so they are not used again.
        unsafe {
            sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast::<*mut sys::rte_mbuf>(), n)
        }
    }

    /// Pointer to the first free slot and the number of free slots, for DPDK to fill.
    pub(crate) fn free_slots(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        // SAFETY: len <= BURST, so the pointer stays within (or one past) the array.
        (
            unsafe {
                self.slots
                    .as_mut_ptr()
                    .add(self.len)
                    .cast::<*mut sys::rte_mbuf>()
            },
            BURST - self.len,
        )
    }

    /// Records that DPDK wrote `n` valid, owned mbufs into the free slots.
    ///
    /// # Safety
    /// The `n` slots after the live range must hold valid mbufs owned by nobody else.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST);
        self.len += n;
    }

    /// Pointer to the live mbufs, for DPDK to take.
    pub(crate) fn live_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        self.slots.as_mut_ptr().cast::<*mut sys::rte_mbuf>()
    }

    /// Forgets the first `n` mbufs (DPDK took them) and moves the rest to the front.
    ///
    /// # Safety
    /// DPDK must have taken ownership of the first `n` (<= len) mbufs.
    pub(crate) unsafe fn consumed(&mut self, n: usize) {
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // SAFETY (caller): slots[n..len] are initialised; copying them down moves ownership.
            std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest);
        }
        self.len = rest;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

impl fmt::Debug for Burst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

impl<'a> IntoIterator for &'a mut Burst {
    type Item = &'a mut Mbuf;
    type IntoIter = std::slice::IterMut<'a, Mbuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}
