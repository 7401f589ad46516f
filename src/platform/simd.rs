//! SIMD signature compare for the flow tables (the kind of helper DPDK's `rte_hash` keeps next to
//! its buckets): which of 16 (or 8) `u32` signatures equal a value, as a bit mask.
//!
//! Written with SSE2 intrinsics because the compiler does not turn the portable loop into
//! `pcmpeqd` + `movmsk` (it emits a much longer, partly scalar sequence); SSE2 is part of the
//! x86-64 baseline. Other architectures get the portable loop. It lives in the platform
//! room because `core::arch` intrinsics are `unsafe` to call.

/// Bit `i` of the result is set when `sig[i] == s`.
#[inline(always)]
pub fn eq_mask16(sig: &[u32; 16], s: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32,
            _mm_set1_epi32,
        };
        let p = sig.as_ptr();
        // SAFETY: SSE2 is enabled on every x86-64 target; the four unaligned 16-byte loads read
        // elements 0..4, 4..8, 8..12 and 12..16 of a `[u32; 16]` borrowed for the whole call.
        unsafe {
            let k = _mm_set1_epi32(s as i32);
            let c0 = _mm_cmpeq_epi32(_mm_loadu_si128(p.cast()), k);
            let c1 = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(4).cast()), k);
            let c2 = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(8).cast()), k);
            let c3 = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(12).cast()), k);
            // -1/0 lanes narrow to -1/0 bytes with saturation, in order; then one bit per byte.
            let b = _mm_packs_epi16(_mm_packs_epi32(c0, c1), _mm_packs_epi32(c2, c3));
            _mm_movemask_epi8(b) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable_mask(sig, s)
    }
}

/// Bit `i` of the result is set when `sig[i] == s` (the 8-way buckets of the recently-expired
/// record).
#[inline(always)]
pub fn eq_mask8(sig: &[u32; 8], s: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32,
            _mm_set1_epi32, _mm_setzero_si128,
        };
        let p = sig.as_ptr();
        // SAFETY: SSE2 is enabled on every x86-64 target; the two unaligned 16-byte loads read
        // elements 0..4 and 4..8 of a `[u32; 8]` borrowed for the whole call.
        unsafe {
            let k = _mm_set1_epi32(s as i32);
            let c0 = _mm_cmpeq_epi32(_mm_loadu_si128(p.cast()), k);
            let c1 = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(4).cast()), k);
            // As in `eq_mask16`, with zeros for the upper eight bytes.
            let b = _mm_packs_epi16(_mm_packs_epi32(c0, c1), _mm_setzero_si128());
            _mm_movemask_epi8(b) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable_mask(sig, s)
    }
}

/// The portable form of the masks: bit `i` set when `sig[i] == s`.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn portable_mask(sig: &[u32], s: u32) -> u32 {
    let mut m = 0u32;
    for (i, &x) in sig.iter().enumerate() {
        m |= u32::from(x == s) << i;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portable(sig: &[u32; 16], s: u32) -> u32 {
        portable_mask(sig, s)
    }

    #[test]
    fn matches_the_portable_loop() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for round in 0..2000u32 {
            let mut sig = [0u32; 16];
            for v in sig.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Few distinct values so that matches are frequent; include 0, MAX and sign bits.
                *v = [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, round][(x % 6) as usize];
            }
            for s in [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, round, 42] {
                assert_eq!(eq_mask16(&sig, s), portable(&sig, s), "{sig:?} {s}");
            }
        }
        assert_eq!(eq_mask16(&[7; 16], 7), 0xffff);
        assert_eq!(eq_mask16(&[7; 16], 8), 0);
    }

    #[test]
    fn eight_way_mask_matches_the_portable_loop() {
        let vals = [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 42];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut sig = [0u32; 8];
            for v in sig.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = vals[(x % 6) as usize];
            }
            for s in vals.into_iter().chain([5]) {
                assert_eq!(eq_mask8(&sig, s), portable_mask(&sig, s), "{sig:?} {s}");
            }
        }
        assert_eq!(eq_mask8(&[7; 8], 7), 0xff);
        assert_eq!(eq_mask8(&[7; 8], 8), 0);
    }
}
