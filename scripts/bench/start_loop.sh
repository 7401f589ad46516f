#!/usr/bin/env bash
# Start loop of the memif benchmark pair: `vipmux pktgen` as the memif server and `vipmux run` as its
# zero-copy memif client (the pairing of dataplane.sh), started and stopped N times. A start is clean
# when `vipmux status` reports the appliance forwarding (control socket answers, memif link up) within
# START_TIMEOUT seconds; a start that is not keeps its logs, every thread's stack of the hung vipmux (gdb,
# when installed) and its per-thread CPU (top -H), then both processes are killed.
#
#   sudo VIPMUX_BIN=target/release/vipmux scripts/bench/start_loop.sh [N]   # N starts, default 60
#
# Environment: VIPMUX_BIN (default target/release/vipmux), START_TIMEOUT (seconds, default 30),
#   OUT (directory for the logs, default a new one under /tmp; kept), DP_WORKERS (1 or 2, default 1).
# Prints one line per start and "N starts, M hung" at the end; exits 1 when a start hung.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VIPMUX_BIN=${VIPMUX_BIN:-$ROOT/target/release/vipmux}
N=${1:-60}
START_TIMEOUT=${START_TIMEOUT:-30}
OUT=${OUT:-$(mktemp -d /tmp/vipmux-start-loop.XXXXXX)}
# shellcheck source=scripts/bench/dataplane.sh
. "$ROOT/scripts/bench/dataplane.sh"

[ "$(id -u)" = 0 ] || { echo "start_loop: needs root" >&2; exit 2; }
[ -x "$VIPMUX_BIN" ] || { echo "start_loop: $VIPMUX_BIN missing" >&2; exit 2; }
mkdir -p "$OUT"
NS=vmxstart$$
GEN="" DUT=""

# stop_pid PID — SIGTERM, then SIGKILL after 5 s; reaps it.
stop_pid() {
  local i
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  stop_pid "$DUT"
  stop_pid "$GEN"
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"

hung=0
for i in $(seq 1 "$N"); do
  sock=$OUT/m$i.sock ctl=$OUT/ctl$i cfg=$OUT/c$i.toml
  dp_vipmux_config "$cfg" "$ctl" 1000 nat "${DP_WORKERS:-1}"
  RUST_LOG=warn "$VIPMUX_BIN" pktgen --profile "$ROOT/dpdk-config/memif-pktgen.toml" \
    "--eal=--vdev=net_memif0,role=server,socket=$sock,id=0,socket-abstract=no" \
    --config "$cfg" --flows 1000 --size 64 --duration 2 --mode established --expect rewrite \
    --json </dev/null >"$OUT/g$i.json" 2>"$OUT/g$i.log" &
  GEN=$!
  for _ in $(seq 1 300); do
    [ -S "$sock" ] && break
    kill -0 "$GEN" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -S "$sock" ]; then
    echo "start $i: pktgen did not listen (see $OUT/g$i.log)"
    stop_pid "$GEN"
    GEN=""
    continue
  fi
  ip netns exec "$NS" "$VIPMUX_BIN" run --config "$cfg" --eal=--socket-mem=256 \
    "--eal=--vdev=net_memif0,role=client,socket=$sock,id=0,socket-abstract=no,zero-copy=yes" \
    </dev/null >"$OUT/v$i.log" 2>&1 &
  DUT=$!
  t0=$(date +%s.%N)
  if "$VIPMUX_BIN" status --socket "$ctl" --wait "$START_TIMEOUT" --timeout 2 >"$OUT/status$i.txt" 2>&1; then
    echo "start $i: clean ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
    rm -f "$OUT"/{c,g,v,status}"$i".* "$OUT/g$i.json"
  else
    hung=$((hung + 1))
    echo "start $i: NOT FORWARDING after ${START_TIMEOUT} s; vipmux log ends with:"
    tail -n 3 "$OUT/v$i.log" | sed 's/^/    /'
    if command -v gdb >/dev/null; then
      gdb -p "$DUT" -batch -ex "thread apply all bt" >"$OUT/bt$i.txt" 2>&1 || true
      echo "    stacks: $OUT/bt$i.txt"
    fi
    top -H -b -n 1 -p "$DUT" >"$OUT/top$i.txt" 2>&1 || true
  fi
  stop_pid "$DUT"
  stop_pid "$GEN"
  DUT="" GEN=""
  rm -f "$sock"
done
echo "$N starts, $hung hung (logs of hung starts in $OUT)"
[ "$hung" = 0 ]
