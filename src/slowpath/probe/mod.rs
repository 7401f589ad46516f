//! Health probes of backend pool members (docs/design.md §4.3).
//!
//! One [`Prober`] thread runs every probe of every member on a single-threaded async runtime, so
//! thousands of members at a 5 s interval need one thread, not thousands. Each target is probed
//! at a fixed rate of its [`ProbeSpec::interval`]; the first probes of a batch of targets are
//! staggered evenly over one interval (deterministically, without random jitter) so that a large
//! pool does not open all its connections at the same instant.
//!
//! What counts as success:
//! - **TCP**: the three-way handshake completes. Refused (RST) or any other connect error is a
//!   failure, and so is no handshake within the probe timeout.
//! - **HTTP / HTTPS**: `GET request_path HTTP/1.1` with a `Host` header and `Connection: close`;
//!   status 200 is a success, any other status is a failure at once, a malformed answer is a
//!   failure, and no status line within the timeout is a failure (`Timeout`). HTTPS performs TLS
//!   without checking the server's certificate (as Azure does); only the handshake signature is
//!   checked against the key the server presented.
//!
//! The probe timeout is `min(interval, 30 s)` for every protocol.
//!
//! Up/down decision ([`HealthTracker`]): a member starts [`HealthState::Unknown`]. From Unknown,
//! the **first success** marks it Up (Azure marks a new instance healthy after one successful
//! probe) and `threshold` consecutive failures mark it Down. From Up, `threshold` consecutive
//! failures mark it Down; from Down, `threshold` consecutive successes mark it Up
//! (`probe_threshold` in Azure's sense). An HTTP status other than 200 marks it Down at once,
//! from Unknown or Up, as Azure does; the other failures count toward `threshold`.
//!
//! Publication never makes the data path wait: state transitions are sent as [`HealthChange`]
//! events on an unbounded channel consumed by the slow path, and the per-target
//! [`TargetStatus`] (last result, reason, time, consecutive count) is kept in a table behind a
//! mutex that only the prober thread and status readers touch.

mod check;
mod http;
mod prober;
mod tls;
mod tracker;

pub use check::tcp_reachability;
pub use prober::{Prober, ProberHandle, ProberOptions, UpdateReport, DEFAULT_MAX_IN_FLIGHT};
pub use tracker::HealthTracker;

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// The longest any single probe may wait for its answer, whatever the interval.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest interval the prober will run at (a zero interval would spin).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub use crate::config::ProbeProtocol;

/// How to probe a member: the compiled form of one `[[probes]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ProbeSpec {
    /// TCP, HTTP or HTTPS.
    pub protocol: ProbeProtocol,
    /// Destination port on the member.
    pub port: u16,
    /// Path of the GET request (HTTP/HTTPS only); a missing leading `/` is added.
    pub request_path: String,
    /// Time between two probes of one member (the product's minimum is 1 s; tests go lower).
    pub interval: Duration,
    /// Consecutive results needed to flip a member (`probe_threshold`, at least 1).
    pub threshold: u32,
}

impl ProbeSpec {
    /// A TCP probe of `port` every `interval`, flipping after `threshold` results.
    pub fn tcp(port: u16, interval: Duration, threshold: u32) -> Self {
        ProbeSpec {
            protocol: ProbeProtocol::Tcp,
            port,
            request_path: String::new(),
            interval,
            threshold,
        }
    }

    /// An HTTP probe of `port` and `path` every `interval`, flipping after `threshold` results.
    pub fn http(port: u16, path: &str, interval: Duration, threshold: u32) -> Self {
        ProbeSpec {
            protocol: ProbeProtocol::Http,
            port,
            request_path: path.to_string(),
            interval,
            threshold,
        }
    }

    /// An HTTPS probe of `port` and `path` every `interval`, flipping after `threshold` results.
    pub fn https(port: u16, path: &str, interval: Duration, threshold: u32) -> Self {
        ProbeSpec {
            protocol: ProbeProtocol::Https,
            ..ProbeSpec::http(port, path, interval, threshold)
        }
    }

    /// The interval actually used (at least [`MIN_INTERVAL`]).
    pub fn effective_interval(&self) -> Duration {
        self.interval.max(MIN_INTERVAL)
    }

    /// How long one probe may wait: `min(interval, 30 s)`.
    pub fn timeout(&self) -> Duration {
        self.effective_interval().min(MAX_PROBE_TIMEOUT)
    }

    /// The threshold actually used (at least 1).
    pub fn effective_threshold(&self) -> u32 {
        self.threshold.max(1)
    }

