//! The appliance side of `vipmux capture`: compiles a [`CaptureSpec`] against the running
//! snapshot, arms one [`CaptureRing`] per worker, and drains the rings into the JSON batches the
//! control socket answers (docs/design.md §4.8). One capture at a time; one nobody reads for
//! [`CAPTURE_LEASE`] is disarmed by a watchdog thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::balance::Snapshot;
use crate::config::Protocol;
use crate::control::capture::{
    to_hex, CaptureBatch, CaptureOp, CaptureRecord, CaptureSpec, CaptureStarted, CAPTURE_LEASE,
    CAPTURE_READ_WAIT, DEFAULT_SNAPLEN,
};
use crate::dataplane::capture::{CaptureFlow, CaptureMatch, FrontendMatch};
use crate::runtime::capture::{CaptureRing, CAPTURE_RING_SLOTS, MAX_SNAPLEN};
use crate::runtime::Shared;

/// The running capture.
#[derive(Debug)]
struct Session {
    id: u64,
    rings: Vec<Arc<CaptureRing>>,
    last_read: Instant,
}

impl Session {
    /// Takes every copied record and the tallies.
    fn drain(&self) -> CaptureBatch {
        let mut batch = CaptureBatch::default();
        for ring in &self.rings {
            ring.drain(|worker, slot| {
                batch.records.push(CaptureRecord {
                    worker: worker as u32,
                    interface: u32::from(slot.port),
                    what: slot.kind.describe(),
                    ts_ns: slot.ts_ns,
                    orig_len: slot.orig_len,
                    data: to_hex(slot.bytes()),
                });
            });
            batch.matched += ring.matched.load(Ordering::Relaxed);
            batch.lost += ring.lost.load(Ordering::Relaxed);
        }
        batch.records.sort_by_key(|r| r.ts_ns);
        batch
    }
}

/// The capture state of the appliance (at most one capture).
#[derive(Debug, Default)]
pub struct Captures {
    current: Mutex<Option<Session>>,
    next_id: AtomicU64,
}

/// The filter `spec` asks for, with frontend and rule names resolved in `snap`.
pub fn compile_filter(spec: &CaptureSpec, snap: &Snapshot) -> Result<CaptureMatch, String> {
    let mut m = CaptureMatch::default();
    for r in &spec.reasons {
        m.add_reason(r)?;
    }
    if spec.exceptions {
        m.exceptions = u64::MAX;
    }
    m.forwarded = spec.forwarded;
    if spec.reasons.is_empty() && !spec.exceptions && !spec.forwarded {
        m.drops = CaptureMatch::all_drops().drops;
    }
    if let Some(name) = &spec.frontend {
        let fe = snap
            .frontends
            .iter()
            .find(|f| &f.name == name)
            .ok_or_else(|| format!("unknown frontend {name:?}"))?;
        m.frontend = Some(FrontendMatch {
            addr: fe.addr,
            proto: 0,
            ports: (0, u16::MAX),
        });
    }
    if let Some(name) = &spec.rule {
        let rule = snap
            .rules
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| format!("unknown rule {name:?}"))?;
        let addr = rule.frontend_addr;
        if m.frontend.is_some_and(|f| f.addr != addr) {
            return Err(format!(
                "rule {name:?} is not on frontend {:?}",
                spec.frontend
            ));
        }
        let any = rule.ha_ports || rule.protocol == Protocol::All;
        m.frontend = Some(FrontendMatch {
            addr,
            proto: match rule.protocol {
                _ if any => 0,
                Protocol::Tcp => 6,
                _ => 17,
            },
            ports: if rule.ha_ports {
                (0, u16::MAX)
            } else {
                (rule.frontend_port, rule.frontend_port_end)
            },
        });
    }
    if let Some(flow) = &spec.flow {
        m.flow = Some(CaptureFlow::parse(flow)?);
    }
    Ok(m)
}

impl Captures {
    /// Answers one `capture` request.
    pub fn handle(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        op: CaptureOp,
    ) -> Result<serde_json::Value, String> {
        let value = match op {
            CaptureOp::Start(spec) => {
                let started = self.start(shared, &spec)?;
                self.watch(shared, started.id);
                serde_json::to_value(started)
            }
            CaptureOp::Read { id } => serde_json::to_value(self.read(id)?),
            CaptureOp::Stop { id } => serde_json::to_value(self.stop(shared, id)?),
        };
        value.map_err(|e| e.to_string())
    }

