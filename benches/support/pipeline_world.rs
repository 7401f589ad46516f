//! The pipeline workload shared by the `pipeline` bench and the `pipeline_ir` example (callgrind):
//! one NAT rule over four members, a port and its neighbours, 60-byte TCP frames of numbered
//! flows (74-byte IPv6 ones for the `nat6` kind), and helpers to feed bursts and to measure
//! on-CPU time.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::NeighbourMap;
use vipmux::dataplane::{EgressPort, Pipeline, Verdict, View};
use vipmux::slowpath::{NeighbourTable, NeighbourTimers, SlowPathInterface};
use vipmux::wire::{FrameSpec, L4Spec, MacAddr, PacketBuf, TcpFlags, VecBuf};

pub use vipmux::wire::BURST;
/// Frame length without the FCS (64 bytes on the wire).
pub const FRAME_LEN: usize = 60;
/// IPv6 frame length without the FCS (Ethernet, IPv6, TCP without options).
pub const FRAME_LEN6: usize = 74;
/// The rule's VIP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
/// The `nat6` rule's VIP.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);
/// The port's MAC.
pub const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);

/// One NAT rule, four members, long idle timeout.
pub const CONFIG: &str = r#"
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

/// [`CONFIG`] over IPv6 (the `nat6` kind): the interface's `address6` and `gateway6`, an IPv6 VIP
/// ([`VIP6`]) and four IPv6 members fd00:1::11..14.
pub fn config6() -> String {
    let mut c = CONFIG
        .replace(
            "gateway = \"10.1.0.1\"\n",
            "gateway = \"10.1.0.1\"\naddress6 = \"fd00:1::2/64\"\ngateway6 = \"fe80::1\"\n",
        )
        .replace("address = \"10.1.0.100\"", &format!("address = \"{VIP6}\""));
    for last in 11..=14 {
        c = c.replace(
            &format!("\"10.1.0.{last}\""),
            &format!("\"fd00:1::{last}\""),
        );
    }
    c
}

/// The rule kinds of [`config_of_kind`] (the memif bench's `DP_RULES` kinds) over IPv4 frames
/// ([`frame`]); `nat6` (IPv6 frames, [`frame6`]) is apart.
pub const KINDS: [&str; 8] = [
    "nat",
    "3tuple",
    "2tuple",
    "weighted",
    "floating",
    "gue",
    "inbound-nat",
    "reset-idle",
];

/// [`CONFIG`] with its rule turned into `kind`: "nat" (as is), "3tuple" / "2tuple" (load
/// distribution), "weighted" (weights 1..4), "floating" (floating IP by MAC rewrite, backend port
/// 80), "gue" (floating IP in GUE), "inbound-nat" (an inbound NAT port range 80-143 over the pool
/// instead of the rule), "reset-idle" (TCP reset on idle), "nat6" ([`config6`]). `None` for another
/// kind.
pub fn config_of_kind(kind: &str) -> Option<String> {
    let rule = "backend_port = 8080\nbackend_pool = \"web\"\n";
    let pool = "[[backend_pools]]\nname = \"web\"\n";
    let c = CONFIG.to_string();
    Some(match kind {
        "nat" => c,
        "3tuple" => c.replace(
            rule,
            &format!("{rule}load_distribution = \"source_ip_protocol\"\n"),
        ),
        "2tuple" => c.replace(rule, &format!("{rule}load_distribution = \"source_ip\"\n")),
        "weighted" => c
            .replace("\"10.1.0.12\" }", "\"10.1.0.12\", weight = 2 }")
            .replace("\"10.1.0.13\" }", "\"10.1.0.13\", weight = 3 }")
            .replace("\"10.1.0.14\" }", "\"10.1.0.14\", weight = 4 }"),
        "floating" => c.replace(
            rule,
            "backend_port = 80\nbackend_pool = \"web\"\nenable_floating_ip = true\n",
        ),
        "gue" => c
            .replace(
                rule,
                "backend_port = 80\nbackend_pool = \"web\"\nenable_floating_ip = true\n",
            )
            .replace(pool, &format!("{pool}dsr_encapsulation = \"gue\"\n")),
        "inbound-nat" => {
            let at = c.find("[[load_balancing_rules]]")?;
            format!(
                "{}[[inbound_nat_rules]]\nname = \"ssh\"\nfrontend = \"fe\"\nprotocol = \"tcp\"\n\
                 frontend_port_range_start = 80\nfrontend_port_range_end = 143\n\
                 backend_pool = \"web\"\nbackend_port = 22\nidle_timeout_minutes = 30\n",
                &c[..at]
            )
        }
        "reset-idle" => c.replace(rule, &format!("{rule}enable_tcp_reset = true\n")),
        "nat6" => config6(),
        _ => return None,
    })
}

/// [`CONFIG`] plus an outbound rule over the pool on the frontend (1,024 SNAT ports per member):
/// the members' own connections are translated.
pub fn config_with_outbound() -> String {
    format!(
        "{CONFIG}\n[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"fe\"]\n\
         backend_pool = \"web\"\nallocated_outbound_ports = 1024\nidle_timeout_minutes = 30\n"
    )
}

/// The frame of outbound connection `i`: from member `10.1.0.(11 + i % 4)`, port `10000 + i / 4`,
/// to `198.51.100.(i % 250):443` behind the gateway, with `flags`.
pub fn outbound_frame(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN] {
    let member = SocketAddrV4::new(
        Ipv4Addr::new(10, 1, 0, 11 + (i % 4) as u8),
        10000 + (i / 4) as u16,
    );
    let remote = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, (i % 250) as u8), 443);
    let mut out = [0u8; FRAME_LEN];
    FrameSpec {
        src_mac: MacAddr([2, 0, 0, 0, 0, 11]),
        dst_mac: PORT_MAC,
        proto: L4Spec::Tcp {
            sport: member.port(),
            dport: 443,
            seq: 1,
            ack: 1,
            flags,
            window: 1024,
        },
        ..FrameSpec::tcp(member, remote, flags)
    }
    .build(&mut out);
    out
}

