//! Fuzz target: arbitrary bytes as one control-socket request line.
//!
//! Contract checked: parsing never panics; a parsed request serializes to a line that parses back
//! to the same request; answering any line through `dispatch` never panics and yields one versioned
//! JSON response line.
//!
//! Run: `scripts/fuzz.sh control`, or `cargo fuzz run -s none control` from the repository root.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use vipmux::control::socket::{
    dispatch, parse_request, ControlHandler, FlowFilter, Response, PROTOCOL_VERSION,
};

/// A handler with canned answers: the target is the request parsing, not the appliance.
struct Canned;

impl ControlHandler for Canned {
    fn status(&self) -> Value {
        json!({"forwarding": true})
    }
    fn flows(&self, filter: &FlowFilter) -> Result<Value, String> {
        match filter.frontend.as_deref() {
            Some("web") | None => Ok(json!({"flows": [], "limit": filter.limit})),
            Some(other) => Err(format!("unknown frontend {other}")),
        }
    }
    fn diagnose(&self) -> Value {
        json!({"findings": []})
    }
    fn reload(&self, path: Option<PathBuf>) -> Result<String, String> {
        path.map(|p| format!("reloaded {}", p.display()))
            .ok_or_else(|| "no path".to_string())
    }
    fn counters(&self) -> Value {
        json!({"received": 0})
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request(data) {
        let line = serde_json::to_string(&request).expect("a request serializes");
        assert_eq!(
            parse_request(line.as_bytes()).as_ref(),
            Ok(&request),
            "request round trip through {line}"
        );
    }
    if let Ok(line) = std::str::from_utf8(data) {
        let out = dispatch(&Canned, line).to_line();
        assert!(out.ends_with('\n') && !out[..out.len() - 1].contains('\n'));
        let back: Response = serde_json::from_str(&out).expect("a response line is JSON");
        assert_eq!(back.v, PROTOCOL_VERSION);
        assert_eq!(back.ok, back.data.is_some() && back.error.is_none());
    }
});
