//! Internet checksum (RFC 1071) over byte slices, the IPv4 and IPv6 pseudo-header sums, and RFC
//! 1624 incremental updates for address and port rewrites (IPv4 and IPv6 addresses alike).
//!
//! Sums are carried as `u32` values already folded to 16 bits (`<= 0xffff`), so a handful of them can
//! be added together and folded again without overflow. [`finish`] complements a sum into the value
//! written to a checksum field.
//!
//! Incremental updates use RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, which, unlike
//! equation 2, never produces a `0x0000` where a full recompute gives `0xffff` (or vice versa) for a
//! header whose checksum was valid. UDP over IPv4 reserves a transmitted `0` for "no checksum": the
//! `update_udp_*` helpers leave `0` alone and turn a computed `0` into `0xffff`, as a full recompute
//! with [`udp_finish`] does.
//!
//! One set of building blocks serves every incremental update, the wire views' field-by-field
//! rewrites and the data path's one-pass NAT alike: a change contributes its unfolded terms
//! ([`delta_u16`], [`delta_u32`], [`delta_ttl_decrement`]), the terms of several changes to one
//! checksum may be added first, and [`apply`] (or [`apply_udp`]) folds them into the checksum once.
//! Ones'-complement addition is associative, so one application of the summed deltas equals the
//! field-by-field updates bit for bit.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 32/64-bit ones'-complement accumulator to 16 bits (end-around carry), not complemented.
#[inline]
pub const fn fold(mut sum: u64) -> u32 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u32
}

/// Ones'-complement sum of `data` as big-endian 16-bit words (odd tail padded with zero), folded.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    match rest.len() {
        1 => acc += (rest[0] as u64) << 8,
        2 => acc += u16::from_be_bytes([rest[0], rest[1]]) as u64,
        3 => acc += (u16::from_be_bytes([rest[0], rest[1]]) as u64) + ((rest[2] as u64) << 8),
        _ => {}
    }
    fold(acc)
}

/// Adds two folded sums, folded again.
#[inline]
pub const fn add(a: u32, b: u32) -> u32 {
    fold(a as u64 + b as u64)
}

/// Complements a folded sum into the value for a checksum field.
#[inline]
pub const fn finish(sum: u32) -> u16 {
    !(fold(sum as u64) as u16)
}

