//! Random and mutated frames through the whole pipeline: never a panic, a verdict for every frame,
//! and the output never larger than the buffer allows (data may only grow into the headroom).

mod dataplane_common;

use dataplane_common::*;
use proptest::prelude::*;
use vipmux::dataplane::{DropReason, Verdict};
use vipmux::wire::{PacketBuf, TcpFlags, VecBuf};

/// Valid frames of every kind the configuration knows, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        tcp(sa(CLIENT, 1000), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        tcp(
            sa(CLIENT, 1001),
            sa(VIP_NAT, 80),
            TcpFlags::ACK,
            5,
            9,
            b"data",
        ),
        udp(sa(CLIENT, 53), sa(VIP_NAT, 53), b"q"),
        tcp(
            sa(CLIENT, 1002),
            sa(VIP_FLOAT, 80),
            TcpFlags::SYN,
            1,
            0,
            &[],
        ),
        tcp(
            sa(CLIENT, 1003),
            sa(VIP_IPIP, 443),
            TcpFlags::SYN,
            1,
            0,
            b"x",
        ),
        udp(sa(CLIENT, 1004), sa(VIP_GUE, 443), b"quic"),
        udp(sa(CLIENT, 1005), sa(VIP_HA, 9999), b"ha"),
        tcp(sa(VM1, 8080), sa(CLIENT, 1000), TcpFlags::ACK, 1, 2, &[]),
        tcp(
            sa(CLIENT, 1006),
            sa(VIP_NAT, 50120),
            TcpFlags::SYN,
            1,
            0,
            &[],
        ),
        tcp(sa(CLIENT, 1007), sa(VIP_RST, 80), TcpFlags::SYN, 1, 0, &[]),
    ]
}

/// One configuration for every case (compiling Maglev tables per case would dominate).
fn world() -> &'static World {
    static W: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    W.get_or_init(World::standard)
}

#[derive(Debug, Clone)]
enum Input {
    Random(Vec<u8>),
    Mutated {
        seed: usize,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
    },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..160).prop_map(Input::Random),
        (
            0usize..10,
            proptest::collection::vec((0usize..80, any::<u8>()), 0..6),
            proptest::option::of(0usize..90)
        )
            .prop_map(|(seed, flips, cut)| Input::Mutated { seed, flips, cut }),
    ]
}

