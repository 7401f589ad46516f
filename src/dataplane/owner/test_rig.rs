//! What the IPv4 and IPv6 ownership tests share: a TCP frame of either family, the owner a
//! pipeline's view gives it, and the check that both directions of a flow have one owner.

use super::frame_owner;
use crate::balance::{Reta, Snapshot};
use crate::dataplane::{EgressPort, NeighbourMap, View};
use crate::wire::ipv6::next_header;
use crate::wire::{ethertype, protocol, MacAddr};
use std::net::{IpAddr, Ipv4Addr};

/// An Ethernet + IP + TCP frame from `src:sport` to `dst:dport` (one family), with a VLAN tag
/// when `vlan` (checksums not filled: ownership does not read them).
pub(in crate::dataplane) fn frame(
    src: impl Into<IpAddr>,
    sport: u16,
    dst: impl Into<IpAddr>,
    dport: u16,
    vlan: bool,
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    }
    match (src.into(), dst.into()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
            f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, protocol::TCP, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, next_header::TCP, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        (s, d) => panic!("{s} and {d} are of two families"),
    }
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

/// `frame_owner` over `snap` with the appliance address 10.1.0.2.
pub(in crate::dataplane) fn owner(f: &[u8], snap: &Snapshot, reta: &Reta) -> Option<usize> {
    let ports = [EgressPort {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        addr: Ipv4Addr::new(10, 1, 0, 2),
        mtu: 1500,
    }];
    let neighbours = NeighbourMap::default();
    let view = View {
        snapshot: snap,
        neighbours: &neighbours,
        ports: &ports,
    };
    frame_owner(f, &view, reta)
}

/// The worker `reta` gives the client endpoint `client:port`.
pub(in crate::dataplane) fn client_owner(reta: &Reta, client: IpAddr, port: u16) -> usize {
    match client {
        IpAddr::V4(a) => reta.owner(u32::from(a), port),
        IpAddr::V6(a) => reta.owner6(u128::from(a), port),
    }
}

/// Asserts that `client:port`'s packets to `vip:80` and `member:8080`'s replies to it, tagged
/// or not, are all owned by the client endpoint's worker, and returns that worker.
pub(in crate::dataplane) fn assert_both_directions(
    snap: &Snapshot,
    reta: &Reta,
    client: impl Into<IpAddr>,
    port: u16,
    (vip, member): (impl Into<IpAddr> + Copy, impl Into<IpAddr> + Copy),
) -> usize {
    let client = client.into();
    let want = client_owner(reta, client, port);
    for vlan in [false, true] {
        let to_vip = frame(client, port, vip, 80, vlan);
        let reply = frame(member, 8080, client, port, vlan);
        assert_eq!(owner(&to_vip, snap, reta), Some(want), "to the VIP");
        assert_eq!(owner(&reply, snap, reta), Some(want), "the member's reply");
    }
    want
}