/// Like [`finish`] but for UDP over IPv4: a computed `0` is sent as `0xffff` (0 means "none").
#[inline]
pub const fn udp_finish(sum: u32) -> u16 {
    match finish(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// Internet checksum of `data` (with the checksum field zeroed, this is the value to store).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// True when `data`, checksum field included, sums to all ones (valid Internet checksum).
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// Folded sum of the IPv4 pseudo-header: source, destination, zero + protocol, L4 length.
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u32 {
    let s = u32::from(src) as u64;
    let d = u32::from(dst) as u64;
    fold(s + d + protocol as u64 + l4_len as u64)
}

/// Unfolded ones'-complement sum of an IPv6 address as four 32-bit integers (fold it, or add it to
/// other such sums first: a `u64` holds thousands of them).
#[inline(always)]
const fn addr6_terms(a: Ipv6Addr) -> u64 {
    let v = a.to_bits();
    (v as u32) as u64
        + ((v >> 32) as u32) as u64
        + ((v >> 64) as u32) as u64
        + ((v >> 96) as u32) as u64
}

/// Folded sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit upper-layer
/// length, zero + next header. `next_header` is the upper-layer protocol, not the first extension
/// header.
#[inline]
pub const fn pseudo_header_sum_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    l4_len: u32,
) -> u32 {
    fold(addr6_terms(src) + addr6_terms(dst) + l4_len as u64 + next_header as u64)
}

/// Ones'-complement terms (not folded) of replacing the 16-bit word `old` by `new` in covered
/// data: `~old + new`, the `~m + m'` of RFC 1624 equation 3.
#[inline(always)]
pub const fn delta_u16(old: u16, new: u16) -> u64 {
    (!old) as u64 + new as u64
}

/// [`delta_u16`] for a 32-bit value (two adjacent words, e.g. an IPv4 address):
/// `~old_hi + ~old_lo + new_hi + new_lo`.
#[inline(always)]
pub const fn delta_u32(old: u32, new: u32) -> u64 {
    (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64
}

/// [`delta_u16`] for a 128-bit value (eight words, an IPv6 address), folded to 16 bits so that it
/// counts as one word's worth in [`apply`]'s budget.
#[inline(always)]
///
/// Summed as four 32-bit words each side (`!old` then `new`): a 32-bit word's ones'-complement
/// sum folds to the sum of its two 16-bit words, so this equals the word-by-word terms once
/// folded, in half the additions.
pub const fn delta_u128(old: u128, new: u128) -> u64 {
    const fn words(v: u128) -> u64 {
        (v as u32) as u64
            + ((v >> 32) as u32) as u64
            + ((v >> 64) as u32) as u64
            + ((v >> 96) as u32) as u64
    }
    fold(words(!old) + words(new)) as u64
}

/// [`delta_u16`] of the IPv4 TTL/protocol word when the TTL goes from `ttl` to `ttl - 1`
/// (saturating at 0): only the high byte changes, so `~(ttl << 8 | p) + ((ttl - 1) << 8 | p)` is
/// `0xfeff` whatever the protocol byte `p`, and `0xffff` (no change) when the TTL was already 0.
#[inline(always)]
pub const fn delta_ttl_decrement(ttl: u8) -> u64 {
    if ttl == 0 {
        0xffff
    } else {
        0xfeff
    }
}

/// Folds a small ones'-complement accumulator to 16 bits: two end-around carries are enough for
/// any sum up to 16 × 0xffff (an update adds the old checksum and a few deltas, far below that).
#[inline(always)]
pub const fn fold_small(sum: u64) -> u16 {
    debug_assert!(sum <= 16 * 0xffff);
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// RFC 1624 eqn. 3, `HC' = ~(~HC + Σ(~m + m'))`: the checksum `hc` after the changes whose
/// [`delta_u16`] / [`delta_u32`] / [`delta_ttl_decrement`] terms add up to `delta` (at most 15
/// words' worth, so one pass can update for several fields at once).
#[inline(always)]
pub const fn apply(hc: u16, delta: u64) -> u16 {
    !fold_small((!hc) as u64 + delta)
}

/// [`apply`] for a UDP checksum: `0` ("no checksum") stays `0`, a computed `0` becomes `0xffff`.
#[inline(always)]
pub const fn apply_udp(hc: u16, delta: u64) -> u16 {
    udp_rules(hc, apply(hc, delta))
}

/// UDP's two checksum rules for an update of `hc` that computed `updated`: a checksum of `0` ("no
/// checksum") stays `0`, and a computed `0` is sent as `0xffff` (its ones'-complement twin).
#[inline(always)]
const fn udp_rules(hc: u16, updated: u16) -> u16 {
    match (hc, updated) {
        (0, _) => 0,
        (_, 0) => 0xffff,
        (_, c) => c,
    }
}

/// Ones'-complement sum of two 16-bit terms: one add and the end-around carry added back. The
/// same value as [`fold_small`] of `a + b` (at most `0x1fffe`, which one carry folds).
#[inline(always)]
pub const fn add16(a: u16, b: u16) -> u16 {
    let (s, carry) = a.overflowing_add(b);
    // With a carry, `s` is at most 0xfffe: adding it back cannot overflow.
    s + carry as u16
}

/// [`apply`] for a `delta` already folded to 16 bits (a flow's stored term): the same checksum,
/// `~add16(~hc, delta)`, without the folding of a wider accumulator.
#[inline(always)]
pub const fn apply_folded(hc: u16, delta: u16) -> u16 {
    !add16(!hc, delta)
}

/// [`apply_udp`] for a `delta` already folded to 16 bits (see [`apply_folded`]).
#[inline(always)]
pub const fn apply_udp_folded(hc: u16, delta: u16) -> u16 {
    udp_rules(hc, apply_folded(hc, delta))
}

/// RFC 1624 eqn. 3: the checksum `hc` after a 16-bit word of the covered data changed `old` -> `new`.
#[inline]
pub const fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    apply(hc, delta_u16(old, new))
}

/// RFC 1624 eqn. 3 for a changed 32-bit value (two adjacent words, e.g. an IPv4 address).
#[inline]
pub const fn update_u32(hc: u16, old: u32, new: u32) -> u16 {
    apply(hc, delta_u32(old, new))
}

/// [`update_u32`] for an IPv4 address change (header checksum, or TCP/UDP via the pseudo-header).
#[inline]
pub fn update_addr(hc: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_u32(hc, u32::from(old), u32::from(new))
}

/// [`update_u16`] for a UDP checksum: `0` ("no checksum") stays `0`, a computed `0` becomes `0xffff`.
#[inline]
pub const fn update_udp_u16(hc: u16, old: u16, new: u16) -> u16 {
    apply_udp(hc, delta_u16(old, new))
}

/// [`update_u32`] for a UDP checksum, with the same `0` rules as [`update_udp_u16`].
#[inline]
pub const fn update_udp_u32(hc: u16, old: u32, new: u32) -> u16 {
    apply_udp(hc, delta_u32(old, new))
}

/// [`update_udp_u32`] for an IPv4 address change.
#[inline]
pub fn update_udp_addr(hc: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_udp_u32(hc, u32::from(old), u32::from(new))
}

/// RFC 1624 eqn. 3 for an IPv6 address change (TCP or ICMPv6 checksum, via the pseudo-header).
#[inline]
pub const fn update_addr_v6(hc: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    apply(hc, delta_u128(old.to_bits(), new.to_bits()))
}

/// [`update_addr_v6`] for a UDP checksum: a computed `0` becomes `0xffff`. A `0` stays `0`: over
/// IPv6 it is not "no checksum" but invalid (RFC 8200 §8.1), and the packet stays invalid.
#[inline]
pub const fn update_udp_addr_v6(hc: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    apply_udp(hc, delta_u128(old.to_bits(), new.to_bits()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_apply_matches_apply() {
        // Every checksum against deltas spread over the 16-bit range and its edges (0, 0xffff,
        // and the TTL terms): one end-around carry gives exactly `apply`'s fold.
        let deltas = (0..=0xffffu32)
            .step_by(251)
            .chain([0, 1, 0xfeff, 0xfffe, 0xffff]);
        for d in deltas {
            let d = d as u16;
            for hc in 0..=0xffffu16 {
                assert_eq!(
                    apply_folded(hc, d),
                    apply(hc, u64::from(d)),
                    "{hc:#x} {d:#x}"
                );
                assert_eq!(apply_udp_folded(hc, d), apply_udp(hc, u64::from(d)));
                for ttl in [delta_ttl_decrement(7), delta_ttl_decrement(0)] {
                    assert_eq!(
                        !add16(add16(!hc, d), ttl as u16),
                        apply(hc, u64::from(d) + ttl)
                    );
                }
            }
        }
    }

    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += w as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // Classic example header, checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verify(&h));
    }

    #[test]
    fn odd_lengths_match_naive() {
        let data: Vec<u8> = (0..37u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        for n in 0..data.len() {
            assert_eq!(checksum(&data[..n]), naive(&data[..n]), "len {n}");
        }
    }

    #[test]
    fn rfc1624_zero_cases() {
        // RFC 1624 section 3 example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives 0x0000 with eqn 3.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // UDP: 0 stays "no checksum"; a computed 0 is sent as 0xffff.
        assert_eq!(update_udp_u16(0, 0x1234, 0x4321), 0);
        assert_eq!(update_udp_u16(0xdd2f, 0x5555, 0x3285), 0xffff);
        // Identity update leaves the checksum unchanged.
        assert_eq!(update_u32(0x1234, 0xdead_beef, 0xdead_beef), 0x1234);
    }

    #[test]
    fn ttl_decrement_delta_is_the_word_delta() {
        for ttl in 0..=255u8 {
            for proto in [0u8, 1, 6, 17, 255] {
                let old = u16::from_be_bytes([ttl, proto]);
                let new = u16::from_be_bytes([ttl.saturating_sub(1), proto]);
                for hc in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
                    assert_eq!(
                        apply(hc, delta_ttl_decrement(ttl)),
                        update_u16(hc, old, new),
                        "ttl {ttl} proto {proto} hc {hc:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn pseudo_header() {
        let s = pseudo_header_sum(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            6,
            20,
        );
        let mut b = Vec::new();
        b.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20]);
        assert_eq!(s, sum(&b));
    }

    #[test]
    fn pseudo_header_v6() {
        let (s, d) = (
            "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            "fe80::ffff:1:2:3".parse::<Ipv6Addr>().unwrap(),
        );
        let mut b = Vec::new();
        b.extend_from_slice(&s.octets());
        b.extend_from_slice(&d.octets());
        b.extend_from_slice(&70000u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_sum_v6(s, d, 58, 70000), sum(&b));
    }

    proptest::proptest! {
        /// An IPv6 address change applied incrementally equals recomputing over the new bytes, and
        /// its folded delta adds up with other deltas in one [`apply`].
        #[test]
        fn address_v6_update_matches_recompute(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            old in proptest::num::u128::ANY, new in proptest::num::u128::ANY,
            p_old in proptest::num::u16::ANY, p_new in proptest::num::u16::ANY,
        ) {
            let (old, new) = (Ipv6Addr::from_bits(old), Ipv6Addr::from_bits(new));
            let covered = |a: Ipv6Addr, port: u16| {
                let mut b = vec![1u8, 0]; // nonzero, as every real header is; words aligned
                b.extend_from_slice(&a.octets());
                b.extend_from_slice(&port.to_be_bytes());
                b.extend_from_slice(&data);
                checksum(&b)
            };
            let hc = covered(old, p_old);
            proptest::prop_assert_eq!(update_addr_v6(covered(old, p_new), old, new), covered(new, p_new));
            let once = apply(hc, delta_u128(old.to_bits(), new.to_bits()) + delta_u16(p_old, p_new));
            proptest::prop_assert_eq!(once, covered(new, p_new));
            let u = update_udp_addr_v6(hc, old, new);
            proptest::prop_assert!(u != 0);
            proptest::prop_assert_eq!(update_udp_addr_v6(0, old, new), 0);
        }

        /// The IPv6 address delta is the folded sum of its eight 16-bit words' deltas, exactly
        /// (edge values included: all ones, zero).
        #[test]
        fn address_v6_delta_is_the_folded_word_deltas(
            old in proptest::num::u128::ANY, new in proptest::num::u128::ANY, pick in 0u8..4,
        ) {
            let (old, new) = match pick {
                0 => (old, new),
                1 => (u128::MAX, 0),
                2 => (0, u128::MAX),
                _ => (old, old),
            };
            let words: u64 = (0..8).map(|i| delta_u16((old >> (16 * i)) as u16, (new >> (16 * i)) as u16)).sum();
            proptest::prop_assert_eq!(delta_u128(old, new), u64::from(fold(words)));
        }

        /// Summing the deltas of several changes and applying them once equals updating for each
        /// change in turn (the data path's one-pass NAT relies on it).
        #[test]
        fn summed_deltas_match_one_by_one(
            hc in proptest::num::u16::ANY,
            a in proptest::num::u32::ANY, b in proptest::num::u32::ANY,
            c in proptest::num::u16::ANY, d in proptest::num::u16::ANY, ttl in proptest::num::u8::ANY,
        ) {
            let one_by_one = update_u16(update_u16(update_u32(hc, a, b), c, d), u16::from(ttl) << 8,
                u16::from(ttl.saturating_sub(1)) << 8);
            let once = apply(hc, delta_u32(a, b) + delta_u16(c, d) + delta_ttl_decrement(ttl));
            proptest::prop_assert_eq!(once, one_by_one);
        }

        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn incremental_word_matches_recompute(
            data in proptest::collection::vec(proptest::num::u8::ANY, 4..64),
            idx in 0usize..32, new in proptest::num::u16::ANY,
        ) {
            let mut d = data.clone();
            d[0] |= 1; // keep the data nonzero, as every real header is
            let words = d.len() / 2;
            let i = (idx % words) * 2;
            let hc = checksum(&d);
            let old = u16::from_be_bytes([d[i], d[i + 1]]);
            d[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&d);
            if i == 0 && new == 0 && d.iter().all(|&b| b == 0) {
                return Ok(());
            }
            proptest::prop_assert_eq!(update_u16(hc, old, new), full);
        }
    }
}
