//! Tests of [`super::classify6`] on golden frames (made by a real stack's packet library, see
//! `wire::golden6`) and mutated or random bytes.

use super::*;
use crate::wire::golden6::{self, bytes, client_frame, CLIENT, SERVER};
use crate::wire::ipv6;
use proptest::prelude::*;

const OWN: u128 = 0x2001_0db8_0000_0001_0000_0000_0000_00fe;

fn addrs() -> AddressList6<'static> {
    const FRONTENDS: &[u128] = &[SERVER.to_bits()];
    const OWN_LIST: &[u128] = &[OWN];
    AddressList6 {
        own: OWN_LIST,
        frontends: FRONTENDS,
    }
}

#[test]
fn tcp_syn_meta() {
    let f = client_frame(&bytes(golden6::TCP_SYN), Some(7));
    let m = classify6(&f, &addrs()).unwrap();
    assert_eq!((m.l3, m.l4, m.ip_len, m.vlan), (18, 58, 64, Some(7)));
    assert_eq!(
        (m.key.src_ip, m.key.dst_ip),
        (CLIENT.to_bits(), SERVER.to_bits())
    );
    assert_eq!((m.key.proto, m.hop_limit, m.tcp_flags), (6, 64, 0x02));
    assert_eq!(
        (m.key.src_port, m.key.dst_port, m.seq, m.ack, m.payload),
        (49152, 80, 1, 0, 0)
    );
    assert_eq!(
        m.key,
        crate::flow::FlowKey6::new(CLIENT.to_bits(), SERVER.to_bits(), 49152, 80, 6)
    );
}

#[test]
fn udp_behind_extension_headers() {
    let mut f = client_frame(&bytes(golden6::UDP_EXT), None);
    f.extend_from_slice(&[0; 6]); // Ethernet padding is not payload
    let m = classify6(&f, &addrs()).unwrap();
    // Hop-by-Hop (8) + Destination Options (8) before UDP.
    assert_eq!((m.l4, m.ip_len, m.key.proto), (14 + 56, 68, 17));
    assert_eq!((m.key.src_port, m.key.dst_port, m.tcp_flags), (5353, 53, 0));
    // A zero UDP checksum is invalid over IPv6.
    let at = usize::from(m.l4) + 6;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    assert_eq!(
        classify6(&f, &addrs()),
        Err(Verdict::Drop(DropReason::BadHeader))
    );
}

#[test]
fn fragments_go_to_the_slow_path() {
    let f = client_frame(&bytes(golden6::FRAGMENT), None);
    assert_eq!(
        classify6(&f, &addrs()),
        Err(Verdict::ToSlowPath(Exception::Fragment))
    );
    // An atomic fragment (offset 0, no more fragments) too.
    let mut a = f.clone();
    a[14 + 42..14 + 44].copy_from_slice(&[0, 0]);
    assert_eq!(
        classify6(&a, &addrs()),
        Err(Verdict::ToSlowPath(Exception::Fragment))
    );
}

#[test]
fn icmpv6_kinds() {
    let a = addrs();
    let slow = |e| Err(Verdict::ToSlowPath(e));
    // Neighbour Discovery, to a multicast group or not.
    assert_eq!(
        classify6(&bytes(golden6::NS), &a),
        slow(Exception::NeighbourDiscovery)
    );
    assert_eq!(
        classify6(&bytes(golden6::NA), &a),
        slow(Exception::NeighbourDiscovery)
    );
    // Echo request to a frontend.
    let echo = bytes(golden6::ECHO_REQUEST);
    assert_eq!(classify6(&echo, &a), slow(Exception::IcmpToFrontend));
    // ... and to an address that is no frontend: forwarded like any packet (a rule may match).
    let none = AddressList6::default();
    let m = classify6(&echo, &none).unwrap();
    assert_eq!((m.key.proto, m.key.src_port, m.key.dst_port), (58, 0, 0));
    // Packet Too Big in transit is an error about a flow; to a frontend it is IcmpToFrontend.
    let ptb = bytes(golden6::PTB);
    assert_eq!(classify6(&ptb, &none), slow(Exception::IcmpError));
    let to_client = [CLIENT.to_bits()];
    let fe = AddressList6 {
        own: &[],
        frontends: &to_client,
    };
    assert_eq!(classify6(&ptb, &fe), slow(Exception::IcmpToFrontend));
    // Other errors by type: destination unreachable, time exceeded, parameter problem.
    for t in [1u8, 3, 4] {
        let mut e = ptb.clone();
        e[54] = t;
        assert_eq!(classify6(&e, &none), slow(Exception::IcmpError), "type {t}");
    }
    // An echo reply in transit is not an error.
    let mut r = bytes(golden6::ECHO_REPLY);
    r[14 + 7] = 64;
    assert!(classify6(&r, &none).is_ok());
}

