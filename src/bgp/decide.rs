//! The announce decision, pure: for each VIP, announce or withdraw (and why), from the MUX's
//! readiness and what the compiled snapshot says about the VIP's members.
//!
//! A VIP is announced only while all of these hold: the MUX is forwarding; its first probe round
//! is complete (a MUX that joins must not attract rehashed mid-flow packets before it knows which
//! members are up); the VIP has a rule with an eligible member (which includes the
//! `no_healthy_backends = "all"` fallback); the MUX is not draining; and the frontend does not opt
//! out with `announce = false`. While draining with `graceful_shutdown`, routes stay announced for
//! a short while carrying the GRACEFUL_SHUTDOWN community before they are withdrawn (the caller
//! says which phase it is in).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Serialize;

use super::{Route, GRACEFUL_SHUTDOWN};
use crate::balance::snapshot::FrontendId;
use crate::balance::Snapshot;
use crate::config::Config;

/// How long a drain keeps its routes announced with GRACEFUL_SHUTDOWN before withdrawing them,
/// counted from when the daemon's helper first reports them so ([`graceful_phase_open`]).
pub const GRACEFUL_PHASE: Duration = Duration::from_secs(2);
/// How long a drain waits for that report before counting the phase from its own start instead
/// (a stuck or dead daemon does not hold the withdrawal back any longer).
pub const GRACEFUL_REPORT_WAIT: Duration = Duration::from_secs(2);

/// Whether a drain's graceful phase still runs, `since_drain` after the drain started and
/// `since_reported` after the helper first reported every announced route carrying
/// GRACEFUL_SHUTDOWN (`None`: not yet): [`GRACEFUL_PHASE`] from that report, so that the peers
/// have the community for the whole phase however long the daemon took to get it; without the
/// report, until [`GRACEFUL_REPORT_WAIT`] + [`GRACEFUL_PHASE`] after the drain started.
pub fn graceful_phase_open(since_drain: Duration, since_reported: Option<Duration>) -> bool {
    match since_reported {
        Some(d) => d < GRACEFUL_PHASE,
        None => since_drain < GRACEFUL_REPORT_WAIT + GRACEFUL_PHASE,
    }
}

/// The MUX-wide conditions of the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Ports up and every worker polling.
    pub forwarding: bool,
    /// Every probe target has a first result (or there is none).
    pub probes_complete: bool,
    /// Draining (`vipmux drain` or a stop signal).
    pub draining: bool,
    /// Draining, but still in the GRACEFUL_SHUTDOWN phase (routes re-announced with it).
    pub graceful_phase: bool,
}

/// Why a VIP is not announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// `announce = false`, or no `[bgp]` table.
    OptedOut,
    /// The MUX is not forwarding yet (or any more).
    NotForwarding,
    /// The first probe round has not completed.
    FirstProbeRound,
    /// No rule of the VIP has an eligible member.
    NoEligibleMember,
    /// The MUX is draining.
    Draining,
}

impl WithdrawReason {
    /// The snake_case name shown in status.
    pub fn name(&self) -> &'static str {
        match self {
            WithdrawReason::OptedOut => "opted_out",
            WithdrawReason::NotForwarding => "not_forwarding",
            WithdrawReason::FirstProbeRound => "first_probe_round",
            WithdrawReason::NoEligibleMember => "no_eligible_member",
            WithdrawReason::Draining => "draining",
        }
    }
}

/// The decision for one VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceVerdict {
    /// Announce (with GRACEFUL_SHUTDOWN added when `graceful` is set).
    Announce {
        /// Add the GRACEFUL_SHUTDOWN community.
        graceful: bool,
    },
    /// Withdraw, for this reason.
    Withdraw(WithdrawReason),
}

