//! Transmit back-pressure on a real DPDK ring (`net_ring`, whose tx queue loops back to its rx
//! queue): the worker's out-bursts ([`EgressQueues`]) keep what a full tx ring refuses and send it
//! once the ring drains, in order, with nothing freed; a ring that never drains has its frames
//! freed at the bound (counted by the caller as `tx_full`), then sheds until a send is accepted
//! whole, and every mbuf goes back to the pool; on a memif port (server and client in this
//! process) a link down, the burst gate closed, frees the held frames at once. The back-pressure
//! clock is the test's: no sleeps.

mod dpdk_profiles;

use vipmux::dpdk::{Burst, Eal, Mempool, Port, PortConfig, QueueId};
use vipmux::runtime::worker::tx::{EgressQueues, TxBlockedTally, TX_BLOCKED_MAX};
use vipmux::wire::BURST;

fn eal() -> &'static Eal {
    dpdk_profiles::ring_pair_eal("tests/dpdk_backpressure.rs")
}

/// A 64-byte frame carrying `seq`.
fn frame(seq: u32) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[..6].fill(0xff);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

/// The sequence number in a received frame.
fn seq_of(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[14..18].try_into().expect("4 bytes"))
}

/// A port with 512 tx descriptors (the ring between its tx and rx queue holds at most that).
fn ring_port(eal: &Eal, name: &str, pool: &Mempool) -> Port {
    let config = PortConfig {
        rx_descriptors: 512,
        tx_descriptors: 512,
        ..Default::default()
    };
    Port::open(eal, name, &config, pool).expect("port")
}

