//! Fuzz target: arbitrary bytes, cut into a burst of frames, through the whole data path
//! (classify, flow lookup, decide, rewrite, outbound SNAT of the members' own traffic, expiry with
//! resets). The pipeline must never panic, must give every frame a verdict, and must never grow a
//! frame past its buffer. The configuration has IPv6 rules too, so IPv6 frames take the
//! pipeline's IPv6 lane (NAT66, replies, tunnels, ICMPv6 errors, expiry with resets). Every frame
//! also goes through the IPv6 pieces one by one: `classify6`, then the `rewrite6` delivery its
//! bytes select (NAT66, its reverse, MAC rewrite, IPv6-in-IPv6 or GUE over IPv6), and
//! `icmp_error6`'s quote reading and rewrites, under the same rules.
//!
//! Run: `scripts/fuzz.sh pipeline`, or from the repository root
//! `cargo fuzz run -s none pipeline`.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::config::DsrEncapsulation;
use vipmux::dataplane::classify6::{classify6, AddressList6};
use vipmux::dataplane::icmp_error6::{quoted_flow6, rewrite_outer6, rewrite_quote6, Quote6};
use vipmux::dataplane::rewrite6::End6;
use vipmux::dataplane::rewrite6::{reply_to_client6, to_member6, Target6};
use vipmux::dataplane::route::Hop;
use vipmux::dataplane::NeighbourMap;
use vipmux::dataplane::{EgressPort, Pipeline, PipelineConfig, Verdict, View};
use vipmux::slowpath::{NeighbourTable, NeighbourTimers, SlowPathInterface};
use vipmux::wire::{MacAddr, PacketBuf, VecBuf};

const CONFIG: &str = include_str!("pipeline.toml");
const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const PORT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const HEADROOM: usize = 128;
const ROOM: usize = 2048;

struct World {
    snapshot: Snapshot,
    neighbours: NeighbourMap,
    ports: Vec<EgressPort>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let config = Config::from_str(CONFIG, "pipeline.toml").expect("fuzz config is valid");
        let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
        let mut table = NeighbourTable::new(
            vec![SlowPathInterface::new(
                "dc",
                PORT_MAC,
                PORT_ADDR,
                24,
                Some(Ipv4Addr::new(10, 1, 0, 1)),
            )],
            NeighbourTimers::default(),
        );
        for host in [1u8, 11, 12, 13] {
            let ip = Ipv4Addr::new(10, 1, 0, host);
            table.learn(0, ip, MacAddr([2, 0, 10, 1, 0, host]), 0, true);
        }
        let six = ["fe80::1", "2001:db8:0:1::11", "2001:db8:0:1::12"]
            .map(|a| (a.parse().expect("address"), MacAddr([2, 0, 0, 0, 6, 1]), 0));
        World {
            neighbours: table.snapshot().with_ipv6(six.to_vec()),
            snapshot,
            ports: vec![EgressPort {
                mac: PORT_MAC,
                addr: PORT_ADDR,
                mtu: 1500,
            }],
        }
    })
}

/// The IPv6 frontend and appliance address the IPv6 pieces are given.
const VIP6: u128 = 0x2001_0db8_0000_0001_0000_0000_0000_0002;
const OWN6: u128 = 0x2001_0db8_0000_0001_0000_0000_0000_00fe;

/// `frame` through `classify6` and, when it classifies, the `rewrite6` delivery `sel` picks; an
/// ICMPv6 error's quote rewritten both ways.
fn ipv6_path(frame: &[u8], sel: u8) {
    if let Quote6::Flow(q) = quoted_flow6(frame) {
        let mut f = frame.to_vec();
        for end in [End6::Src, End6::Dst] {
            rewrite_quote6(&mut f, &q, end, VIP6, u16::from(sel));
            rewrite_outer6(&mut f, &q, end, Some(OWN6));
        }
        assert_eq!(f[q.end..], frame[q.end..], "an ICMPv6 error rewrite wrote past its packet");
    }
    let addrs = AddressList6 {
        own: &[OWN6],
        frontends: &[VIP6],
    };
    let Ok(m) = classify6(frame, &addrs) else {
        return;
    };
    let hop = Hop {
        port: 0,
        src_mac: PORT_MAC,
        dst_mac: MacAddr([2, 0, 0, 0, 0, sel]),
        macs: [sel; 12],
        mtu: 1280 + u16::from(sel) * 4,
        src_addr: 0x0a01_0001,
    };
    let encap = match sel % 3 {
        0 => DsrEncapsulation::None,
        1 => DsrEncapsulation::Ipip,
        _ => DsrEncapsulation::Gue,
    };
    let t = Target6 {
        addr: u128::from(sel) << 64 | 0xfd00 << 112,
        port: u16::from(sel) * 257,
        floating: sel & 4 != 0,
        encap,
        gue_port: 6080,
        l4_delta: None,
    };
    let mut b = VecBuf::with_room(HEADROOM, frame, ROOM);
    let v = if sel & 8 != 0 {
        reply_to_client6(&mut b, &m, VIP6, 80, &hop)
    } else {
        to_member6(&mut b, &m, &t, &hop, OWN6, u32::from(sel))
    };
    assert!(b.len() <= HEADROOM + ROOM + 255, "IPv6 frame grew past its buffer");
    if !matches!(v, Verdict::Forward { .. }) {
        assert_eq!(b.data(), frame, "a refused IPv6 frame is left as it was");
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let view = View {
        snapshot: &w.snapshot,
        neighbours: &w.neighbours,
        ports: &w.ports,
    };
    let mut pipeline = Pipeline::new(&PipelineConfig {
        flow_capacity: 256,
        recent_capacity: 256,
        flow_capacity6: None,
    });
    // Input: [time step, then frames as (length byte, bytes)...], repeated bursts.
    let mut rest = data;
    let mut now = 1u32;
    while let Some((&step, tail)) = rest.split_first() {
        rest = tail;
        now = now.wrapping_add(u32::from(step % 64));
        let mut bufs: Vec<VecBuf> = Vec::new();
        while bufs.len() < 32 {
            let Some((&len, tail)) = rest.split_first() else {
                break;
            };
            let n = usize::from(len).min(tail.len());
            ipv6_path(&tail[..n], step ^ len);
            bufs.push(VecBuf::with_room(HEADROOM, &tail[..n], ROOM));
            rest = &tail[n..];
            if len == 0 {
                break;
            }
        }
        let mut verdicts = vec![Verdict::Forward { port: usize::MAX }; bufs.len()];
        pipeline.process(&view, 0, &mut bufs, &mut verdicts, now);
        for (b, v) in bufs.iter().zip(&verdicts) {
            assert!(
                b.len() <= HEADROOM + ROOM + 255,
                "frame grew past its buffer"
            );
            assert!(
                !matches!(v, Verdict::Forward { port } if *port == usize::MAX),
                "frame left without a verdict"
            );
        }
        pipeline.expire(&view, now, 64, |_, frame| {
            assert!(frame.len() >= 54, "a crafted reset is a whole frame");
        });
    }
});
