//! Flow ownership between workers (docs/design.md §6.2): which worker handles every packet of a
//! flow, in both directions.
//!
//! The owner of an inbound flow is a function of its CLIENT endpoint (address, port), the one
//! field pair present in both directions: the source of a packet to a frontend, the destination
//! of a NAT reply from a member. It is computed exactly as a NIC's RSS would steer it: the
//! Toeplitz hash of (address, port) — the input of `L3_SRC_ONLY | L4_SRC_ONLY` on the client's
//! packets, of `L3_DST_ONLY | L4_DST_ONLY` on the replies — with [`RSS_KEY`], then a redirection
//! table ([`Reta`], [`RETA_SIZE`] entries, entry `i` = `i mod workers`) indexed by the hash's low
//! bits. A port whose NIC is configured with the same key and table therefore delivers every
//! packet to its owner; any other port hands packets over in software using this same function.

/// The RSS key: the 40-byte key of Microsoft's RSS verification suite, the default of many NICs.
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Entries of the redirection table (a power of two; the hash's low bits index it).
pub const RETA_SIZE: usize = 128;

/// The Toeplitz hash of `input` under `key` (the RSS hash; `input` at most `key.len() - 4`
/// bytes, longer input is hashed as far as the key reaches).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32-bit window of the key aligned with the current input bit.
    let mut window = match key.first_chunk::<4>() {
        Some(w) => u32::from_be_bytes(*w),
        None => return 0,
    };
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// Bytes of a client endpoint's hash input: address (4) then port (2).
const CLIENT_INPUT: usize = 6;

/// The 32 key bits starting at bit `bit` of [`RSS_KEY`].
const fn key_window(bit: usize) -> u32 {
    let mut w = 0u32;
    let mut i = 0;
    while i < 32 {
        let k = bit + i;
        let b = (RSS_KEY[k / 8] >> (7 - k % 8)) & 1;
        w = (w << 1) | b as u32;
        i += 1;
    }
    w
}

/// Per input byte position and value, its share of the Toeplitz hash (the hash is the XOR of
/// the shares of its bytes): six lookups per endpoint instead of 48 bit steps.
const CLIENT_TABLE: [[u32; 256]; CLIENT_INPUT] = {
    let mut t = [[0u32; 256]; CLIENT_INPUT];
    let mut pos = 0;
    while pos < CLIENT_INPUT {
        let mut v = 0;
        while v < 256 {
            let mut h = 0u32;
            let mut bit = 0;
            while bit < 8 {
                if v & (0x80 >> bit) != 0 {
                    h ^= key_window(pos * 8 + bit);
                }
                bit += 1;
            }
            t[pos][v] = h;
            v += 1;
        }
        pos += 1;
    }
    t
};

/// The RSS hash of a client endpoint: Toeplitz over address then port, both in network order
/// (equal to [`toeplitz`] over those six bytes, from a precomputed table).
#[inline]
pub fn client_hash(addr: u32, port: u16) -> u32 {
    let a = addr.to_be_bytes();
    let p = port.to_be_bytes();
    let t = &CLIENT_TABLE;
    t[0][usize::from(a[0])]
        ^ t[1][usize::from(a[1])]
        ^ t[2][usize::from(a[2])]
        ^ t[3][usize::from(a[3])]
        ^ t[4][usize::from(p[0])]
        ^ t[5][usize::from(p[1])]
}

/// The RSS hash of an IPv6 client endpoint: Toeplitz over the 16-byte address then the port,
/// both in network order (what a NIC's IPv6 source-only or destination-only RSS computes).
#[inline]
pub fn client_hash6(addr: u128, port: u16) -> u32 {
    let mut input = [0u8; 18];
    input[..16].copy_from_slice(&addr.to_be_bytes());
    input[16..].copy_from_slice(&port.to_be_bytes());
    toeplitz(&RSS_KEY, &input)
}

/// A redirection table: RSS hash -> worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reta {
    /// Worker of each entry.
    entries: [u16; RETA_SIZE],
    /// Number of workers.
    workers: usize,
}

impl Reta {
    /// The table for `workers` workers (at least 1): entry `i` = `i mod workers`.
    pub fn new(workers: usize) -> Reta {
        let n = workers.clamp(1, usize::from(u16::MAX));
        let mut entries = [0u16; RETA_SIZE];
        for (i, e) in entries.iter_mut().enumerate() {
            *e = (i % n) as u16;
        }
        Reta {
            entries,
            workers: n,
        }
    }