/// One worker-like iteration at `now_ns`: retry what the queue refused; when nothing is held,
/// "receive" a burst of new frames (from `next`) and send it. Returns the frames freed.
fn iteration(
    outs: &mut EgressQueues,
    tx: &mut [vipmux::dpdk::TxQueue<'_>],
    pool: &Mempool,
    next: &mut u32,
    limit: u32,
    now_ns: u64,
) -> usize {
    let mut freed = outs.retry(tx, now_ns);
    if outs.is_blocked() {
        return freed;
    }
    let mut burst = Burst::new();
    while *next < limit && !burst.is_full() {
        let mut m = pool.alloc().expect("mbuf");
        assert!(m.extend_from_slice(&frame(*next)));
        burst.push(m).expect("room");
        *next += 1;
    }
    if let Some(n) = outs.send_whole(tx, 0, &mut burst) {
        freed += n;
    }
    freed
}

#[test]
fn refused_frames_wait_and_arrive_in_order_once_the_ring_drains() {
    let eal = eal();
    let pool = Mempool::create(eal, "bp_order", 4095, 0, 2176, None).expect("mempool");
    let port = ring_port(eal, "net_ring0", &pool);
    let mut rxq = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut tx = [port.tx_queue(QueueId(0)).expect("tx queue")];
    let mut outs = EgressQueues::new(1, TX_BLOCKED_MAX);
    const FRAMES: u32 = 3_000;
    let (mut next, mut freed) = (0u32, 0usize);

    // Nobody drains the ring: it fills, the queue refuses, the worker holds the rest and stops
    // "receiving" (the clock stands still, well within the bound).
    let mut iterations = 0;
    while !outs.is_blocked() {
        freed += iteration(&mut outs, &mut tx, &pool, &mut next, FRAMES, 0);
        iterations += 1;
        assert!(iterations < 100, "the 512-slot ring never filled");
    }
    let held = outs.pending(0);
    assert!(held > 0 && held <= BURST, "held {held}");
    for _ in 0..100 {
        freed += iteration(&mut outs, &mut tx, &pool, &mut next, FRAMES, 1_000);
    }
    assert_eq!(outs.pending(0), held, "nothing new while blocked");
    let taken = next;

    // The peer drains: every frame arrives, in order, none freed.
    let mut rx = Burst::new();
    let mut expect = 0u32;
    let mut now = 2_000u64;
    while expect < FRAMES {
        freed += iteration(&mut outs, &mut tx, &pool, &mut next, FRAMES, now);
        now += 1_000;
        rxq.rx_burst(&mut rx);
        for m in rx.iter() {
            assert_eq!(seq_of(m.data()), expect, "frame out of order or lost");
            expect += 1;
        }
        rx.clear();
        assert!(now < 100_000_000, "stuck at frame {expect}");
    }
    assert_eq!(freed, 0, "no frame freed (tx_full 0)");
    assert_eq!(tx[0].dropped(), 0);
    let tally = outs.tally();
    assert!(tally.episodes >= 1, "{tally:?}");
    assert!(!outs.is_blocked());
    assert!(
        taken < FRAMES,
        "the test must block before sending everything"
    );
    drop((rxq, tx));
    port.close().expect("close");
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}

#[test]
fn a_queue_blocked_past_the_bound_frees_its_frames_then_sheds_without_leaking() {
    let eal = eal();
    let pool = Mempool::create(eal, "bp_bound", 4095, 0, 2176, None).expect("mempool");
    let baseline = pool.in_use();
    let port = ring_port(eal, "net_ring1", &pool);
    let mut rxq = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut tx = [port.tx_queue(QueueId(0)).expect("tx queue")];
    let bound = TX_BLOCKED_MAX.as_nanos() as u64;
    let mut outs = EgressQueues::new(1, TX_BLOCKED_MAX);
    let (mut next, mut freed) = (0u32, 0usize);
    let t0 = 5_000u64;
    while !outs.is_blocked() {
        freed += iteration(&mut outs, &mut tx, &pool, &mut next, u32::MAX, t0);
        assert!(next < 10_000, "the ring never filled");
    }
    assert_eq!(freed, 0);
    let held = outs.pending(0);

    // Just before the bound: still held. At the bound: freed, counted by the caller.
    assert_eq!(outs.retry(&mut tx, t0 + bound - 1), 0);
    assert!(outs.is_blocked());
    assert_eq!(outs.retry(&mut tx, t0 + bound), held);
    assert!(!outs.is_blocked());
    assert_eq!(
        outs.tally(),
        TxBlockedTally {
            episodes: 1,
            ns: bound
        }
    );

    // Shedding: the still-full ring's refusals are freed at once, no new episode.
    let before = next;
    let shed = iteration(
        &mut outs,
        &mut tx,
        &pool,
        &mut next,
        u32::MAX,
        t0 + bound + 1,
    );
    assert_eq!(
        shed as u32,
        next - before,
        "a refused burst is freed at once"
    );
    assert!(!outs.is_blocked());
    assert_eq!(outs.tally().episodes, 1);

    // The ring drains: a burst accepted whole ends the shedding; the next refusal holds again.
    let mut rx = Burst::new();
    while rxq.rx_burst(&mut rx) > 0 {
        rx.clear();
    }
    assert_eq!(
        iteration(
            &mut outs,
            &mut tx,
            &pool,
            &mut next,
            u32::MAX,
            t0 + bound + 2
        ),
        0
    );
    assert_eq!(outs.pending(0), 0);
    while !outs.is_blocked() {
        freed += iteration(
            &mut outs,
            &mut tx,
            &pool,
            &mut next,
            u32::MAX,
            t0 + bound + 3,
        );
        assert!(next < 20_000, "the ring never filled again");
    }
    assert_eq!(freed, 0, "held again after shedding ended, not freed");
    assert_eq!(outs.tally().episodes, 2);

    // Nothing leaks: what the worker holds is freed with it, the ring's frames on draining.
    drop(outs);
    while rxq.rx_burst(&mut rx) > 0 {
        rx.clear();
    }
    drop((rxq, tx));
    port.close().expect("close");
    assert_eq!(pool.in_use(), baseline, "every mbuf went back to the pool");
}

/// The EAL with a memif server and client joined by one socket of this process (`net_memif0` the
/// server, `net_memif1` the client: a memif port has the burst gate a link down closes).
fn memif_eal() -> &'static Eal {
    use vipmux::dpdk::{HugepageStatus, Profile};
    let profile = Profile::parse(
        &dpdk_profiles::ring_pair(&dpdk_profiles::hugepages_mode()),
        "tests/dpdk_backpressure.rs",
    )
    .expect("profile");
    let sock = std::env::temp_dir().join(format!("vipmux-bp-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let extra: Vec<String> = ["role=server,id=0", "role=client,id=0"]
        .iter()
        .enumerate()
        .map(|(i, role)| {
            format!(
                "--vdev=net_memif{i},{role},socket={},socket-abstract=no",
                sock.display()
            )
        })
        .collect();
    let plan = profile
        .eal_plan(&extra, HugepageStatus::detect(), std::process::id())
        .expect("plan");
    Eal::init(&plan.args).expect("EAL init")
}

#[test]
fn a_link_down_frees_held_frames_at_once() {
    let eal = memif_eal();
    let pool = Mempool::create(eal, "bp_link", 4095, 0, 2176, None).expect("mempool");
    let baseline = pool.in_use();
    let config = PortConfig::default();
    let server = Port::open(eal, "net_memif0", &config, &pool).expect("memif server");
    let client = Port::open(eal, "net_memif1", &config, &pool).expect("memif client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !client.link().expect("link").up {
        assert!(
            std::time::Instant::now() < deadline,
            "memif never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut tx = [client.tx_queue(QueueId(0)).expect("tx queue")];
    let mut outs = EgressQueues::new(1, TX_BLOCKED_MAX);
    let (mut next, mut freed) = (0u32, 0usize);
    // The server never receives: the client's ring toward it fills and the rest is held.
    while !outs.is_blocked() {
        freed += iteration(&mut outs, &mut tx, &pool, &mut next, u32::MAX, 0);
        assert!(next < 10_000, "the memif ring never filled");
    }
    assert_eq!(freed, 0);
    let held = outs.pending(0);
    assert!(!tx[0].link_closed());
    // The link goes down (what the link watch does: close the gate): freed at once, far within
    // the bound, then shed.
    let gate = client.gate().expect("a memif port has a burst gate");
    gate.close_and_drain();
    assert!(tx[0].link_closed());
    assert_eq!(outs.retry(&mut tx, 1), held);
    assert!(!outs.is_blocked());
    assert_eq!(outs.tally(), TxBlockedTally { episodes: 1, ns: 1 });
    let before = next;
    let shed = iteration(&mut outs, &mut tx, &pool, &mut next, u32::MAX, 2);
    assert_eq!(
        shed as u32,
        next - before,
        "refused while down: freed at once"
    );
    gate.open();
    // Nothing leaks: the server takes what the ring holds and frees it.
    let mut rxq = server.rx_queue(QueueId(0)).expect("rx queue");
    let mut rx = Burst::new();
    while rxq.rx_burst(&mut rx) > 0 {
        rx.clear();
    }
    drop((rxq, tx, outs));
    client.close().expect("close client");
    server.close().expect("close server");
    assert_eq!(pool.in_use(), baseline, "every mbuf went back to the pool");
}