/// Everything a `View` borrows.
pub struct World {
    snapshot: Snapshot,
    neighbours: NeighbourMap,
    ports: Vec<EgressPort>,
}

impl World {
    /// The compiled configuration with every member's MAC known.
    pub fn new() -> World {
        World::with_config(CONFIG)
    }

    /// [`World::new`] with the rule of `kind` (see [`config_of_kind`]); `None` for an unknown kind.
    pub fn of_kind(kind: &str) -> Option<World> {
        config_of_kind(kind).map(|c| World::with_config(&c))
    }

    /// The compiled configuration `toml` (a variant of [`CONFIG`]) with every member's MAC known.
    pub fn with_config(toml: &str) -> World {
        let config = Config::from_str(toml, "bench.toml").expect("config");
        let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
        let mut t = NeighbourTable::new(
            vec![SlowPathInterface::new(
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
        let mut neighbours = t.snapshot();
        if toml.contains("address6") {
            // The IPv6 gateway and members: fe80::1 and fd00:1::11..14, MACs as IPv4's.
            let six = [1u16, 0x11, 0x12, 0x13, 0x14].map(|l| {
                let a = match l {
                    1 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                    _ => Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, l),
                };
                (a, MacAddr([2, 0, 0, 0, 0, l as u8]), 0)
            });
            neighbours = neighbours.with_ipv6(six.to_vec());
        }
        World {
            snapshot,
            neighbours,
            ports: vec![EgressPort {
                mac: PORT_MAC,
                addr: Ipv4Addr::new(10, 1, 0, 2),
                mtu: 1500,
            }],
        }
    }

    /// The view the pipeline reads.
    pub fn view(&self) -> View<'_> {
        View {
            snapshot: &self.snapshot,
            neighbours: &self.neighbours,
            ports: &self.ports,
        }
    }
}

/// Client of flow `i`: 16 M distinct (address, port) pairs.
pub fn client(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(0x6400_0000 | (i >> 8)),
        1024 + (i & 0xff) as u16,
    )
}

/// The frame of flow `i` toward VIP:80 with `flags`.
pub fn frame(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN] {
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

/// Rewrites a frame built by [`frame`] into one of flow `i` (address and port only; the checksums
/// stay as built, which the decision path does not check).
pub fn patch_client(d: &mut [u8], i: u32) {
    let cl = client(i);
    d[26..30].copy_from_slice(&cl.ip().octets());
    d[34..36].copy_from_slice(&cl.port().to_be_bytes());
}

/// The IPv6 frame of flow `i` (client 2001:db8:100::/64, 256 ports per address) toward
/// [`VIP6`]:80 with `flags` (checksum left 0: the decision path does not read it).
#[allow(dead_code)] // the pipeline_ir example's nat6 kind, not the bench
pub fn frame6(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN6] {
    let mut f = [0u8; FRAME_LEN6];
    f[..6].copy_from_slice(&PORT_MAC.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut f[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&20u16.to_be_bytes());
    ip[6] = 6;
    ip[7] = 64;
    ip[24..40].copy_from_slice(&VIP6.octets());
    let t = &mut f[54..];
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[8..12].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags.bits() as u8;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    patch_client6(&mut f, i);
    f
}

/// Rewrites a frame built by [`frame6`] into one of flow `i` (client address and port).
#[allow(dead_code)] // the pipeline_ir example's nat6 kind, not the bench
pub fn patch_client6(d: &mut [u8], i: u32) {
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
    d[22..38].copy_from_slice(&client.octets());
    d[54..56].copy_from_slice(&(1024 + (i & 0xff) as u16).to_be_bytes());
}

/// A fixed pseudo-random sequence (splitmix64).
pub fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A burst of buffers with 128 bytes of headroom and room behind for an IPv6 frame.
pub fn bufs() -> Vec<VecBuf> {
    (0..BURST)
        .map(|_| VecBuf::with_room(HEADROOM, &[0u8; FRAME_LEN], FRAME_LEN6 - FRAME_LEN))
        .collect()
}

/// Headroom of the [`bufs`] buffers.
pub const HEADROOM: usize = 128;

/// Puts `f` into `buf` in place of what the pipeline left there, with [`HEADROOM`] in front again
/// (an encapsulated frame starts earlier and its inner packet was cut to its IPv4 length).
#[inline(always)]
pub fn refill(buf: &mut VecBuf, f: &[u8]) {
    if buf.len() != f.len() || buf.headroom() != HEADROOM {
        buf.truncate(0);
        let h = buf.headroom();
        if h > HEADROOM {
            buf.prepend(h - HEADROOM);
            buf.truncate(0);
        } else {
            buf.append(HEADROOM - h);
            buf.trim_front(HEADROOM - h);
        }
        buf.append(f.len());
    }
    buf.data_mut().copy_from_slice(f);
}

/// Runs `frames` through `p` in bursts (flow preparation).
pub fn feed<const N: usize>(
    p: &mut Pipeline,
    view: &View<'_>,
    frames: impl Iterator<Item = [u8; N]>,
) {
    let mut b = bufs();
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

/// On-CPU time of this thread, ns (`/proc/thread-self/schedstat`, first field): unlike wall time it
/// does not count the time other processes of a shared machine hold the core.
pub fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
