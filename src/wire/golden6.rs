//! Golden IPv6 frames for the wire room's tests, produced once with a real stack's packet library
//! (Python scapy 2.5, Debian `python3-scapy`) and pinned here as hex, so the views and builders are
//! checked against bytes they did not produce. Each was made by `bytes(<layers>).hex()` with
//! client 2001:db8::1, server 2001:db8:0:1::2, client MAC 02:11:22:33:44:55, server MAC
//! 02:66:77:88:99:aa and hop limit 64 unless said; the doc line names the scapy layers.

use super::builder::{prepend_ethernet, L2Spec};
use super::{ethertype, MacAddr, PacketBuf, VecBuf};
use std::net::Ipv6Addr;

/// The client address of the frames.
pub(crate) const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The server address of the frames.
pub(crate) const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);

/// The client's MAC (source of the client's frames).
pub(crate) const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
/// The server's MAC.
pub(crate) const SERVER_MAC: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);

/// The bare IPv6 packet `ip` (a golden one, or one made from it) in an Ethernet frame from the
/// client's MAC to the server's, as the golden frames with Ethernet were sent, tagged with `vlan`
/// if given.
pub(crate) fn client_frame(ip: &[u8], vlan: Option<u16>) -> Vec<u8> {
    let l2 = L2Spec {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        vlan,
    };
    let mut b = VecBuf::with_room(l2.header_len(), ip, 0);
    prepend_ethernet(&mut b, &l2, ethertype::IPV6).expect("headroom for the header");
    b.data().to_vec()
}

/// The bytes of a frame written as hex lines.
pub(crate) fn bytes(lines: &[&str]) -> Vec<u8> {
    let hex: String = lines.concat();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// IPv6 (tc 0xb8, flow 0x12345) / Hop-by-Hop / Destination Options / UDP 5353 -> 53 "abcd".
pub(crate) const UDP_EXT: &[&str] = &[
    "6b812345001c004020010db800000000000000000000000120010db80000000100000000000000023c000104",
    "00000000110001040000000014e90035000cca7b61626364",
];

/// IPv6 / TCP SYN 49152 -> 80, seq 1, window 65535, MSS 1440.
pub(crate) const TCP_SYN: &[&str] = &[
    "600000000018064020010db800000000000000000000000120010db8000000010000000000000002c0000050",
    "00000001000000006002ffff7c730000020405a0",
];

/// IPv6 / UDP 40000 -> 6080 "abc".
pub(crate) const UDP: &[&str] = &[
    "60000000000b114020010db800000000000000000000000120010db80000000100000000000000029c4017c0",
    "000b2bff616263",
];

/// IPv6 / Fragment (offset 1480, M, id 0xabcdef01, next UDP) / 8 bytes.
pub(crate) const FRAGMENT: &[&str] = &[
    "6000000000102c4020010db800000000000000000000000120010db8000000010000000000000002110005c9",
    "abcdef013132333435363738",
];
/// Ethernet / IPv6 / ICMPv6 echo request id 0x1234 seq 7 "ping".
pub(crate) const ECHO_REQUEST: &[&str] = &[
    "0266778899aa02112233445586dd60000000000c3a4020010db800000000000000000000000120010db80000",
    "00010000000000000002800033371234000770696e67",
];

/// The reply to [`ECHO_REQUEST`] (MACs and addresses swapped, hop limit 64).
pub(crate) const ECHO_REPLY: &[&str] = &[
    "0211223344550266778899aa86dd60000000000c3a4020010db800000001000000000000000220010db80000",
    "00000000000000000001810032371234000770696e67",
];

/// Ethernet / IPv6 (hop limit 255, to the solicited-node group) / Neighbour Solicitation for the
/// destination address above, with a source link-layer address option.
pub(crate) const NS: &[&str] = &[
    "0266778899aa02112233445586dd6000000000203aff20010db8000000000000000000000001ff0200000000",
    "000000000001ff0000028700b58d0000000020010db80000000100000000000000020101021122334455",
];

/// The Neighbour Advertisement answering [`NS`]: solicited, override, target link-layer address.
pub(crate) const NA: &[&str] = &[
    "0211223344550266778899aa86dd6000000000203aff20010db800000001000000000000000220010db80000",
    "00000000000000000001880078d86000000020010db800000001000000000000000202010266778899aa",
];

/// Ethernet / IPv6 from 2001:db8::fe / ICMPv6 Packet Too Big (MTU 1400) quoting IPv6 / UDP
/// 1000 -> 2000 with 20 bytes "x".
pub(crate) const PTB: &[&str] = &[
    "0211223344550266778899aa86dd60000000004c3a4020010db80000000000000000000000fe20010db80000",
    "0000000000000000000102002a610000057860000000001c114020010db80000000000000000000000012001",
    "0db800000001000000000000000203e807d0001ce3d37878787878787878787878787878787878787878",
];
