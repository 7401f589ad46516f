//! A fixed amount of pipeline work, for instruction counts under callgrind (repeatable on a loaded
//! machine, unlike timings). Same configuration and frames as the `pipeline` bench.
//!
//! `pipeline_ir est FLOWS BURSTS` runs BURSTS bursts of 32 established-flow ACKs over FLOWS live
//! flows (cycling through 64 K random frames); `pipeline_ir syn BURSTS` runs BURSTS bursts of 32
//! SYNs of new flows into a 1 M table. It prints the on-CPU time per packet (meaningless under
//! callgrind).
//! Count only the measured bursts with
//! `valgrind --tool=callgrind --toggle-collect='*measured*' target/release/examples/pipeline_ir est 1000 1000`
//! and divide the total instructions by BURSTS × 32.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::{Pipeline, PipelineConfig, PortInfo, Verdict, View};
use vipmux::slowpath::{InterfaceInfo, NeighbourTable, NeighbourTimers};
use vipmux::wire::{FrameSpec, L4Spec, MacAddr, PacketBuf, TcpFlags, VecBuf};

const BURST: usize = 32;
const FRAME_LEN: usize = 60;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);

const CONFIG: &str = r#"
[appliance]
hash_seed = 1

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "fe"
address = "10.1.0.100"

[[backend_pools]]
name = "web"
members = [
  { name = "vm1", address = "10.1.0.11" },
  { name = "vm2", address = "10.1.0.12" },
  { name = "vm3", address = "10.1.0.13" },
  { name = "vm4", address = "10.1.0.14" },
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

fn client(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(0x6400_0000 | (i >> 8)),
        1024 + (i & 0xff) as u16,
    )
}

fn frame(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN] {
    let mut out = [0u8; FRAME_LEN];
    FrameSpec {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: PORT_MAC,
        proto: L4Spec::Tcp {
            sport: client(i).port(),
            dport: 80,
            seq: 1,
            ack: 1,
            flags,
            window: 1024,
        },
        ..FrameSpec::tcp(client(i), SocketAddrV4::new(VIP, 80), flags)
    }
    .build(&mut out);
    out
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn feed(p: &mut Pipeline, view: &View<'_>, frames: impl Iterator<Item = [u8; FRAME_LEN]>) {
    let mut b: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::with_room(128, &[0u8; FRAME_LEN], 0))
        .collect();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut n = 0;
    for f in frames {
        b[n].data_mut().copy_from_slice(&f);
        n += 1;
        if n == BURST {
            p.process(view, 0, &mut b[..n], &mut v[..n], 1);
            n = 0;
        }
    }
    p.process(view, 0, &mut b[..n], &mut v[..n], 1);
}

/// Where the measured frames come from.
enum Source {
    /// Cycle through pre-built frames.
    Pool(Vec<[u8; FRAME_LEN]>),
    /// Patch a SYN template with a new client address and port per frame (as the bench does).
    Fresh([u8; FRAME_LEN]),
}

/// The measured bursts (callgrind collects only inside this function).
#[inline(never)]
fn measured(p: &mut Pipeline, view: &View<'_>, src: &Source, b: &mut [VecBuf], bursts: u32) {
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut at = 0usize;
    let mut next = 0u32;
    for _ in 0..bursts {
        match src {
            Source::Pool(pool) => {
                for (buf, f) in b.iter_mut().zip(&pool[at..at + BURST]) {
                    buf.data_mut().copy_from_slice(f);
                }
                at = (at + BURST) % pool.len();
            }
            Source::Fresh(t) => {
                for buf in b.iter_mut() {
                    let d = buf.data_mut();
                    d.copy_from_slice(t);
                    let cl = client(next & 0x00ff_ffff);
                    next = next.wrapping_add(1);
                    d[26..30].copy_from_slice(&cl.ip().octets());
                    d[34..36].copy_from_slice(&cl.port().to_be_bytes());
                }
            }
        }
        p.process(view, 0, b, &mut v, 1);
        black_box(&v);
    }
}

/// On-CPU time of this thread, ns (`/proc/thread-self/schedstat`).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u32| -> u32 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d) };
    let config = Config::from_str(CONFIG, "ir.toml").expect("config");
    let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
    let mut t = NeighbourTable::new(
        vec![InterfaceInfo::new(
            "dc",
            PORT_MAC,
            Ipv4Addr::new(10, 1, 0, 2),
            24,
            Some(Ipv4Addr::new(10, 1, 0, 1)),
        )],
        NeighbourTimers::default(),
    );
    for last in [1u8, 11, 12, 13, 14] {
        t.learn(
            0,
            Ipv4Addr::new(10, 1, 0, last),
            MacAddr([2, 0, 0, 0, 0, last]),
            0,
            true,
        );
    }
    let neighbours = t.snapshot();
    let ports = [PortInfo {
        mac: PORT_MAC,
        addr: Ipv4Addr::new(10, 1, 0, 2),
        mtu: 1500,
    }];
    let view = View {
        snapshot: &snapshot,
        neighbours: &neighbours,
        ports: &ports,
    };
    let mut b: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::with_room(128, &[0u8; FRAME_LEN], 0))
        .collect();
    let mode = args.first().map(String::as_str).unwrap_or("est");
    let (mut p, src, bursts) = if mode == "syn" {
        let bursts = num(1, 1000);
        let p = Pipeline::new(&PipelineConfig {
            flow_capacity: 1 << 20,
            recent_capacity: 1024,
            recent_window_secs: 600,
        });
        (p, Source::Fresh(frame(0, TcpFlags::SYN)), bursts)
    } else {
        let flows = num(1, 1000);
        let bursts = num(2, 1000);
        let mut p = Pipeline::new(&PipelineConfig {
            flow_capacity: (flows as usize * 3 / 2).max(4096),
            recent_capacity: 1024,
            recent_window_secs: 600,
        });
        feed(&mut p, &view, (0..flows).map(|i| frame(i, TcpFlags::SYN)));
        feed(&mut p, &view, (0..flows).map(|i| frame(i, TcpFlags::ACK)));
        let mut s = 7u64;
        let pool: Vec<_> = (0..(bursts as usize * BURST).min(1 << 16))
            .map(|_| frame((splitmix(&mut s) % u64::from(flows)) as u32, TcpFlags::ACK))
            .collect();
        (p, Source::Pool(pool), bursts)
    };
    let t0 = cpu_ns();
    measured(&mut p, &view, &src, &mut b, bursts);
    let ns = (cpu_ns() - t0) as f64 / (f64::from(bursts) * BURST as f64);
    eprintln!(
        "{mode}: {} packets measured, {} flows in the table, counters rx {} tx {}; {ns:.1} ns/packet on-CPU",
        bursts as usize * BURST,
        p.flow_count(),
        p.counters().rx,
        p.counters().tx
    );
}
