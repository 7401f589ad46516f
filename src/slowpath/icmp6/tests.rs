//! Tests of [`super`] on golden frames (made by a real stack's packet library, `wire::golden6`).

use super::*;
use crate::slowpath::ratelimit::RateSpec;
use crate::wire::golden6::{self, bytes, CLIENT, SERVER};

const OUR_MAC: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);
const OUR_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);

fn limiter() -> TokenBucket {
    TokenBucket::new(RateSpec::new(1000, 50), 0)
}

/// Ethernet (as the golden PTB's offending packet was sent: client MAC to server MAC) / the UDP
/// packet the golden PTB quotes.
fn offending() -> Vec<u8> {
    let ptb = bytes(golden6::PTB);
    let mut f = vec![
        0x02, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
    ];
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&ptb[14 + 48..]);
    f
}

#[test]
fn echo_to_a_frontend_gets_the_golden_reply() {
    let mut f = bytes(golden6::ECHO_REQUEST);
    let mut l = limiter();
    let a = echo_reply6(&mut f, 3, &[SERVER], &mut l, 0);
    let n = bytes(golden6::ECHO_REPLY).len();
    assert_eq!(a, Action::ReplyInPlace { iface: 3, len: n });
    assert_eq!(&f[..n], &bytes(golden6::ECHO_REPLY)[..]);
    let mut f = bytes(golden6::ECHO_REQUEST);
    assert_eq!(
        echo_reply6(&mut f, 3, &[CLIENT], &mut l, 0),
        Action::Drop(SlowPathDrop::NotForUs)
    );
    let last = f.len() - 1;
    f[last] ^= 1;
    assert_eq!(
        echo_reply6(&mut f, 3, &[SERVER], &mut l, 0),
        Action::Drop(SlowPathDrop::BadChecksum)
    );
    let mut r = bytes(golden6::ECHO_REPLY);
    assert_eq!(
        echo_reply6(&mut r, 3, &[CLIENT], &mut l, 0),
        Action::Drop(SlowPathDrop::Unsupported)
    );
    // Over the rate: the burst of 50, then nothing within the same instant.
    let mut l = limiter();
    let answered = (0..60)
        .filter(|_| {
            let mut f = bytes(golden6::ECHO_REQUEST);
            matches!(
                echo_reply6(&mut f, 0, &[SERVER], &mut l, 0),
                Action::ReplyInPlace { .. }
            )
        })
        .count();
    assert_eq!(answered, 50);
}

#[test]
fn packet_too_big_matches_golden_and_is_rate_limited() {
    let f = offending();
    let mut l = limiter();
    let a = packet_too_big(&f, 2, OUR_MAC, OUR_IP, 1400, &mut l, 0);
    assert_eq!(
        a,
        Action::SendOnPort {
            iface: 2,
            frame: bytes(golden6::PTB)
        }
    );
    // The reported MTU is at least 1280.
    let Action::SendOnPort { frame, .. } = packet_too_big(&f, 2, OUR_MAC, OUR_IP, 600, &mut l, 0)
    else {
        panic!("not sent")
    };
    let m = Icmpv6Packet::new_checked(&frame[54..]).unwrap();
    assert_eq!((m.msg_type(), m.mtu()), (2, 1280));
    assert!(m.verify_checksum(OUR_IP, CLIENT));
    // The bucket empties: 50 in a burst, then refused until it refills.
    let mut l = limiter();
    let sent = (0..60)
        .filter(|_| {
            matches!(
                packet_too_big(&f, 2, OUR_MAC, OUR_IP, 1400, &mut l, 0),
                Action::SendOnPort { .. }
            )
        })
        .count();
    assert_eq!(sent, 50);
    assert_eq!(
        packet_too_big(&f, 2, OUR_MAC, OUR_IP, 1400, &mut l, 0),
        Action::Drop(SlowPathDrop::RateLimited)
    );
    assert!(matches!(
        packet_too_big(&f, 2, OUR_MAC, OUR_IP, 1400, &mut l, 2_000_000),
        Action::SendOnPort { .. }
    ));
}

#[test]
fn time_exceeded_quotes_the_packet() {
    let f = offending();
    let Action::SendOnPort { frame, iface } =
        hop_limit_exceeded(&f, 1, OUR_MAC, OUR_IP, &mut limiter(), 0)
    else {
        panic!("not sent")
    };
    assert_eq!(iface, 1);
    assert_eq!(&frame[..6], &f[6..12], "to the previous hop");
    let m = Icmpv6Packet::new_checked(&frame[54..]).unwrap();
    assert_eq!((m.msg_type(), m.code()), (3, 0));
    assert_eq!(m.data(), &f[14..]);
    assert_eq!(m.inner_flow().unwrap().ports, Some((1000, 2000)));
}

#[test]
fn errors_are_suppressed_where_rfc_4443_says() {
    let mut l = limiter();
    let drop = Action::Drop(SlowPathDrop::IcmpSuppressed);
    // About an ICMPv6 error.
    assert_eq!(
        hop_limit_exceeded(&bytes(golden6::PTB), 0, OUR_MAC, OUR_IP, &mut l, 0),
        drop
    );
    // From a multicast or unspecified source.
    for src in [
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
    ] {
        let mut f = offending();
        f[22..38].copy_from_slice(&src.octets());
        assert_eq!(hop_limit_exceeded(&f, 0, OUR_MAC, OUR_IP, &mut l, 0), drop);
    }
    // To a multicast address: no Time Exceeded, but Packet Too Big.
    let mut f = offending();
    f[38..54].copy_from_slice(&Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 9).octets());
    assert_eq!(hop_limit_exceeded(&f, 0, OUR_MAC, OUR_IP, &mut l, 0), drop);
    assert!(matches!(
        packet_too_big(&f, 0, OUR_MAC, OUR_IP, 1400, &mut l, 0),
        Action::SendOnPort { .. }
    ));
    // About an echo request: allowed.
    assert!(matches!(
        hop_limit_exceeded(&bytes(golden6::ECHO_REQUEST), 0, OUR_MAC, OUR_IP, &mut l, 0),
        Action::SendOnPort { .. }
    ));
    // Not IPv6.
    assert_eq!(
        hop_limit_exceeded(&offending()[..30], 0, OUR_MAC, OUR_IP, &mut l, 0),
        Action::Drop(SlowPathDrop::Malformed)
    );
}
