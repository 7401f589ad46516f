#!/usr/bin/env bash
# Instructions per packet of the pure pipeline (callgrind, counting only `pipeline_ir`'s measured
# bursts), at the points the measurement log of benches/README.md quotes, for one or more builds
# side by side: established flows of each rule kind's path and new flows. Instruction counts repeat
# exactly for the same binary and inputs whatever else the machine does, so they compare builds
# where the memif figures cannot.
#
# Usage: scripts/bench/pipeline_ir.sh [BIN...]
#   BIN...   `pipeline_ir` binaries (default: target/release/examples/pipeline_ir, built if missing)
# IR_POINTS overrides the points: `;`-separated argument lists of pipeline_ir, e.g.
#   IR_POINTS="est 1000 1000 nat;syn 1000 nat". Each point's total is divided by its packets
#   (the bursts of its arguments times 32). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v valgrind >/dev/null || { echo "pipeline_ir.sh: valgrind is missing (apt install valgrind)" >&2; exit 1; }
bins=("$@")
if [ "${#bins[@]}" -eq 0 ]; then
  bins=(target/release/examples/pipeline_ir)
  [ -x "${bins[0]}" ] || cargo build --release --example pipeline_ir >&2
fi
points=${IR_POINTS:-"est 1000 1000 nat;est 1000 1000 floating;est 1000 1000 gue;est 1000 1000 nat6;syn 1000 nat"}

# The number of bursts a pipeline_ir argument list measures: `est FLOWS BURSTS ...` and `walk`
# take it second, `syn BURSTS` and `evict BURSTS` first; `first FLOWS` measures FLOWS / 32.
bursts_of() {
  set -- $1
  case $1 in
    syn | evict) echo "$2" ;;
    first) echo $(($2 / 32 > 0 ? $2 / 32 : 1)) ;;
    *) echo "$3" ;;
  esac
}

printf '%-28s' "point"
for b in "${bins[@]}"; do printf ' %22s' "$(basename "$(dirname "$b")")/$(basename "$b")"; done
printf '\n'
IFS=';' read -r -a specs <<<"$points"
for spec in "${specs[@]}"; do
  packets=$(($(bursts_of "$spec") * 32))
  printf '%-28s' "$spec"
  for b in "${bins[@]}"; do
    # shellcheck disable=SC2086 # the point is a word list by design
    total=$(valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=/dev/null \
      "$b" $spec 2>&1 | sed -n 's/.*Collected : //p')
    [ -n "$total" ] || { echo; echo "pipeline_ir.sh: $b $spec: no count" >&2; exit 1; }
    printf ' %22s' "$(python3 -c "print(f'{$total / $packets:.1f} ({$total})')")"
  done
  printf '\n'
done
