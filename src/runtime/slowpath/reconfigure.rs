//! The slow-path thread's reconfiguration steps: health changes from the prober and reloads of
//! the configuration, each compiling a new snapshot and swapping it in (workers never wait).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::event_loop::Loop;
use super::setup::{
    frontends_of, interfaces_of, probe_targets, wanted_neighbours, wanted_neighbours6,
};
use crate::balance::{ProbeState, Snapshot};
use crate::config::{Config, ConfigErrors};
use crate::runtime::hub::Shared;
use crate::slowpath::probe::{HealthChange, HealthState, ProbeTarget};
use crate::slowpath::SlowPathConfig;

impl Loop<'_, '_> {
    /// Applies one health change from the prober: records it and recompiles the snapshot.
    pub(super) fn apply_health(&mut self, change: &HealthChange) {
        let meta = self.t.shared.targets.load();
        // A change queued before a reload may name an id that now stands for another member.
        let Some(m) = meta
            .get(change.id as usize)
            .filter(|m| m.addr == change.addr)
        else {
            return;
        };
        let state = if change.up {
            ProbeState::Up
        } else {
            ProbeState::Down
        };
        tracing::info!(probe = %m.probe, member = %m.addr, state = ?state, reason = %change.reason, "health change");
        self.health.set(&m.probe, m.addr, state);
        // Whether it went away or came back, its MAC may have changed: ask again now.
        let now = self.now();
        match m.addr {
            std::net::IpAddr::V4(a) => self.sp.neighbours_mut().revalidate(a, now),
            std::net::IpAddr::V6(a) => self.sp.neighbours6_mut().revalidate(a, now),
        };
        self.recompile();
    }

    /// Ends the settling period after a start (docs/design.md §3.8) once every probe target has
    /// had a first result (at once without a prober: probed members then stay down), and
    /// recompiles so unknown members stop counting as up.
    pub(super) fn settle_after_first_round(&mut self) {
        if !self.health.settling() {
            return;
        }
        let statuses = match self.t.shared.prober.get() {
            Some(p) => p.snapshot(),
            None => Vec::new(),
        };
        let meta = self.t.shared.targets.load();
        // Every target the slow path asked for is known to the prober and has a result (the
        // prober takes its targets asynchronously: an empty list is not a complete round).
        let started = self.t.shared.prober.get().is_none() || statuses.len() >= meta.len();
        if started && statuses.iter().all(|t| t.probes > 0) {
            // Take the decided states from the statuses too: a change still queued on the
            // channel must not leave its member unknown (down) for a moment.
            for t in &statuses {
                let state = match t.state {
                    HealthState::Up => ProbeState::Up,
                    HealthState::Down => ProbeState::Down,
                    HealthState::Unknown => continue,
                };
                if let Some(m) = meta.get(t.id as usize).filter(|m| m.addr == t.addr) {
                    self.health.set(&m.probe, m.addr, state);
                }
            }
            self.health.set_settling(false);
            self.recompile();
            self.t
                .shared
                .bgp
                .first_round_done
                .store(true, Ordering::SeqCst);
            tracing::info!(
                after_ms = self.start.elapsed().as_millis() as u64,
                "first probe round complete: unknown members no longer count as up"
            );
        }
    }

    /// Compiles the current configuration with the current health (keeping the previous
    /// snapshot's tables where unchanged) and swaps it in.
    fn recompile(&mut self) {
        let shared = &self.t.shared;
        let config = shared.config.load();
        let prev = shared.snapshot.load();
        let snap = Snapshot::compile_with_previous(&config, &self.health, Some(&prev));
        for f in frontends_of(&snap) {
            self.sp.set_frontend_up(f.addr, f.any_member_up);
        }
        shared.snapshot.store(Arc::new(snap));
    }