fn materialise(i: &Input, seeds: &[Vec<u8>]) -> Vec<u8> {
    match i {
        Input::Random(v) => v.clone(),
        Input::Mutated { seed, flips, cut } => {
            let mut f = seeds[*seed % seeds.len()].clone();
            for (at, b) in flips {
                if let Some(x) = f.get_mut(*at) {
                    *x = *b;
                }
            }
            if let Some(c) = cut {
                f.truncate(*c);
            }
            f
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn whole_pipeline_never_panics(
        burst in proptest::collection::vec((input(), 0usize..64), 1..40),
        now in 0u32..1000,
    ) {
        one_burst(world(), &seeds(), &burst, now)?;
    }
}

/// Runs `burst` (inputs over `seeds`, with headroom) through a fresh pipeline at `now`, then a
/// whole expiry sweep: a verdict for every frame, counted, no frame past its buffer.
fn one_burst(
    w: &World,
    seeds: &[Vec<u8>],
    burst: &[(Input, usize)],
    now: u32,
) -> Result<(), TestCaseError> {
    let mut p = pipeline();
    let mut bufs: Vec<VecBuf> = burst
        .iter()
        .map(|(i, headroom)| VecBuf::with_room(*headroom, &materialise(i, seeds), 0))
        .collect();
    let room: Vec<usize> = bufs.iter().map(|b| b.headroom() + b.len()).collect();
    // A sentinel the pipeline never returns from `process`.
    let sentinel = Verdict::Drop(DropReason::TxFull);
    let mut v = vec![sentinel; bufs.len()];
    p.process(&w.view(), 0, &mut bufs, &mut v, now);
    for (k, b) in bufs.iter().enumerate() {
        prop_assert_ne!(v[k], sentinel, "verdict set for frame {}", k);
        prop_assert!(b.len() <= room[k], "frame {} grew past its buffer", k);
        if let Verdict::Forward { port } = v[k] {
            prop_assert_eq!(port, 0);
        }
    }
    let c = p.counters();
    // Every verdict is counted (an exception may count as a drop too).
    let counted = c.tx + c.drops.iter().sum::<u64>() + c.exceptions.iter().sum::<u64>();
    prop_assert!(counted >= bufs.len() as u64);
    // Expiry over the same state never panics either.
    let buckets = p.flow_buckets();
    p.expire(&w.view(), now + 100_000, buckets, |port, f| {
        assert!(port == 0 && f.len() >= 54)
    });
    prop_assert_eq!(p.counters().rx, bufs.len() as u64);
    Ok(())
}

/// The standard configuration with an IPv6 address on its interface and IPv6 rules of every
/// kind (NAT66 with reset on idle, HA ports, IPv6-in-IPv6, GUE over IPv6), and its IPv6
/// neighbours published.
fn world6() -> &'static World {
    static W: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    W.get_or_init(|| {
        let gw = "gateway = \"10.1.0.1\"";
        let text = CONFIG.replacen(
            gw,
            &format!("{gw}\naddress6 = \"fd00:1::2/64\"\ngateway6 = \"fe80::1\""),
            1,
        ) + r#"
[[frontends]]
name = "nat6"
address = "2001:db8:0:1::2"

[[frontends]]
name = "ha6"
address = "2001:db8:0:1::3"

[[frontends]]
name = "tun6"
address = "2001:db8:0:1::4"

[[backend_pools]]
name = "web6"
members = [{ name = "a", address = "fd00:1::11" }, { name = "b", address = "fd00:1::12" }]

[[backend_pools]]
name = "ha6"
members = [{ name = "c", address = "fd00:1::13" }]

[[backend_pools]]
name = "ipip6"
dsr_encapsulation = "ipip"
members = [{ name = "a", address = "fd00:1::11" }]

[[backend_pools]]
name = "gue6"
dsr_encapsulation = "gue"
members = [{ name = "b", address = "fd00:1::12" }]

[[load_balancing_rules]]
name = "nat6"
frontend = "nat6"
protocol = "all"
frontend_port = 80
backend_port = 8080
backend_pool = "web6"
idle_timeout_seconds = 4
enable_tcp_reset = true

[[load_balancing_rules]]
name = "ha6"
frontend = "ha6"
protocol = "all"
frontend_port = 0
backend_port = 0
backend_pool = "ha6"

[[load_balancing_rules]]
name = "ipip6"
frontend = "tun6"
protocol = "tcp"
frontend_port = 443
backend_pool = "ipip6"
enable_floating_ip = true

[[load_balancing_rules]]
name = "gue6"
frontend = "tun6"
protocol = "udp"
frontend_port = 443
backend_pool = "gue6"
enable_floating_ip = true
"#;
        let mut w = World::new(&text);
        let six = ["fe80::1", "fd00:1::11", "fd00:1::12", "fd00:1::13"].map(|a| {
            (
                a.parse().unwrap(),
                vipmux::wire::MacAddr([2, 0, 0, 0, 6, 1]),
                0,
            )
        });
        w.neighbours = w.neighbours.clone().with_ipv6(six.to_vec());
        w
    })
}

/// An Ethernet/IPv6 TCP (flags `syn`/ACK) or UDP frame from `src:sport` to `dst:dport`.
fn frame6(src: &str, sport: u16, dst: &str, dport: u16, proto: u8, syn: bool) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let b =
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], PORT_MAC.0).ipv6(s.octets(), d.octets(), 64);
    let mut out = Vec::new();
    if proto == 6 {
        let t = b.tcp(sport, dport, 1, 1000);
        let t = if syn { t.syn() } else { t.ack(7) };
        t.write(&mut out, b"data").unwrap();
    } else {
        b.udp(sport, dport).write(&mut out, b"data").unwrap();
    }
    out
}

/// Valid IPv6 frames of every kind `world6` knows, to mutate.
fn seeds6() -> Vec<Vec<u8>> {
    let c = "2001:db8::1";
    vec![
        frame6(c, 1000, "2001:db8:0:1::2", 80, 6, true),
        frame6(c, 1000, "2001:db8:0:1::2", 80, 6, false),
        frame6(c, 1001, "2001:db8:0:1::2", 80, 17, false),
        frame6(c, 1002, "2001:db8:0:1::3", 9999, 17, false),
        frame6(c, 1003, "2001:db8:0:1::4", 443, 6, true),
        frame6(c, 1004, "2001:db8:0:1::4", 443, 17, false),
        frame6("fd00:1::11", 8080, c, 1000, 6, false),
        frame6(c, 1005, "fd00:1::2", 22, 6, true),
        frame6(c, 1006, "2001:db8:0:1::9", 80, 6, true),
        tcp(sa(CLIENT, 1000), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// The same over IPv6 frames (the IPv6 lane: NAT66, replies, tunnels, expiry with resets).
    #[test]
    fn whole_pipeline_never_panics_on_ipv6(
        burst in proptest::collection::vec((input(), 0usize..64), 1..40),
        now in 0u32..1000,
    ) {
        one_burst(world6(), &seeds6(), &burst, now)?;
    }
}

#[test]
fn ipv6_seeds_forward() {
    let w = world6();
    let mut p = pipeline();
    for (i, f) in seeds6().iter().enumerate().take(7) {
        let (v, _) = run(&mut p, w, f, 1);
        assert_eq!(v, Verdict::Forward { port: 0 }, "seed {i}");
    }
}
