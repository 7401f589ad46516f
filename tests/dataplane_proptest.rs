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

/// [`World::dual_stack`], built once.
fn world6() -> &'static World {
    static W: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    W.get_or_init(World::dual_stack)
}

/// Valid IPv6 frames of every kind `world6` knows, to mutate.
fn seeds6() -> Vec<Vec<u8>> {
    let c = CLIENT6;
    vec![
        frame6(c, 1000, VIP6_NAT, 80, 6, true),
        frame6(c, 1000, VIP6_NAT, 80, 6, false),
        frame6(c, 1001, VIP6_NAT, 80, 17, false),
        frame6(c, 1002, VIP6_HA, 9999, 17, false),
        frame6(c, 1003, VIP6_TUN, 443, 6, true),
        frame6(c, 1004, VIP6_TUN, 443, 17, false),
        frame6(VM6_1, 8080, c, 1000, 6, false),
        frame6(c, 1005, OWN6, 22, 6, true),
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