/// The decision for one VIP from the MUX's readiness, whether the frontend is announced at all
/// (`opted_in`) and whether one of its rules has an eligible member (`can_serve`).
pub fn decide(r: &Readiness, opted_in: bool, can_serve: bool) -> AnnounceVerdict {
    use WithdrawReason::*;
    if !opted_in {
        AnnounceVerdict::Withdraw(OptedOut)
    } else if !r.forwarding {
        AnnounceVerdict::Withdraw(NotForwarding)
    } else if !r.probes_complete {
        AnnounceVerdict::Withdraw(FirstProbeRound)
    } else if !can_serve {
        AnnounceVerdict::Withdraw(NoEligibleMember)
    } else if r.draining && !r.graceful_phase {
        AnnounceVerdict::Withdraw(Draining)
    } else {
        AnnounceVerdict::Announce {
            graceful: r.draining,
        }
    }
}

/// One frontend's decision with the route it would announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipDecision {
    /// The route (communities include GRACEFUL_SHUTDOWN in the graceful phase).
    pub route: Route,
    /// Announce or withdraw.
    pub verdict: AnnounceVerdict,
}

/// Whether a frontend of `snapshot` has a rule with an eligible member (`"all"` fallback included).
pub fn can_serve(snapshot: &Snapshot, fe: FrontendId) -> bool {
    snapshot.frontends.get(fe.index()).is_some_and(|f| {
        f.rules
            .iter()
            .filter_map(|r| snapshot.rule(*r))
            .any(|r| r.eligible.iter().any(|e| *e))
    })
}

/// The next hop announced: `[bgp] next_hop`, else the first interface's address.
pub fn next_hop(config: &Config) -> Option<Ipv4Addr> {
    let bgp = config.bgp.as_ref()?;
    bgp.next_hop
        .or_else(|| config.interfaces.first().map(|i| i.address.addr))
}

/// The next hop announced for a VIP of `vip`'s family (see [`next_hop`] and
/// `config::validate::bgp::next_hop6`).
pub fn next_hop_for(config: &Config, vip: IpAddr) -> Option<IpAddr> {
    match vip {
        IpAddr::V4(_) => next_hop(config).map(IpAddr::V4),
        IpAddr::V6(_) => crate::config::validate::bgp::next_hop6(config).map(IpAddr::V6),
    }
}

/// Every frontend's decision (empty without `[bgp]`), in configuration order. A VIP whose
/// family has no next hop is left out (the configuration's validation refuses it when announced).
pub fn decisions(config: &Config, snapshot: &Snapshot, r: &Readiness) -> Vec<VipDecision> {
    let Some(bgp) = config.bgp.as_ref() else {
        return Vec::new();
    };
    config
        .frontends
        .iter()
        .filter_map(|fe| Some((fe, next_hop_for(config, fe.address)?)))
        .map(|(fe, nh)| {
            let id = snapshot
                .frontends
                .iter()
                .position(|f| f.name == fe.name)
                .map(|i| FrontendId(i as u32));
            let serve = id.is_some_and(|id| can_serve(snapshot, id));
            let verdict = decide(r, fe.announced(Some(bgp)), serve);
            let mut communities = bgp.communities.clone();
            if matches!(verdict, AnnounceVerdict::Announce { graceful: true }) {
                communities.push(GRACEFUL_SHUTDOWN.to_string());
            }
            VipDecision {
                route: Route {
                    frontend: fe.name.clone(),
                    prefix: fe.address,
                    next_hop: nh,
                    communities,
                },
                verdict,
            }
        })
        .collect()
}

