//! The IPv6 counterpart of `pipeline_ir`: a fixed amount of pipeline work over IPv6 flows, for
//! instruction counts under callgrind.
//!
//! `pipeline_ir6 est FLOWS BURSTS` runs BURSTS bursts of 32 established-flow ACKs (Ethernet/IPv6/
//! TCP, 74 bytes) over FLOWS live NAT66 flows (one rule, four members, as `pipeline_ir`'s `nat`
//! kind). Count only the measured bursts with
//! `valgrind --tool=callgrind --toggle-collect='*measured*' target/release/examples/pipeline_ir6 est 1000 1000`
//! and divide the total instructions by BURSTS × 32.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::{EgressPort, NeighbourMap, Pipeline, PipelineConfig, Verdict, View};
use vipmux::wire::{MacAddr, PacketBuf, VecBuf, BURST};

/// Ethernet + IPv6 + TCP without options.
const FRAME_LEN: usize = 74;
const HEADROOM: usize = 128;
const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);

/// One NAT66 rule, four members, long idle timeout.
const CONFIG: &str = r#"
[appliance]
hash_seed = 1

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"
address6 = "fd00:1::2/64"
gateway6 = "fe80::1"

[[frontends]]
name = "fe"
address = "2001:db8:0:1::2"

[[backend_pools]]
name = "web"
members = [
  { name = "vm1", address = "fd00:1::11" },
  { name = "vm2", address = "fd00:1::12" },
  { name = "vm3", address = "fd00:1::13" },
  { name = "vm4", address = "fd00:1::14" },
]

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
idle_timeout_minutes = 30
"#;

/// The frame of flow `i` (client 2001:db8:100::/64, 256 ports per address) to VIP:80 with the TCP
/// flags byte `flags` (checksum left 0: the decision path does not read it).
fn frame(i: u32, flags: u8) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&PORT_MAC.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut f[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&20u16.to_be_bytes());
    ip[6] = 6;
    ip[7] = 64;
    let client = Ipv6Addr::new(
        0x2001,
        0xdb8,
        0x100,
        0,
        0,
        0,
        (i >> 24) as u16,
        (i >> 8) as u16,
    );
    ip[8..24].copy_from_slice(&client.octets());
    ip[24..40].copy_from_slice(&VIP.octets());
    let t = &mut f[54..];
    t[..2].copy_from_slice(&(1024 + (i & 0xff) as u16).to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[8..12].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    f
}

/// Puts `f` into `buf` with [`HEADROOM`] in front.
#[inline(always)]
fn refill(buf: &mut VecBuf, f: &[u8]) {
    if buf.len() != f.len() || buf.headroom() != HEADROOM {
        *buf = VecBuf::with_room(HEADROOM, f, 0);
        return;
    }
    buf.data_mut().copy_from_slice(f);
}

/// Runs `frames` through `p` in bursts (flow preparation).
fn feed(p: &mut Pipeline, view: &View<'_>, frames: impl Iterator<Item = [u8; FRAME_LEN]>) {
    let mut b: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::with_room(HEADROOM, &[0u8; FRAME_LEN], 0))
        .collect();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut n = 0;
    for f in frames {
        refill(&mut b[n], &f);
        n += 1;
        if n == BURST {
            p.process(view, 0, &mut b[..n], &mut v[..n], 1);
            n = 0;
        }
    }
    p.process(view, 0, &mut b[..n], &mut v[..n], 1);
}

/// The measured bursts (callgrind collects only inside this function).
#[inline(never)]
fn measured(p: &mut Pipeline, view: &View<'_>, pool: &[[u8; FRAME_LEN]], bursts: u32) {
    let mut b: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::with_room(HEADROOM, &[0u8; FRAME_LEN], 0))
        .collect();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut at = 0usize;
    for _ in 0..bursts {
        for (buf, f) in b.iter_mut().zip(&pool[at..at + BURST]) {
            refill(buf, f);
        }
        at = (at + BURST) % pool.len();
        p.process(view, 0, &mut b, &mut v, 1);
        black_box(&v);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u32| -> u32 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d) };
    let (flows, bursts) = (num(1, 1000).max(1), num(2, 1000));
    let config = Config::from_str(CONFIG, "bench6.toml").expect("config");
    let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
    let six: Vec<(Ipv6Addr, MacAddr, usize)> = [1u16, 0x11, 0x12, 0x13, 0x14]
        .iter()
        .map(|&l| {
            let a = if l == 1 {
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)
            } else {
                Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, l)
            };
            (a, MacAddr([2, 0, 0, 0, 0, l as u8]), 0)
        })
        .collect();
    let neighbours = NeighbourMap::from_entries(vec![], 1).with_ipv6(six);
    let ports = [EgressPort {
        mac: PORT_MAC,
        addr: Ipv4Addr::new(10, 1, 0, 2),
        mtu: 1500,
    }];
    let view = View {
        snapshot: &snapshot,
        neighbours: &neighbours,
        ports: &ports,
    };
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: (flows as usize * 6).max(4096),
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    feed(&mut p, &view, (0..flows).map(|i| frame(i, 0x02)));
    feed(&mut p, &view, (0..flows).map(|i| frame(i, 0x10)));
    let mut s = 7u64;
    let pool: Vec<_> = (0..(bursts as usize * BURST).clamp(BURST, 1 << 16))
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            frame(((s >> 33) % u64::from(flows)) as u32, 0x10)
        })
        .collect();
    measured(&mut p, &view, &pool, bursts);
    let c = p.counters();
    eprintln!(
        "est6: {} packets measured, {} flows in the table, counters rx {} tx {}",
        bursts as usize * BURST,
        p.flow_count(),
        c.rx,
        c.tx
    );
    if c.tx != c.rx {
        eprintln!("drops {:?} exceptions {:?}", c.drops, c.exceptions);
    }
}