    fn start(&self, shared: &Shared, spec: &CaptureSpec) -> Result<CaptureStarted, String> {
        let filter = Arc::new(compile_filter(spec, &shared.snapshot.load())?);
        let snaplen = spec.snaplen.unwrap_or(DEFAULT_SNAPLEN);
        if !(14..=MAX_SNAPLEN).contains(&snaplen) {
            return Err(format!(
                "snaplen {snaplen}: expected 14 to {MAX_SNAPLEN} bytes"
            ));
        }
        let mut current = self.current.lock().map_err(|_| "capture state poisoned")?;
        if let Some(s) = current.as_ref() {
            return Err(format!("capture {} is already running", s.id));
        }
        let rings: Vec<Arc<CaptureRing>> = (0..shared.workers.len())
            .map(|w| {
                Arc::new(CaptureRing::new(
                    Arc::clone(&filter),
                    w,
                    CAPTURE_RING_SLOTS,
                    snaplen,
                ))
            })
            .collect();
        for (slot, ring) in shared.workers.iter().zip(&rings) {
            slot.capture.arm(Arc::clone(ring));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        *current = Some(Session {
            id,
            rings,
            last_read: Instant::now(),
        });
        tracing::info!(id, ?spec, "capture armed");
        Ok(CaptureStarted {
            id,
            interfaces: shared.port_names.clone(),
            workers: shared.workers.len() as u32,
            snaplen,
        })
    }

    /// Disarms capture `id` once nobody read it for [`CAPTURE_LEASE`] (its command was killed),
    /// from a thread of its own that ends with the capture.
    fn watch(self: &Arc<Self>, shared: &Arc<Shared>, id: u64) {
        let (me, shared) = (Arc::clone(self), Arc::clone(shared));
        let spawned = std::thread::Builder::new()
            .name("vipmux-capture-lease".into())
            .spawn(move || loop {
                std::thread::sleep(CAPTURE_LEASE / 5);
                let Ok(mut current) = me.current.lock() else {
                    return;
                };
                match current.as_ref() {
                    Some(s) if s.id == id && s.last_read.elapsed() >= CAPTURE_LEASE => {
                        disarm(&shared);
                        *current = None;
                        tracing::warn!(id, "capture abandoned: not read for {CAPTURE_LEASE:?}");
                        return;
                    }
                    Some(s) if s.id == id => {}
                    _ => return,
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "capture: no lease watchdog; an abandoned capture stays armed");
        }
    }

    /// The records since the last read, waiting up to [`CAPTURE_READ_WAIT`] for a first one.
    fn read(&self, id: u64) -> Result<CaptureBatch, String> {
        let deadline = Instant::now() + CAPTURE_READ_WAIT;
        loop {
            let batch = {
                let mut current = self.current.lock().map_err(|_| "capture state poisoned")?;
                let s = current
                    .as_mut()
                    .filter(|s| s.id == id)
                    .ok_or_else(|| format!("no capture {id} is running"))?;
                s.last_read = Instant::now();
                s.drain()
            };
            if !batch.records.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            std::thread::sleep(CAPTURE_READ_WAIT / 20);
        }
    }

    fn stop(&self, shared: &Shared, id: u64) -> Result<CaptureBatch, String> {
        let mut current = self.current.lock().map_err(|_| "capture state poisoned")?;
        if current.as_ref().map(|s| s.id) != Some(id) {
            return Err(format!("no capture {id} is running"));
        }
        disarm(shared);
        let s = current.take().ok_or("no capture is running")?;
        let batch = s.drain();
        tracing::info!(
            id,
            matched = batch.matched,
            lost = batch.lost,
            "capture stopped"
        );
        Ok(batch)
    }
}

/// Disarms every worker.
fn disarm(shared: &Shared) {
    for slot in &shared.workers {
        slot.capture.disarm();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::balance::Health;
    use crate::config::Config;
    use crate::dataplane::DropReason;

    fn snapshot() -> Snapshot {
        let text = include_str!("../../examples/demo.toml");
        let c = Config::from_str(text, "demo.toml").expect("valid config");
        Snapshot::compile(&c, &Health::new())
    }

    #[test]
    fn names_resolve_to_addresses_protocols_and_ports() {
        let snap = snapshot();
        let vip = Ipv4Addr::new(10, 1, 0, 100);
        let spec = CaptureSpec {
            frontend: Some("web-fe".into()),
            ..CaptureSpec::default()
        };
        let m = compile_filter(&spec, &snap).unwrap();
        assert_eq!(m.drops, CaptureMatch::all_drops().drops);
        assert_eq!(
            m.frontend,
            Some(FrontendMatch {
                addr: vip.into(),
                proto: 0,
                ports: (0, u16::MAX)
            })
        );
        let spec = CaptureSpec {
            reasons: vec!["no_healthy_backend".into()],
            rule: Some("echo-b1".into()),
            flow: Some("10.0.0.1:5-10.1.0.100:7001/tcp".into()),
            ..CaptureSpec::default()
        };
        let m = compile_filter(&spec, &snap).unwrap();
        assert_eq!(m.drops, 1 << DropReason::NoHealthyBackend.index());
        assert_eq!(
            m.frontend,
            Some(FrontendMatch {
                addr: vip.into(),
                proto: 6,
                ports: (7001, 7001)
            })
        );
        assert!(m.flow.is_some());
    }

    #[test]
    fn unknown_names_are_errors() {
        let snap = snapshot();
        for (spec, want) in [
            (
                CaptureSpec {
                    frontend: Some("nope".into()),
                    ..CaptureSpec::default()
                },
                "unknown frontend \"nope\"",
            ),
            (
                CaptureSpec {
                    rule: Some("nope".into()),
                    ..CaptureSpec::default()
                },
                "unknown rule \"nope\"",
            ),
            (
                CaptureSpec {
                    reasons: vec!["nope".into()],
                    ..CaptureSpec::default()
                },
                "unknown reason \"nope\"",
            ),
        ] {
            let err = compile_filter(&spec, &snap).unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn exceptions_and_forwarded_replace_the_all_drops_default() {
        let snap = snapshot();
        let spec = CaptureSpec {
            exceptions: true,
            ..CaptureSpec::default()
        };
        let m = compile_filter(&spec, &snap).unwrap();
        assert_eq!((m.drops, m.exceptions, m.forwarded), (0, u64::MAX, false));
        let spec = CaptureSpec {
            forwarded: true,
            ..CaptureSpec::default()
        };
        let m = compile_filter(&spec, &snap).unwrap();
        assert_eq!((m.drops, m.exceptions, m.forwarded), (0, 0, true));
    }
}