    /// Whether a change from `self` to `other` probes something else (so old results no longer
    /// apply): protocol, port or path differ. Interval and threshold changes keep the state.
    pub(crate) fn same_probe(&self, other: &ProbeSpec) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && (self.protocol == ProbeProtocol::Tcp || self.request_path == other.request_path)
    }
}

/// One member to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ProbeTarget {
    /// The caller's key for the member (unique among the targets of one prober).
    pub id: u32,
    /// The member's address.
    pub addr: IpAddr,
    /// How to probe it.
    pub spec: ProbeSpec,
    /// The address its probes leave from (the appliance's address on the interface toward the
    /// member); `None`: the prober's default source.
    pub source: Option<IpAddr>,
}

impl ProbeTarget {
    /// A target `id` at `addr` (IPv4 or IPv6) probed as `spec`, from the prober's default source.
    pub fn new(id: u32, addr: impl Into<IpAddr>, spec: ProbeSpec) -> Self {
        ProbeTarget {
            id,
            addr: addr.into(),
            spec,
            source: None,
        }
    }

    /// The same target, its probes leaving from `source` (`None`: the prober's default; a
    /// source of the other family than the target is not used).
    pub fn with_source<A: Into<IpAddr>>(self, source: Option<A>) -> Self {
        let source = source.map(Into::into);
        ProbeTarget { source, ..self }
    }
}

/// Health of one member as decided by its probe results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Not yet decided (no success and fewer than `threshold` failures since start or reset).
    Unknown,
    /// Probe up: eligible for new flows.
    Up,
    /// Probe down: no new flows.
    Down,
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthState::Unknown => "unknown",
            HealthState::Up => "up",
            HealthState::Down => "down",
        })
    }
}

/// The outcome of one probe and, for failures, why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeReason {
    /// Success: handshake completed (TCP) or status 200 (HTTP/HTTPS).
    Ok,
    /// The member answered the SYN with a RST: nothing listens on the port.
    Refused,
    /// No handshake or no answer within `min(interval, 30 s)` (firewall drop, hung server).
    Timeout,
    /// The connection was reset after it was established, before an answer came.
    Reset,
    /// The HTTP status was not 200.
    HttpStatus(u16),
    /// The TLS handshake failed (text from the TLS library).
    TlsError(String),
    /// Another connect or I/O error (unreachable, no route, bind failure, ...).
    ConnectError(String),
    /// The answer was not an HTTP/1.x status line (or the connection closed before one).
    BadResponse,
}

impl ProbeReason {
    /// Whether this outcome counts as a successful probe.
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeReason::Ok)
    }
}

impl fmt::Display for ProbeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeReason::Ok => f.write_str("ok"),
            ProbeReason::Refused => f.write_str("connection refused"),
            ProbeReason::Timeout => f.write_str("timeout"),
            ProbeReason::Reset => f.write_str("connection reset"),
            ProbeReason::HttpStatus(s) => write!(f, "HTTP {s}"),
            ProbeReason::TlsError(e) => write!(f, "TLS error: {e}"),
            ProbeReason::ConnectError(e) => write!(f, "connect error: {e}"),
            ProbeReason::BadResponse => f.write_str("bad HTTP response"),
        }
    }
}

/// What the status command and `diagnose` see for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    /// The caller's key for the member.
    pub id: u32,
    /// The member's address.
    pub addr: IpAddr,
    /// The probe in use.
    pub spec: ProbeSpec,
    /// Current health.
    pub state: HealthState,
    /// Outcome of the most recent probe (`None` before the first one completes).
    pub last_reason: Option<ProbeReason>,
    /// Wall-clock time the most recent probe completed.
    pub last_probe: Option<SystemTime>,
    /// How long the most recent probe took (to its answer, or to its timeout).
    pub last_duration: Option<Duration>,
    /// Number of consecutive results equal in success/failure to the most recent one.
    pub consecutive: u32,
    /// Wall-clock time of the last state change (`None` while never decided).
    pub last_change: Option<SystemTime>,
    /// Probes completed since the target was added (or last reset by a reload).
    pub probes: u64,
}

/// A member's health flipped; sent on [`ProberHandle::changes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthChange {
    /// The caller's key for the member.
    pub id: u32,
    /// The member's address.
    pub addr: IpAddr,
    /// `true` when the member became Up, `false` when it became Down.
    pub up: bool,
    /// The state before the change (Unknown for the first decision).
    pub previous: HealthState,
    /// The probe result that caused the change.
    pub reason: ProbeReason,
    /// Consecutive results (of this kind) when the change happened.
    pub consecutive: u32,
    /// Wall-clock time of the change.
    pub at: SystemTime,
}

impl HealthChange {
    /// The new state (Up or Down).
    pub fn state(&self) -> HealthState {
        if self.up {
            HealthState::Up
        } else {
            HealthState::Down
        }
    }
}
