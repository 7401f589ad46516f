#!/usr/bin/env bash
# The whole test suite: setup, formatting, lints (all targets, benches included), then every
# test: unit, integration, DPDK vdev and end-to-end network-namespace tests. Benches are compiled
# by clippy and measured by scripts/bench.sh, not run here. The API docs build without a warning
# (broken intra-doc links fail). Before the tests, every fuzz target runs
# for 20 s (longer runs: scripts/fuzz.sh); a finding, or a cargo-fuzz that cannot be installed, fails
# the suite. Last, a 2-minute soak under memif traffic with reloads and a 30 s hitless-reload run
# (scripts/soak.sh with the debug binary; about 3.5 minutes with their calibration runs). The soak
# allows a 100 ms worker stall here, not its default 10 ms: on two cores the generator, the worker and
# the script's checks share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet
scripts/fuzz.sh --seconds 20 --ci
cargo nextest run --workspace --no-fail-fast
# The debug binary the tests built: no release build in the suite (the figures come from release runs).
VIPMUX_BIN="${CARGO_TARGET_DIR:-target}/debug/vipmux" scripts/soak.sh --minutes 2 --max-stall-ms 100
VIPMUX_BIN="${CARGO_TARGET_DIR:-target}/debug/vipmux" scripts/soak.sh --hitless --seconds 30 --max-stall-ms 100
