#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (one per parser, plus the whole pipeline), each for a bounded
# time, and prints what each run did: executions, executions per second, corpus size, findings.
#
# Usage: scripts/fuzz.sh [--seconds N] [--ci] [TARGET...]
#   --seconds N  time per target (default 300)
#   --ci         the grown corpus goes to a scratch directory, so the tree is left as it was
#   TARGET...    a subset of the targets (default: all of them, as listed by `cargo fuzz list`)
# Exits non-zero when cargo-fuzz is missing and cannot be installed, when the build fails, or when
# any target finds a crash, a leak, a timeout or an out-of-memory input. It never skips silently.
#
# Corpus: the seed inputs are committed as fuzz/corpus/<target>/seed-*; what a run adds lands beside
# them under content-hash names, which .gitignore keeps out of the repository. Promote an input
# worth keeping by renaming it seed-<what-it-is>. Findings land in fuzz/artifacts/<target>/
# (ignored too); reproduce one with `cargo fuzz run -s none -a <target> <file>`.
#
# Toolchain: only stable Rust is needed. cargo-fuzz adds a sanitizer with the unstable
# `-Zsanitizer` flag, which stable rustc refuses; `--sanitizer none` (-s none) drops exactly that
# flag and keeps the rest, whose flags are all stable `-C` options: SanitizerCoverage
# instrumentation (`-Cpasses=sancov-module` + LLVM args) that guides libFuzzer, and `--cfg fuzzing`.
# So no `RUSTC_BOOTSTRAP` is needed. Without AddressSanitizer nothing is lost for this crate's
# parsers: they use no `unsafe`, so an out-of-bounds read is a bounds-check panic, which libFuzzer
# reports as a crash. `-a` turns debug assertions (and integer-overflow checks) on, so an overflow
# that a release build would silently wrap is a finding too.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[fuzz] %s\n' "$*" >&2; }

seconds=300
ci=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --ci) ci=1; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case $seconds in '' | *[!0-9]*) log "--seconds wants a whole number, got '$seconds'"; exit 2 ;; esac

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  if ! cargo install --locked cargo-fuzz; then
    log "FAILED: cargo-fuzz is missing and could not be installed (cargo install --locked cargo-fuzz)"
    exit 1
  fi
fi

# The same flags for build and run, so `run` reuses the build instead of compiling again.
FUZZ_FLAGS=(--sanitizer none --debug-assertions)

if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { log "no fuzz targets found"; exit 1; }

log "building ${#targets[@]} target(s): ${targets[*]}"
{ cargo fuzz build "${FUZZ_FLAGS[@]}" 2>&1; } | { grep -Ev '^ +(Compiling|Checking|Fresh) ' >&2 || true; }

# Inputs per target: a cap on the size of one input (frames are small, files a few KiB).
max_len() {
  case $1 in
    wire) echo 1600 ;;
    pipeline) echo 8192 ;;
    control) echo 4096 ;;
    *) echo 16384 ;;
  esac
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=0
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$seeds" "$artifacts"
  if [ "$ci" = 1 ]; then
    corpus=$scratch/corpus-$t
    mkdir -p "$corpus"
    dirs=("$corpus" "$seeds")
  else
    corpus=$seeds
    dirs=("$seeds")
  fi
  before=$(find "${dirs[@]}" -type f | wc -l)
  find "$artifacts" -type f | sort >"$scratch/$t.known"
  args=(-max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  log "running $t for ${seconds}s"
  out=$scratch/$t.log
  status=0
  cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "${dirs[@]}" -- "${args[@]}" >"$out" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)
  after=$(find "${dirs[@]}" -type f | wc -l)
  find "$artifacts" -type f | sort | comm -13 "$scratch/$t.known" - >"$scratch/$t.new"
  findings=$(wc -l <"$scratch/$t.new")
  if [ "$status" -ne 0 ] || [ "$findings" -gt 0 ]; then
    failed=1
    log "$t FAILED (exit $status):"
    # The panic (or libFuzzer's own error) and the reproduction line; not the input's byte dump.
    if grep -q 'panicked at' "$out"; then
      grep -A12 'panicked at' "$out" | head -30 >&2
    else
      grep -E '^==[0-9]+==|ERROR|SUMMARY' "$out" | head -20 >&2 || tail -20 "$out" >&2
    fi
    grep -A2 '^Reproduce with:' "$out" | grep 'cargo fuzz' >&2 || true
    sed 's/^/[fuzz]   finding: /' "$scratch/$t.new" >&2
  fi
  summary+=("$(printf '%-12s %10s runs %8s exec/s  corpus %5s -> %-5s findings %s%s' "$t" "${runs:-?}" \
    "${rate:-?}" "$before" "$after" "$findings" "$([ "$status" -ne 0 ] && echo " (exit $status)")")")
done

log "summary (${seconds}s per target):"
for line in "${summary[@]}"; do printf '[fuzz]   %s\n' "$line" >&2; done
if [ "$failed" = 1 ]; then
  log "FAILED: see the findings above; reproduce with: cargo fuzz run ${FUZZ_FLAGS[*]} <target> <file>"
  exit 1
fi
log "ok: no findings"
