#!/usr/bin/env bash
# The whole test suite: setup, formatting, lints (all targets, benches included), then every
# test: unit, integration, DPDK vdev and end-to-end network-namespace tests. Benches are compiled
# by clippy and measured by scripts/bench.sh, not run here. The API docs build without a warning
# (broken intra-doc links fail). Before the tests, every fuzz target runs
# for 20 s (longer runs: scripts/fuzz.sh); a finding, or a cargo-fuzz that cannot be installed, fails
# the suite. The soak (scripts/soak.sh) is not part of it yet: vipmux sometimes dies in DPDK's memif
# driver when the generator, the memif server, exits at the end of the load (README, Reliability).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet
scripts/fuzz.sh --seconds 20 --ci
cargo nextest run --workspace --no-fail-fast

