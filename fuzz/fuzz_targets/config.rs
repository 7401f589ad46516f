//! Fuzz target: arbitrary bytes as a TOML configuration file.
//!
//! Contract checked: loading (parse, typed decode, validation) never panics and is deterministic;
//! every error renders; a valid config compiles to a snapshot that knows every frontend address,
//! and recompiles against that snapshot. A config that decodes but fails validation also compiles
//! without panicking (dangling references are skipped), as the compiler promises.
//!
//! Run: `scripts/fuzz.sh config`, or `cargo fuzz run -s none config` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;

/// Whether `snapshot` answers for `addr`, in the lookups of its family.
fn knows(snapshot: &Snapshot, addr: std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(a) => snapshot.is_frontend(u32::from(a)),
        std::net::IpAddr::V6(a) => snapshot.is_frontend6(u128::from(a)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_str(text, "fuzz.toml") {
        Ok(config) => {
            assert_eq!(
                Config::from_str(text, "fuzz.toml").as_ref(),
                Ok(&config),
                "loading is deterministic"
            );
            let health = Health::all_up(&config);
            let snapshot = Snapshot::compile(&config, &health);
            for fe in &config.frontends {
                assert!(
                    knows(&snapshot, fe.address),
                    "frontend {} missing from the snapshot",
                    fe.name
                );
            }
            let again = Snapshot::compile_with_previous(&config, &health, Some(&snapshot));
            for fe in &config.frontends {
                assert!(knows(&again, fe.address));
            }
        }
        Err(errors) => {
            assert!(
                !errors.is_empty(),
                "a rejected config names at least one error"
            );
            let _ = errors.to_string();
            // Decodes but is invalid: the compiler must still not panic.
            if let Ok(config) = toml::from_str::<Config>(text) {
                let _ = Snapshot::compile(&config, &Health::all_up(&config));
            }
        }
    }
});