/// The routes to announce among `decisions`.
pub fn wanted(decisions: &[VipDecision]) -> Vec<Route> {
    decisions
        .iter()
        .filter(|d| matches!(d.verdict, AnnounceVerdict::Announce { .. }))
        .map(|d| d.route.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Health;

    const READY: Readiness = Readiness {
        forwarding: true,
        probes_complete: true,
        draining: false,
        graceful_phase: false,
    };

    #[test]
    fn table_of_cases() {
        use WithdrawReason::*;
        let not = |f: fn(&mut Readiness)| {
            let mut r = READY;
            f(&mut r);
            r
        };
        let announce = AnnounceVerdict::Announce { graceful: false };
        let cases: &[(Readiness, bool, bool, AnnounceVerdict)] = &[
            (READY, true, true, announce),
            (READY, false, true, AnnounceVerdict::Withdraw(OptedOut)),
            (
                READY,
                true,
                false,
                AnnounceVerdict::Withdraw(NoEligibleMember),
            ),
            (
                not(|r| r.forwarding = false),
                true,
                true,
                AnnounceVerdict::Withdraw(NotForwarding),
            ),
            (
                not(|r| r.probes_complete = false),
                true,
                true,
                AnnounceVerdict::Withdraw(FirstProbeRound),
            ),
            (
                not(|r| r.draining = true),
                true,
                true,
                AnnounceVerdict::Withdraw(Draining),
            ),
            (
                not(|r| {
                    r.draining = true;
                    r.graceful_phase = true
                }),
                true,
                true,
                AnnounceVerdict::Announce { graceful: true },
            ),
            // A VIP that cannot serve is withdrawn even in the graceful phase.
            (
                not(|r| {
                    r.draining = true;
                    r.graceful_phase = true
                }),
                true,
                false,
                AnnounceVerdict::Withdraw(NoEligibleMember),
            ),
            // Opting out wins over everything.
            (
                not(|r| r.forwarding = false),
                false,
                false,
                AnnounceVerdict::Withdraw(OptedOut),
            ),
        ];
        for (i, (r, opted, serve, want)) in cases.iter().enumerate() {
            assert_eq!(
                decide(r, *opted, *serve),
                *want,
                "case {i}: {r:?} {opted} {serve}"
            );
        }
    }

    const CONFIG: &str = r#"
[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"

[[frontends]]
name = "web"
address = "10.9.0.1"

[[frontends]]
name = "quiet"
address = "10.9.0.2"
announce = false

[[frontends]]
name = "all"
address = "10.9.0.3"

[[backend_pools]]
name = "p"
members = [{ name = "a", address = "10.1.0.11" }]

[[probes]]
name = "tcp"
protocol = "tcp"
port = 80

[[load_balancing_rules]]
name = "web"
frontend = "web"
protocol = "tcp"
frontend_port = 80
backend_pool = "p"
probe = "tcp"

[[load_balancing_rules]]
name = "quiet"
frontend = "quiet"
protocol = "tcp"
frontend_port = 80
backend_port = 81
backend_pool = "p"

[bgp]
local_as = 65010
router_id = "10.1.0.2"
communities = ["65010:1"]

[[bgp.peers]]
address = "10.1.0.1"
remote_as = 65000
"#;

    #[test]
    fn decisions_follow_probes_and_flags() {
        let c = Config::from_str(CONFIG, "t").unwrap();
        let snap = Snapshot::compile(&c, &Health::new());
        let d = decisions(&c, &snap, &READY);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].route.next_hop, IpAddr::from([10, 1, 0, 2]));
        assert_eq!(d[0].route.communities, vec!["65010:1".to_string()]);
        // web: probed, member not up yet; quiet: opted out; all: no rule at all.
        assert_eq!(
            d[0].verdict,
            AnnounceVerdict::Withdraw(WithdrawReason::NoEligibleMember)
        );
        assert_eq!(
            d[1].verdict,
            AnnounceVerdict::Withdraw(WithdrawReason::OptedOut)
        );
        assert_eq!(
            d[2].verdict,
            AnnounceVerdict::Withdraw(WithdrawReason::NoEligibleMember)
        );
        assert!(wanted(&d).is_empty());

        let all = CONFIG.replace(
            "[[interfaces]]",
            "[appliance]\nno_healthy_backends = \"all\"\n\n[[interfaces]]",
        );
        let c = Config::from_str(&all, "t").unwrap();
        let snap = Snapshot::compile(&c, &Health::new());
        let graceful = Readiness {
            draining: true,
            graceful_phase: true,
            ..READY
        };
        let w = wanted(&decisions(&c, &snap, &graceful));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].prefix, IpAddr::from([10, 9, 0, 1]));
        assert_eq!(
            w[0].communities,
            vec!["65010:1".to_string(), GRACEFUL_SHUTDOWN.to_string()]
        );
    }

    #[test]
    fn ipv6_vips_are_announced_with_the_ipv6_next_hop() {
        let text = CONFIG
            .replace(
                "address = \"10.1.0.2/24\"",
                "address = \"10.1.0.2/24\"\naddress6 = \"fd00:1::2/64\"",
            )
            .replace(
                "members = [{ name = \"a\", address = \"10.1.0.11\" }]",
                "members = [{ name = \"a\", address = \"10.1.0.11\" }]\n\n\
                 [[backend_pools]]\nname = \"p6\"\nmembers = [{ name = \"a6\", address = \"fd00:1::11\" }]\n\n\
                 [[frontends]]\nname = \"web6\"\naddress = \"fd00:9::1\"\n\n\
                 [[load_balancing_rules]]\nname = \"web6\"\nfrontend = \"web6\"\nprotocol = \"tcp\"\n\
                 frontend_port = 80\nbackend_pool = \"p6\"",
            );
        let c = Config::from_str(&text, "t").unwrap_or_else(|e| panic!("{e}"));
        let snap = Snapshot::compile(&c, &Health::new());
        let d = decisions(&c, &snap, &READY);
        let six = d.iter().find(|d| d.route.frontend == "web6").unwrap();
        assert_eq!(six.route.prefix, "fd00:9::1".parse::<IpAddr>().unwrap());
        assert_eq!(six.route.next_hop, "fd00:1::2".parse::<IpAddr>().unwrap());
        assert_eq!(six.route.cidr(), "fd00:9::1/128");
        // No probe: the member is eligible, so the /128 is wanted; draining withdraws it.
        assert_eq!(six.verdict, AnnounceVerdict::Announce { graceful: false });
        let draining = Readiness {
            draining: true,
            ..READY
        };
        let d = decisions(&c, &snap, &draining);
        let six = d.iter().find(|d| d.route.frontend == "web6").unwrap();
        assert_eq!(
            six.verdict,
            AnnounceVerdict::Withdraw(WithdrawReason::Draining)
        );
        // `next_hop6` overrides the interface's address6.
        let c = Config::from_str(
            &text.replace(
                "local_as = 65010",
                "local_as = 65010\nnext_hop6 = \"fd00:1::99\"",
            ),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let d = decisions(&c, &snap, &READY);
        let six = d.iter().find(|d| d.route.frontend == "web6").unwrap();
        assert_eq!(six.route.next_hop, "fd00:1::99".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn graceful_phase_runs_from_the_report_or_waits_a_bounded_time() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Reported at once: the phase runs GRACEFUL_PHASE from the report.
        assert!(graceful_phase_open(ms(100), Some(ms(50))));
        assert!(graceful_phase_open(s(2), Some(ms(1_950))));
        assert!(!graceful_phase_open(ms(2_150), Some(s(2))));
        // A slow daemon reported late: the peers still get the whole phase.
        assert!(graceful_phase_open(ms(3_500), Some(ms(1_900))));
        assert!(!graceful_phase_open(ms(3_700), Some(ms(2_100))));
        // Never reported: open until the wait and the phase have passed, then closed.
        assert!(graceful_phase_open(ms(3_999), None));
        assert!(!graceful_phase_open(s(4), None));
        assert_eq!(GRACEFUL_REPORT_WAIT + GRACEFUL_PHASE, s(4));
    }

    #[test]
    fn nothing_without_bgp() {
        let c = Config::from_str(
            &CONFIG[..CONFIG.find("[bgp]").unwrap()].replace("announce = false\n", ""),
            "t",
        )
        .unwrap();
        let snap = Snapshot::compile(&c, &Health::new());
        assert!(decisions(&c, &snap, &READY).is_empty());
    }
}
