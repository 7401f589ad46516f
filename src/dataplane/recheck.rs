//! When a known flow's packet may skip the configuration checks (docs/design.md §3.4, §3.8): a
//! packet of a flow re-finds its rule and member in the snapshot (a reload or a health change
//! may have removed them) and, when its member's eligibility matters, asks the snapshot again. Within one snapshot those
//! answers cannot change for one flow key (the key fixes the destination, protocol and port the
//! rule check reads), so after one check a flow's table slot is stamped with the worker's
//! snapshot generation and later packets under the same snapshot take the stored answer.
//!
//! A stamp is `generation << 1 | eligible`: the low bit says the member's eligibility was also
//! checked (a TCP packet that keeps its member does not ask; a non-TCP packet or a SYN on a
//! closed flow does). The table zeroes a slot's stamp whenever the slot gets a new entry, and
//! generations start at 1, so a new entry is checked once; except a new flow in a free slot,
//! which the insert stamps as checked (its rule and member were just chosen from the current
//! snapshot, its member eligible).
//!
//! Generations are 31 bits and wrap to 1: a stamp could only be mistaken for a current one after
//! 2^31 - 1 snapshot changes without a packet of that flow, far beyond any idle timeout.

use crate::balance::snapshot::Snapshot;

/// The worker's snapshot generation: a number that changes whenever the snapshot does.
#[derive(Debug)]
pub struct SnapshotGen {
    /// `Snapshot::uid` of the snapshot of the current generation (0: none yet; uids start at 1).
    /// The uid alone identifies a snapshot: every compile gives a new one, and a clone, which
    /// shares it, gives the same answers.
    seen: u64,
    gen: u32,
}

impl Default for SnapshotGen {
    fn default() -> Self {
        SnapshotGen { seen: 0, gen: 1 }
    }
}

impl SnapshotGen {
    /// The generation of `snap` (a new one when `snap` is not the snapshot of the last call).
    /// Once per burst.
    #[inline]
    pub fn refresh(&mut self, snap: &Snapshot) -> u32 {
        let seen = snap.uid();
        if seen != self.seen {
            self.seen = seen;
            self.gen = if self.gen >= u32::MAX >> 1 {
                1
            } else {
                self.gen + 1
            };
        }
        self.gen
    }
}

/// True when `stamp` says the flow was checked under generation `gen`, and its member's
/// eligibility too unless the packet keeps its member regardless (`kept`).
#[inline(always)]
pub fn is_current(stamp: u32, gen: u32, kept: bool) -> bool {
    // `stamp >> 1 == gen && (kept || stamp & 1 != 0)` as one compare: `kept` sets the low bit
    // the stamp may lack; a 31-bit generation shifts without loss.
    stamp | u32::from(kept) == gen << 1 | 1
}