#[test]
fn appliance_address_and_hop_limit() {
    let mut f = client_frame(&bytes(golden6::TCP_SYN), None);
    f[14 + 24..14 + 40].copy_from_slice(&OWN.to_be_bytes());
    assert_eq!(
        classify6(&f, &addrs()),
        Err(Verdict::ToSlowPath(Exception::ToAppliance))
    );
    let mut h = client_frame(&bytes(golden6::UDP), None);
    for (hl, ok) in [(0u8, false), (1, false), (2, true), (255, true)] {
        h[14 + ipv6::field::HOP_LIMIT] = hl;
        let r = classify6(&h, &addrs());
        if ok {
            assert_eq!(r.map(|m| m.hop_limit), Ok(hl));
        } else {
            assert_eq!(r, Err(Verdict::ToSlowPath(Exception::TtlExceeded)));
        }
    }
}

#[test]
fn not_ipv6_and_every_truncation() {
    let mut v4 = client_frame(&bytes(golden6::UDP), None);
    v4[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    assert_eq!(
        classify6(&v4, &addrs()),
        Err(Verdict::Drop(DropReason::Unsupported))
    );
    for g in [golden6::TCP_SYN, golden6::UDP_EXT, golden6::UDP] {
        let f = client_frame(&bytes(g), None);
        assert!(classify6(&f, &addrs()).is_ok());
        for n in 0..f.len() {
            assert_eq!(
                classify6(&f[..n], &addrs()),
                Err(Verdict::Drop(DropReason::BadHeader)),
                "cut at {n}"
            );
        }
    }
    // A chain of 9 Destination Options headers is longer than the walk allows.
    let mut long = bytes(golden6::UDP);
    let udp = long.split_off(40);
    long[6] = next_header::DEST_OPTS;
    for i in 0..9 {
        let nh = if i == 8 {
            next_header::UDP
        } else {
            next_header::DEST_OPTS
        };
        long.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]);
    }
    long.extend_from_slice(&udp);
    let pl = (long.len() - 40) as u16;
    long[4..6].copy_from_slice(&pl.to_be_bytes());
    assert_eq!(
        classify6(&client_frame(&long, None), &addrs()),
        Err(Verdict::Drop(DropReason::BadHeader))
    );
}

/// Golden frames to mutate (Ethernet in front where they are bare IPv6).
fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        golden6::TCP_SYN,
        golden6::UDP_EXT,
        golden6::UDP,
        golden6::FRAGMENT,
    ]
    .iter()
    .map(|g| client_frame(&bytes(g), None))
    .collect();
    for g in [
        golden6::ECHO_REQUEST,
        golden6::NS,
        golden6::NA,
        golden6::PTB,
    ] {
        v.push(bytes(g));
    }
    v
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..160)) {
        let mut f = b.clone();
        if f.len() > 14 {
            f[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        }
        for x in [&b, &f] {
            let _ = classify6(x, &addrs());
        }
    }

    /// Any mutation of a golden frame classifies without panicking, and an accepted packet's
    /// offsets lie inside the frame.
    #[test]
    fn mutated_frames_stay_inside(
        seed in 0usize..8,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut f = seeds().swap_remove(seed);
        for (i, v) in flips {
            let i = i % f.len();
            f[i] = v;
        }
        let f = &f[..(cut % (f.len() + 1)).max(f.len() / 2)];
        if let Ok(m) = classify6(f, &addrs()) {
            prop_assert!(usize::from(m.l3) + m.ip_len as usize <= f.len());
            prop_assert!(usize::from(m.l4) <= usize::from(m.l3) + m.ip_len as usize);
            prop_assert!(m.hop_limit > 1);
        }
    }
}

/// The fast path gives exactly what the general path gives, on frames with any one byte of the
/// headers changed (versions, lengths, next headers, offsets, flags, hop limits, addresses) and
/// every truncation.
#[test]
fn fast_path_agrees_with_general_path() {
    let mut f = client_frame(&bytes(golden6::TCP_SYN), None);
    f.extend_from_slice(&[0; 4]); // Ethernet padding
    let a = addrs();
    let mut fast_taken = 0;
    let mut check = |fr: &[u8]| {
        let mut m = Meta6::default();
        if let Some(key) = classify6_tcp_fast(fr, &a, &mut m) {
            fast_taken += 1;
            assert_eq!(classify6_general(fr, &a), Ok(m), "frame {fr:?}");
            assert_eq!(key, m.key, "frame {fr:?}");
        }
    };
    check(&f);
    for n in 0..f.len() {
        check(&f[..n]);
    }
    for at in 0..f.len() {
        for val in [
            0u8, 1, 2, 4, 5, 6, 0x0f, 0x10, 0x11, 0x14, 0x20, 0x2c, 0x40, 0x50, 0x60, 0x86, 0xdd,
            0xfe, 0xff,
        ] {
            let mut g = f.clone();
            g[at] = val;
            check(&g);
        }
    }
    // To the appliance: the general path's verdict.
    let mut own = f.clone();
    own[14 + 24..14 + 40].copy_from_slice(&OWN.to_be_bytes());
    check(&own);
    assert!(fast_taken > 100);
    assert!(classify6_tcp_fast(&f, &a, &mut Meta6::default()).is_some());
    assert!(classify6_tcp_fast(&own, &a, &mut Meta6::default()).is_none());
}