    /// Number of workers the table spreads over.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The table's entries (what a NIC's RETA is programmed with).
    pub fn entries(&self) -> &[u16; RETA_SIZE] {
        &self.entries
    }

    /// The worker an RSS hash lands on.
    #[inline]
    pub fn worker(&self, hash: u32) -> usize {
        usize::from(self.entries[hash as usize & (RETA_SIZE - 1)])
    }

    /// The owner of the flow whose client endpoint is `addr:port` (host-order address; port 0
    /// for protocols without ports).
    #[inline]
    pub fn owner(&self, addr: u32, port: u16) -> usize {
        if self.workers == 1 {
            return 0;
        }
        self.worker(client_hash(addr, port))
    }

    /// The owner of the IPv6 flow whose client endpoint is `addr:port` (`u128::from(Ipv6Addr)`).
    #[inline]
    pub fn owner6(&self, addr: u128, port: u16) -> usize {
        if self.workers == 1 {
            return 0;
        }
        self.worker(client_hash6(addr, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> [u8; 4] {
        s.parse::<Ipv4Addr>().expect("address").octets()
    }

    /// The IPv4 vectors of Microsoft's RSS verification suite (destination, source, IPv4-only
    /// hash, IPv4+TCP hash): input = source address, destination address[, source port,
    /// destination port].
    const VECTORS: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "161.142.100.80",
            1766,
            "66.9.149.187",
            2794,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "65.69.140.83",
            4739,
            "199.92.111.2",
            14230,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "12.22.207.184",
            38024,
            "24.19.198.95",
            12898,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "209.142.163.6",
            2217,
            "38.27.205.30",
            48228,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "202.188.127.2",
            1303,
            "153.39.163.191",
            44251,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn toeplitz_matches_the_verification_suite() {
        for (dst, dport, src, sport, h_ip, h_tcp) in VECTORS {
            let mut input = Vec::new();
            input.extend_from_slice(&ip(src));
            input.extend_from_slice(&ip(dst));
            assert_eq!(toeplitz(&RSS_KEY, &input), h_ip, "{src} -> {dst}");
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(
                toeplitz(&RSS_KEY, &input),
                h_tcp,
                "{src}:{sport} -> {dst}:{dport}"
            );
        }
    }

    #[test]
    fn client_hash_is_toeplitz_of_address_then_port() {
        let (a, p) = (u32::from(Ipv4Addr::new(66, 9, 149, 187)), 2794u16);
        let mut input = ip("66.9.149.187").to_vec();
        input.extend_from_slice(&p.to_be_bytes());
        assert_eq!(client_hash(a, p), toeplitz(&RSS_KEY, &input));
        assert_ne!(client_hash(a, p), client_hash(a, p + 1));
    }

    #[test]
    fn the_client_table_equals_the_bitwise_hash() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (addr, port) = (x as u32, (x >> 32) as u16);
            let mut input = addr.to_be_bytes().to_vec();
            input.extend_from_slice(&port.to_be_bytes());
            assert_eq!(client_hash(addr, port), toeplitz(&RSS_KEY, &input));
        }
    }

    #[test]
    fn reta_entry_i_is_i_mod_workers() {
        let r = Reta::new(3);
        for (i, e) in r.entries().iter().enumerate() {
            assert_eq!(usize::from(*e), i % 3);
        }
        assert_eq!(r.worker(0x8000_0000 | 5), 5 % 3);
        assert_eq!(r.worker(RETA_SIZE as u32 + 4), 4 % 3);
        assert_eq!(Reta::new(0).workers(), 1);
    }

    #[test]
    fn one_worker_owns_everything() {
        let r = Reta::new(1);
        for port in [0u16, 1, 80, 65535] {
            assert_eq!(r.owner(0x0a00_0001, port), 0);
        }
    }

    #[test]
    fn owners_spread_over_workers() {
        let r = Reta::new(2);
        let mut seen = [0u32; 2];
        for port in 10_000u16..10_256 {
            let o = r.owner(u32::from(Ipv4Addr::new(10, 9, 0, 1)), port);
            assert!(o < 2);
            seen[o] += 1;
        }
        assert!(seen[0] > 64 && seen[1] > 64, "{seen:?}");
    }
}