/// The stamp of a flow checked under generation `gen`; `eligible`: its member's eligibility
/// was checked (and holds).
#[inline(always)]
pub fn stamp(gen: u32, eligible: bool) -> u32 {
    gen << 1 | u32::from(eligible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Health;
    use crate::config::Config;
    use crate::dataplane::{NeighbourMap, Pipeline, PipelineConfig, View};
    use crate::flow::SnatTable;
    use std::net::IpAddr;

    /// Two snapshots of one configuration, the second compiled after the first (a reload).
    fn two_snapshots() -> (Snapshot, Snapshot) {
        two_snapshots_of("demo.toml")
    }

    /// Two snapshots of the example `name`, the second compiled after the first (a reload).
    fn two_snapshots_of(name: &str) -> (Snapshot, Snapshot) {
        let cfg = Config::load(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR")));
        let cfg = cfg.expect("config");
        let health = Health::all_up(&cfg);
        let a = Snapshot::compile(&cfg, &health);
        let b = Snapshot::compile_with_previous(&cfg, &health, Some(&a));
        (a, b)
    }

    #[test]
    fn generation_changes_with_the_snapshot_only() {
        let (a, b) = two_snapshots();
        let mut g = SnapshotGen::default();
        let ga = g.refresh(&a);
        assert_eq!(g.refresh(&a), ga, "same snapshot, same generation");
        let gb = g.refresh(&b);
        assert_ne!(gb, ga, "another snapshot, another generation");
        let ga2 = g.refresh(&a);
        assert_ne!(ga2, gb);
        // A clone shares the uid and the answers: the same generation, wherever it lives.
        let c = a.clone();
        assert_eq!(g.refresh(&c), ga2, "a clone is the same snapshot");
        // A reload compiled in place of a dropped snapshot may reuse its memory; its uid is new.
        drop(b);
        let (_, d) = two_snapshots();
        assert_ne!(g.refresh(&d), ga2, "a new compile is another generation");
    }

    #[test]
    fn stamps_say_what_was_checked() {
        assert!(!is_current(0, 1, true), "a new entry is checked");
        assert!(is_current(stamp(5, false), 5, true));
        assert!(
            !is_current(stamp(5, false), 5, false),
            "eligibility not checked"
        );
        assert!(is_current(stamp(5, true), 5, false));
        assert!(!is_current(stamp(5, true), 6, true), "older generation");
    }

    #[test]
    fn one_compare_agrees_with_the_two_tests() {
        let max = u32::MAX >> 1;
        for gen in [1, 2, 5, 6, max - 1, max] {
            for g in [0, 1, 2, 4, 5, 6, max - 1, max] {
                for stamp in [g << 1, g << 1 | 1] {
                    for kept in [false, true] {
                        let two = stamp >> 1 == gen && (kept || stamp & 1 != 0);
                        assert_eq!(is_current(stamp, gen, kept), two, "{stamp} {gen} {kept}");
                    }
                }
            }
        }
    }

    #[test]
    fn generations_wrap_to_one() {
        let (a, b) = two_snapshots();
        let mut g = SnapshotGen {
            seen: 0,
            gen: (u32::MAX >> 1) - 1,
        };
        assert_eq!(g.refresh(&a), u32::MAX >> 1);
        assert_eq!(g.refresh(&b), 1);
        assert!(is_current(stamp(u32::MAX >> 1, false), u32::MAX >> 1, true));
    }

    /// A new IPv4 flow's insert stamps it as checked under the snapshot that chose its rule and
    /// member (so its next packet, the handshake's ACK, takes the established lane); a reload
    /// makes that stamp old. IPv6: `pipeline6`'s test of the same name.
    #[test]
    fn a_new_flow_is_stamped_checked_by_its_insert() {
        use crate::dataplane::owner::test_rig::frame;
        use crate::dataplane::{EgressPort, Verdict};
        use crate::flow::FlowKey;
        use crate::wire::{MacAddr, VecBuf};
        use std::net::Ipv4Addr;

        let (a, b) = two_snapshots();
        let neighbours = NeighbourMap::default();
        let ports = [EgressPort {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            addr: Ipv4Addr::new(10, 1, 0, 2),
            mtu: 1500,
        }];
        let view = |snapshot| View {
            snapshot,
            neighbours: &neighbours,
            ports: &ports,
        };
        let (client, vip) = (Ipv4Addr::new(192, 0, 2, 7), Ipv4Addr::new(10, 1, 0, 100));
        let mut p = Pipeline::new(&PipelineConfig::default());
        let mut syn = [VecBuf::from_slice(&frame(client, 40000, vip, 80, false))];
        let mut v = [Verdict::Forward { port: 0 }];
        p.process(&view(&a), 0, &mut syn, &mut v, 1);
        let key = FlowKey::new(
            client.into(),
            vip.into(),
            40000,
            80,
            crate::wire::protocol::TCP,
        );
        let hash = key.hash_seeded(p.seed);
        let gen = p.gen;
        let (_, stamp) = p.table.lookup_stamped(&key, hash).expect("the SYN's flow");
        assert!(
            is_current(*stamp, gen, false),
            "checked by its insert: {stamp}"
        );
        p.prepare(&view(&b));
        let (_, stamp) = p.table.lookup_stamped(&key, hash).expect("the flow");
        assert!(!is_current(*stamp, p.gen, true), "a reload: checked again");
    }

    /// Whether `p`'s SNAT table holds a port space for the first outbound frontend of `snap`.
    fn snat_prepared(p: &Pipeline, snap: &Snapshot) -> bool {
        let IpAddr::V4(fe) = snap.outbound[0].frontends[0] else {
            panic!("an IPv4 outbound frontend")
        };
        p.snat.capacity() > 0 && p.snat.has_frontend(u32::from(fe))
    }

    #[test]
    fn snat_is_prepared_on_the_first_snapshot_and_after_each_reload_only() {
        let (a, b) = two_snapshots_of("spec-example.toml");
        assert!(!a.outbound.is_empty());
        let neighbours = NeighbourMap::default();
        let view = |snapshot| View {
            snapshot,
            neighbours: &neighbours,
            ports: &[],
        };
        let mut p = Pipeline::new(&PipelineConfig::default());
        p.prepare(&view(&a));
        assert!(snat_prepared(&p, &a), "the first snapshot");
        // Forget the table: a later burst under the same snapshot does not prepare it again.
        p.snat = SnatTable::new(0);
        p.prepare(&view(&a));
        assert!(!snat_prepared(&p, &a), "same snapshot: prepared once");
        p.prepare(&view(&b));
        assert!(snat_prepared(&p, &b), "a reload");
    }
}
