//! The one rule for a test whose privilege or tool is missing: outside CI it is skipped with a
//! message; under `CI=true` (or `VIPMUX_REQUIRE_NETNS=1`, or `VIPMUX_REQUIRE_DPDK=1`) it fails,
//! so a CI machine without what the suite needs cannot pass by skipping.
//!
//! Include with `mod prereq;` from a file in `tests/` (`tests/common` re-exports it).

/// Whether a missing prerequisite fails the test instead of skipping it.
pub fn required() -> bool {
    let set = |var: &str, on: &str| std::env::var(var).as_deref() == Ok(on);
    set("CI", "true") || set("VIPMUX_REQUIRE_NETNS", "1") || set("VIPMUX_REQUIRE_DPDK", "1")
}

/// Reports that `test` lacks `what`: prints `SKIP test: what` and returns true (the caller
/// returns), or panics with the same words when prerequisites are [`required`].
pub fn missing(test: &str, what: &str) -> bool {
    assert!(
        !required(),
        "{test}: {what} (a failure, not a skip, under CI=true, VIPMUX_REQUIRE_NETNS=1 or \
         VIPMUX_REQUIRE_DPDK=1)"
    );
    eprintln!("SKIP {test}: {what}");
    true
}
