//! net_ring loopback: more than 10,000 crafted frames sent and received back, every byte
//! checked; `Mbuf` edits (prepend/append/adj/trim) on real mbufs. Runs as root, with or without
//! hugepages (the profile's `auto` mode picks).

mod dpdk_profiles;

use vipmux::dpdk::{Burst, Eal, Mbuf, Mempool, Port, PortConfig, QueueId};
use vipmux::wire::PacketBuf;

fn eal() -> &'static Eal {
    dpdk_profiles::ring_pair_eal("tests/dpdk_ring.rs")
}

/// Frame `seq`: a length between 60 and 1514 and a pattern derived from `seq` in every byte.
fn frame(seq: u32) -> Vec<u8> {
    let len = 60 + (seq as usize * 97) % (1514 - 60 + 1);
    let mut f: Vec<u8> = (0..len)
        .map(|i| (seq as usize * 31 + i * 7) as u8)
        .collect();
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

#[test]
fn ring_loopback_every_byte_back() {
    let eal = eal();
    let pool = Mempool::create(eal, "ring_loopback", 4095, 256, 2176, None).expect("mempool");
    let port = Port::open(
        eal,
        "net_ring0",
        &PortConfig {
            rx_descriptors: 512,
            tx_descriptors: 512,
            ..Default::default()
        },
        &pool,
    )
    .expect("port");
    assert!(port.link().expect("link").up);
    let mut rxq = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut txq = port.tx_queue(QueueId(0)).expect("tx queue");
    assert!(
        port.rx_queue(QueueId(0)).is_err(),
        "a queue can be taken once"
    );

    const FRAMES: u32 = 12_000;
    let mut next_tx = 0u32;
    let mut next_rx = 0u32;
    let mut tx = Burst::new();
    let mut rx = Burst::new();
    let mut idle_polls = 0u32;
    while next_rx < FRAMES {
        while next_tx < FRAMES && !tx.is_full() {
            let mut m: Mbuf = pool.alloc().expect("mbuf");
            assert!(m.extend_from_slice(&frame(next_tx)));
            tx.push(m).expect("room");
            next_tx += 1;
        }
        let out = txq.tx_burst_keep(&mut tx);
        assert_eq!(out.sent + out.unsent, out.sent + tx.len());
        let got = rxq.rx_burst(&mut rx);
        if got == 0 {
            idle_polls += 1;
            assert!(
                idle_polls < 1_000_000,
                "ring stopped delivering at frame {next_rx}"
            );
            continue;
        }
        idle_polls = 0;
        for m in rx.iter() {
            assert!(m.is_contiguous());
            assert_eq!(
                m.data(),
                frame(next_rx).as_slice(),
                "frame {next_rx} differs"
            );
            assert_eq!(m.pkt_len(), m.len());
            next_rx += 1;
        }
        rx.clear();
    }
    assert_eq!(next_rx, FRAMES);
    let stats = port.stats().expect("stats");
    assert_eq!(stats.opackets, u64::from(FRAMES));
    assert_eq!(stats.ipackets, u64::from(FRAMES));
    assert_eq!(txq.dropped(), 0);
    drop((rxq, txq));
    port.close().expect("close");
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}

#[test]
fn mbuf_edits_and_tx_drop_accounting() {
    let eal = eal();
    let pool = Mempool::create(eal, "ring_edits", 2047, 64, 2176, None).expect("mempool");
    let mut m = pool.alloc().expect("mbuf");
    assert!(m.is_empty());
    assert_eq!(m.headroom(), 128);
    assert!(m.extend_from_slice(b"payload"));
    m.prepend(4).expect("headroom").copy_from_slice(b"HDR:");
    assert_eq!(m.data(), b"HDR:payload");
    assert_eq!(
        (m.headroom(), m.pkt_len()),
        (124, 11),
        "prepend moves the packet's front"
    );
    assert!(m.adj(4));
    assert!(m.trim(3));
    assert_eq!(m.data(), b"payl");
    m.data_mut()[0] = b'P';
    assert_eq!(m.data(), b"Payl");
    assert!(!m.adj(5), "adj beyond the data is refused");
    assert!(!m.trim(5), "trim beyond the data is refused");
    assert!(
        m.prepend(129).is_none(),
        "prepend beyond the headroom is refused"
    );
    let room = m.headroom();
    assert!(m.prepend(room + 1).is_none() && m.prepend(room).is_some());
    assert!(m.adj(room), "all of the headroom prepended, and taken back");
    assert!(
        m.append(m.tailroom() + 1).is_none(),
        "append beyond the tailroom is refused"
    );
    assert_eq!(m.data(), b"Payl");
    // Truncate (the pipeline's trait): shorter cuts both lengths, longer changes nothing.
    PacketBuf::truncate(&mut m, 9);
    assert_eq!((m.data(), m.pkt_len()), (&b"Payl"[..], 4));
    PacketBuf::truncate(&mut m, 3);
    assert_eq!((m.data(), m.pkt_len()), (&b"Pay"[..], 3));
    assert!(m.extend_from_slice(b"l"));
    assert_eq!(m.data(), b"Payl");
    m.reset();
    assert!(m.is_empty());

    let mut burst = Burst::new();
    assert_eq!(pool.alloc_bulk(&mut burst, 40), 32);
    assert!(burst.push(m).is_err(), "full burst gives the mbuf back");
    assert_eq!(burst.retain(|_| false), 32);
    assert!(burst.is_empty());

    // A ring port with 512 descriptors refuses part of a long stream: unsent mbufs are freed and counted.
    let port = Port::open(
        eal,
        "net_ring1",
        &PortConfig {
            rx_descriptors: 512,
            tx_descriptors: 512,
            ..Default::default()
        },
        &pool,
    )
    .expect("port");
    let mut txq = port.tx_queue(QueueId(0)).expect("tx queue");
    let (mut sent, mut unsent) = (0, 0);
    for _ in 0..40 {
        pool.alloc_bulk(&mut burst, 32);
        for m in burst.iter_mut() {
            assert!(m.extend_from_slice(&frame(1)));
        }
        let out = txq.tx_burst(&mut burst);
        assert!(burst.is_empty());
        sent += out.sent;
        unsent += out.unsent;
    }
    assert_eq!(sent + unsent, 40 * 32);
    assert!(unsent > 0, "the ring must have filled up");
    assert_eq!(txq.dropped(), unsent as u64);
    drop(txq);
    port.close().expect("close");
}
