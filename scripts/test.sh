#!/usr/bin/env bash
# The whole test suite: setup, formatting, lints (all targets, benches included), a check that the
# fuzz crate builds, then every test: unit, integration, DPDK vdev and end-to-end network-namespace
# tests. Benches are compiled by clippy and measured by scripts/bench.sh, not run here. The API docs build without a warning
# (broken intra-doc links fail). Before the tests, every fuzz target runs
# for 20 s (longer runs: scripts/fuzz.sh); a finding, or a cargo-fuzz that cannot be installed, fails
# the suite. Then the 2-minute soak (scripts/soak.sh: memif load with reloads; it builds the
# release binary when missing) runs before the tests so that the suite's output ends with the
# test runner's summary; a failed soak still lets the tests run, then fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The fuzz crate is a separate workspace that the main crate's checks never build: a change to a
# type it uses must fail here, before the tests, not only when its targets run.
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet
scripts/fuzz.sh --seconds 20 --ci
soak=0
scripts/soak.sh --minutes 2 --max-stall-ms 100 || soak=$?
if [ "$soak" != 0 ]; then
  echo "test.sh: the soak FAILED (exit $soak, its report is above); the suite fails after the tests" >&2
fi
cargo nextest run --workspace --no-fail-fast
exit "$soak"

