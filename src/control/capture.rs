//! The `capture` request of the control socket (`vipmux capture`): arm a capture with a filter,
//! read what the workers copied, stop. The records travel as JSON with the frame bytes in hex.
//!
//! `{"cmd":"capture","op":"start","reasons":["no_rule"],"snaplen":2048}` answers
//! `{"id":1,"interfaces":["lan"],"workers":2}`; `{"cmd":"capture","op":"read","id":1}` answers
//! `{"records":[...],"matched":M,"lost":L}` (waiting up to [`CAPTURE_READ_WAIT`] for a first
//! record); `{"cmd":"capture","op":"stop","id":1}` disarms and answers the last records. A capture
//! nobody reads for [`CAPTURE_LEASE`] is disarmed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a `read` waits for a first record before answering an empty batch.
pub const CAPTURE_READ_WAIT: Duration = Duration::from_millis(200);

/// A capture not read for this long is abandoned: the appliance disarms it.
pub const CAPTURE_LEASE: Duration = Duration::from_secs(5);

/// Default snap length of `vipmux capture`, bytes.
pub const DEFAULT_SNAPLEN: usize = 2048;

/// What to capture (`op: start`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    /// Drop reasons or exception names (none, with neither `exceptions` nor `forwarded`: every
    /// drop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Every exception (frame handed to the slow path) too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exceptions: bool,
    /// Forwarded frames too (as sent, after the rewrite).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// Only frames to this frontend's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<String>,
    /// Only frames to this rule's address, protocol and ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Only frames of this flow, `SRC:PORT-DST:PORT/PROTO`, either direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Bytes copied per frame (default [`DEFAULT_SNAPLEN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<usize>,
}

/// One `capture` request, tagged by `"op"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum CaptureOp {
    /// Arm a capture.
    Start(CaptureSpec),
    /// Take the records copied since the last read.
    Read {
        /// The capture's id (from `start`).
        id: u64,
    },
    /// Disarm and take the last records.
    Stop {
        /// The capture's id (from `start`).
        id: u64,
    },
}

/// The answer to `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStarted {
    /// The capture's id.
    pub id: u64,
    /// Interface names, by index (a record's `interface`).
    pub interfaces: Vec<String>,
    /// Number of workers.
    pub workers: u32,
    /// Snap length in force.
    pub snaplen: usize,
}

/// One captured frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRecord {
    /// Worker that saw it.
    pub worker: u32,
    /// Ingress interface index (see [`CaptureStarted::interfaces`]).
    pub interface: u32,
    /// What happened to it, e.g. `drop no_rule`.
    pub what: String,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes (up to the snap length), hex.
    pub data: String,
}

/// The answer to `read` and `stop`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureBatch {
    /// Records since the last read.
    pub records: Vec<CaptureRecord>,
    /// Frames that matched so far (all workers).
    pub matched: u64,
    /// Matching frames lost to a full ring so far.
    pub lost: u64,
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The bytes of a hex string, or what is wrong with it.
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("hex of odd length {}", s.len()));
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|t| u8::from_str_radix(t, 16).ok())
                .ok_or_else(|| format!("bad hex digits {:?}", String::from_utf8_lossy(p)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::socket::{parse_request, Request};

    #[test]
    fn requests_round_trip_through_json() {
        let start = Request::Capture(CaptureOp::Start(CaptureSpec {
            reasons: vec!["no_rule".into()],
            frontend: Some("web".into()),
            snaplen: Some(128),
            ..CaptureSpec::default()
        }));
        let line = serde_json::to_string(&start).unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"capture","op":"start","reasons":["no_rule"],"frontend":"web","snaplen":128}"#
        );
        assert_eq!(parse_request(line.as_bytes()), Ok(start));
        assert_eq!(
            parse_request(br#"{"cmd":"capture","op":"read","id":3}"#),
            Ok(Request::Capture(CaptureOp::Read { id: 3 }))
        );
        assert!(parse_request(br#"{"cmd":"capture","op":"peek"}"#).is_err());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), Ok(bytes));
        assert_eq!(to_hex(&[0x0a, 0xff]), "0aff");
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }
}