    /// Reloads the configuration from `path` (else the current file): validate, and on success
    /// compile, swap, retarget the slow path, neighbours and prober; on failure change nothing.
    /// Returns the summary line or the error text.
    pub(super) fn reload(&mut self, path: Option<PathBuf>) -> Result<String, String> {
        let shared = Arc::clone(&self.t.shared);
        let (path, config) = load_for_reload(&shared, path)?;
        let prev = shared.snapshot.load();
        // SNAT blocks of members that stay never move (docs/design.md §3.5.6): a file whose new
        // blocks do not fit around them is refused, and nothing changes.
        let snap = Snapshot::try_compile_with_previous(&config, &self.health, Some(&prev))
            .map_err(|mut e| {
                for err in &mut e.0 {
                    err.origin = path.display().to_string();
                }
                refusal(&path, &e)
            })?;
        let now = self.now();
        let spc = SlowPathConfig::new(interfaces_of(&snap, &self.t.macs), frontends_of(&snap));
        self.sp.reconfigure(spc, now);
        self.sp
            .neighbours_mut()
            .set_wanted(wanted_neighbours(&snap), now);
        self.sp
            .neighbours6_mut()
            .set_wanted(wanted_neighbours6(&snap), now);
        let (targets, meta) = probe_targets(&snap);
        let summary = format!(
            "{}: reloaded (generation {}): {} frontends, {} rules, {} members, {} probe targets",
            path.display(),
            shared.generation.load(Ordering::SeqCst) + 1,
            snap.frontends.len(),
            snap.rules.len(),
            snap.members.len(),
            targets.len()
        );
        // Swap the snapshot before the targets: a health event for a new target id then finds
        // its meta, and one for an old id is at worst applied to the old (probe, member) key.
        shared.config.store(Arc::new(config));
        shared.snapshot.store(Arc::new(snap));
        shared.targets.store(Arc::new(meta));
        self.retarget_prober(&shared, targets);
        if let Ok(mut p) = shared.config_path.lock() {
            *p = path;
        }
        shared.generation.fetch_add(1, Ordering::SeqCst);
        self.announce();
        tracing::info!("{summary}");
        Ok(summary)
    }

    /// Hands the prober its new targets; new targets, and those whose probe changed, start over
    /// as Unknown (a stale result of an earlier configuration must not keep them up).
    fn retarget_prober(&mut self, shared: &Shared, targets: Vec<ProbeTarget>) {
        let Some(p) = shared.prober.get() else {
            return;
        };
        match p.update_targets(targets) {
            Ok(report) => {
                let meta = shared.targets.load();
                let mut changed = false;
                for id in report.added.iter().chain(&report.reset) {
                    if let Some(m) = meta.get(*id as usize) {
                        self.health.set(&m.probe, m.addr, ProbeState::Unknown);
                        changed = true;
                    }
                }
                if changed {
                    self.recompile();
                }
            }
            Err(e) => tracing::warn!("prober update failed: {e}"),
        }
    }
}

/// The answer to a reload refused with `errors`.
fn refusal(path: &std::path::Path, errors: &ConfigErrors) -> String {
    format!(
        "{errors}\n{}: {} error{}, nothing applied",
        path.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    )
}

/// The configuration a reload would apply, from `path` or else the current file: valid, and
/// with the same interfaces (ports, names, addresses are fixed at start).
fn load_for_reload(shared: &Shared, path: Option<PathBuf>) -> Result<(PathBuf, Config), String> {
    let path = match path {
        Some(p) => p,
        None => shared
            .config_path
            .lock()
            .map_err(|_| "config path lock poisoned".to_string())?
            .clone(),
    };
    let config = Config::load(&path).map_err(|e| refusal(&path, &e))?;
    let old = shared.config.load();
    let same_ports = old.interfaces.len() == config.interfaces.len()
        && old.interfaces.iter().zip(&config.interfaces).all(|(a, b)| {
            a.port == b.port
                && a.name == b.name
                && a.address == b.address
                && a.address6 == b.address6
        });
    if !same_ports {
        return Err(format!(
            "{}: interfaces changed (ports, names or addresses); they are fixed at start: restart vipmux to change them. Nothing applied",
            path.display()
        ));
    }
    Ok((path, config))
}
