#!/usr/bin/env bash
# The whole test suite: setup, formatting, lints, then every test (unit, integration, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo nextest run --workspace --all-targets --no-fail-fast
