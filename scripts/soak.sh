#!/usr/bin/env bash
# Soak: vipmux under sustained memif traffic from `vipmux pktgen` for N minutes while its
# configuration is reloaded every few seconds, then checks that nothing degraded. Exits non-zero on
# any failure and prints one "soak:" line per figure.
#
# Usage: scripts/soak.sh [--minutes N | --seconds N] [--share P] [--reload-every S] [--flows N] [--hitless]
#   --minutes N       how long the load runs (default 30; scripts/test.sh runs 2)
#   --share P         percent of the measured maximum rate to send at (default 80; 50 with --hitless)
#   --reload-every S  seconds between reloads (default 3; 2 with --hitless)
#   --flows N         distinct flows (default 100000)
#   --max-stall-ms M  the longest busy poll-loop iteration allowed (default 10; scripts/test.sh allows
#                     100: on a two-core machine the generator, the worker and the script's own
#                     checks share the cores, so the scheduler preempts the worker for tens of ms)
#   --hitless         the hitless-reload run instead (below)
# Environment: VIPMUX_BIN (default target/release/vipmux, built or brought up to date first).
#
# Setup as in scripts/bench/dataplane.sh: pktgen is the memif server on core 0, vipmux the memif
# client (its worker on core 1) in its own network namespace, one NAT rule over 8 on-link members
# whose ARP pktgen answers. First a 5 s run at full speed measures the maximum; then the soak sends
# `--mode mix` (every flow opens with a SYN, then data segments, repeated: new flows and established
# ones) at P % of it. The short idle timeouts below expire flows only when each flow comes back less
# often than that (pktgen sends its flows in turn: every flows / rate seconds). Every S seconds the
# configuration alternates between two versions of the rule: idle_timeout_seconds 3 without reset,
# and idle_timeout_seconds 2 with enable_tcp_reset plus an extra rule on port 81 (the members stay
# the same, so pktgen's check that no flow moved holds).
#
# Fails on: any rewrite error pktgen reports (malformed, bad checksum, wrong source/destination/MAC,
# a flow that moved); a failed reload; mbufs in use after the load stopped above the level before it
# (plus the rx ring and the per-core caches the pool may keep filled: 1024 + 2 x 256); resident
# memory growth beyond the flow table's fixed size (+16 MiB); a busy poll-loop iteration over 10 ms
# (`max_busy_iteration_ns`); a panic or an ERROR line in vipmux's log; vipmux exiting.
#
# --hitless: established flows only (`--mode established`) at a fixed rate below the maximum while
# each reload swaps member b8 for b9 and changes the rule's idle timeout. pktgen checks against the
# union of both member sets and reports, per member, the frames lost by the flows first seen there
# that never moved. Fails when a flow of a member that stays (b1..b7) moved, when vipmux dropped
# anything after the first reload for another reason than a full transmit ring toward the generator
# (`tx_full`: on a shared core the generator is sometimes descheduled for longer than the worker's
# transmit back-pressure holds refused frames, 10 ms), when those flows lost more
# frames than vipmux dropped before the first reload (next hops still resolving at the start: pktgen
# cannot tell those apart per flow) plus those tx_full drops, or on any rewrite error other than the
# moves of b8's flows.
# Probe flaps are not part of it yet: the memif members are pktgen's ARP answers, not hosts a probe
# could reach.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

secs=1800 share="" reload_every="" flows=100000 hitless=0 max_stall_ms=10
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) secs=$(($2 * 60)); shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --reload-every) reload_every=$2; shift 2 ;;
    --flows) flows=$2; shift 2 ;;
    --max-stall-ms) max_stall_ms=$2; shift 2 ;;
    --hitless) hitless=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ "$hitless" = 1 ]; then
  mode=established share=${share:-50} reload_every=${reload_every:-2}
else
  mode=mix share=${share:-80} reload_every=${reload_every:-3}
fi
log() { printf '[soak] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$ROOT/scripts/bench/lib.sh"
# shellcheck source=netns/lib.sh
. "$ROOT/scripts/netns/lib.sh"
# shellcheck source=bench/dataplane.sh
. "$ROOT/scripts/bench/dataplane.sh"
PY=python3

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${VIPMUX_BIN:-}" ]; then
  # Always through cargo, so the soak runs the current code (a no-op when the binary is up to date).
  VIPMUX_BIN=$TARGET_DIR/release/vipmux
  cargo build --release --quiet
fi

OWN_PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#OWN_PIDS[@]} -gt 0 ]; then nsl_kill_pids "${OWN_PIDS[@]}"; fi
  if [ "$rc" != 0 ] && [ -n "$DP_SOCKDIR" ]; then
    log "logs kept in $DP_SOCKDIR"
    DP_SOCKDIR=""
  fi
  dp_cleanup
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

why=$(dp_prereq)
if [ -n "$why" ]; then
  log "cannot run: $why"
  exit 1
fi
DP_SOCKDIR=$(mktemp -d /tmp/vipmux-soak.XXXXXX)
DP_NS="vs$$-dut"
ip netns add "$DP_NS"
ip netns exec "$DP_NS" ip link set lo up
ctl=$DP_SOCKDIR/vipmux.ctl
cfg_a=$DP_SOCKDIR/a.toml cfg_b=$DP_SOCKDIR/b.toml
dp_vipmux_config "$cfg_a" "$ctl" "$flows"
cfg_gen=$cfg_a
if [ "$hitless" = 1 ]; then
  # pktgen checks against every member either version has; b holds b9 instead of b8.
  cfg_gen=$DP_SOCKDIR/all.toml
  sed 's/^  { name = "b8", address = "10.1.0.18" },$/&\n  { name = "b9", address = "10.1.0.19" },/' "$cfg_a" >"$cfg_gen"
  sed '/name = "b8"/d' "$cfg_gen" >"$cfg_b"
  printf 'idle_timeout_minutes = 5\n' >>"$cfg_b"
else
  cp "$cfg_a" "$cfg_b"
  printf 'idle_timeout_seconds = 3\n' >>"$cfg_a"
  printf 'idle_timeout_seconds = 2\nenable_tcp_reset = true\n\n' >>"$cfg_b"
  printf '[[load_balancing_rules]]\nname = "extra"\nfrontend = "vip"\nprotocol = "tcp"\nfrontend_port = 81\nbackend_port = 8081\nbackend_pool = "web"\n' >>"$cfg_b"
fi
capacity=$(sed -n 's/^flow_table_capacity = //p' "$cfg_a")

# ctl_json CMD — the control socket's answer to {"cmd": CMD} ("" when it does not answer).
ctl_json() {
  "$PY" - "$ctl" "$1" <<'EOF' 2>/dev/null || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(json.dumps({"cmd": sys.argv[2]}).encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
print(json.dumps(json.loads(buf)["data"]))
EOF
}

# field JSON EXPR — a Python expression over the parsed JSON `d`.
field() { "$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# start_pktgen TAG SECS RATE — pktgen as the memif server; sets GEN (its PID) and SOCK.
start_pktgen() {
  SOCK=$DP_SOCKDIR/$1.sock
  RUST_LOG=warn "$VIPMUX_BIN" pktgen --profile "$ROOT/dpdk-config/memif-pktgen.toml" \
    "--eal=--vdev=net_memif0,role=server,socket=$SOCK,id=0,socket-abstract=no" \
    --config "$cfg_gen" --flows "$flows" --size 64 --duration "$2" --rate "$3" --mode "$mode" --expect rewrite \
    --json </dev/null >"$DP_SOCKDIR/$1.json" 2>"$DP_SOCKDIR/$1.gen.log" &
  GEN=$!
  OWN_PIDS+=("$GEN")
  local i
  for i in $(seq 1 300); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$GEN" 2>/dev/null || break
    sleep 0.1
  done
  log "pktgen did not listen: $(tail -n 3 "$DP_SOCKDIR/$1.gen.log" | tr '\n' ' ')"
  exit 1
}

# start_vipmux — vipmux as the memif client of $SOCK; sets MUX; waits until it forwards.
start_vipmux() {
  ip netns exec "$DP_NS" "$VIPMUX_BIN" run --config "$cfg_a" --eal=--socket-mem=256 \
    "--eal=--vdev=net_memif0,role=client,socket=$SOCK,id=0,socket-abstract=no,zero-copy=yes" \
    </dev/null >"$DP_SOCKDIR/$1.mux.log" 2>&1 &
  MUX=$!
  OWN_PIDS+=("$MUX")
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -n "$(ctl_json status)" ] && return 0
    kill -0 "$MUX" 2>/dev/null || break
    sleep 0.1
  done
  log "vipmux did not come up within 60 s: $(tail -n 5 "$DP_SOCKDIR/$1.mux.log" | tr '\n' ' ')"
  exit 1
}

stop_all() {
  nsl_kill_pids "${OWN_PIDS[@]}"
  OWN_PIDS=()
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$MUX/status"; }

# 1. The maximum: 5 s at full speed.
start_pktgen max 5 0
start_vipmux max
wait "$GEN" || true
stop_all
max=$(field "$(cat "$DP_SOCKDIR/max.json")" 'd["rx_mpps"]')
rate=$(awk -v m="$max" -v s="$share" 'BEGIN { printf "%.0f\n", m * 1e6 * s / 100 }')
log "maximum $max Mpps ($mode, $flows flows); soak at $share % = $rate pps for $secs s, a reload every $reload_every s"
[ "$rate" -gt 0 ] || { log "the maximum run forwarded nothing: $(tail -n 3 "$DP_SOCKDIR/max.gen.log" | tr '\n' ' ')"; exit 1; }

# 2. The soak.
start_pktgen soak "$secs" "$rate"
start_vipmux soak
mbufs0=$(field "$(ctl_json counters)" 'd["mbufs_in_use"]')
rss0=$(rss_kib)
reloads=0 reload_failures=0 next=a t0=$(date +%s)
# Packets dropped before the first reload: the start's (next hops not resolved yet).
sleep 3
counters0=$(ctl_json counters)
drops0=$(field "$counters0" 'sum(d["drops"].values())')
txfull0=$(field "$counters0" 'd["drops"].get("tx_full", 0)')
while kill -0 "$GEN" 2>/dev/null; do
  # Sleep until the next reload, or until the load ends.
  until_reload=$((SECONDS + reload_every))
  while [ "$SECONDS" -lt "$until_reload" ] && kill -0 "$GEN" 2>/dev/null; do sleep 0.2; done
  kill -0 "$GEN" 2>/dev/null || break
  if [ "$next" = a ]; then file=$cfg_b next=b; else file=$cfg_a next=a; fi
  if "$VIPMUX_BIN" reload --socket "$ctl" --file "$file" >>"$DP_SOCKDIR/reloads.log" 2>&1; then
    reloads=$((reloads + 1))
  else
    reload_failures=$((reload_failures + 1))
  fi
  kill -0 "$MUX" 2>/dev/null || { log "vipmux exited: $(tail -n 5 "$DP_SOCKDIR/soak.mux.log" | tr '\n' ' ')"; exit 1; }
done
wait "$GEN" || true
elapsed=$(($(date +%s) - t0))
sleep 0.5
if ! kill -0 "$MUX" 2>/dev/null; then
  log "FAIL vipmux exited when the load stopped (pktgen, the memif server, went away): $(tail -n 3 "$DP_SOCKDIR/soak.mux.log" | tr '\n' ' ')"
  exit 1
fi
# The load stopped: let the pool settle (three equal readings in a row, bounded).
prev="" same=0 counters=""
for _ in $(seq 1 50); do
  counters=$(ctl_json counters)
  cur=$(field "$counters" 'd["mbufs_in_use"]')
  if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
  prev=$cur
  [ "$same" -ge 2 ] && break
  sleep 0.2
done
mbufs1=$prev
rss1=$(rss_kib)
summary=$(cat "$DP_SOCKDIR/soak.json")
max_busy=$(field "$counters" 'max(w["max_busy_iteration_ns"] for w in d["workers"])')
stop_all

fail=0
check() { # check OK MESSAGE
  if [ "$1" = 1 ]; then log "ok   $2"; else log "FAIL $2"; fail=1; fi
}
errors=$(field "$summary" 'd["errors"]')
loss=$(field "$summary" 'd["loss_percent"]')
tx=$(field "$summary" 'd["tx_mpps"]')
rx=$(field "$summary" 'd["rx_mpps"]')
# Flow table: 832-byte buckets of 16 flows, and the recently-expired record (8 bytes per 2 flows).
table_kib=$(((capacity / 16 * 832 + capacity / 2 * 8) / 1024))
growth=$((rss1 - rss0))
slack=$((1024 + 2 * 256))
log_bad=$(grep -cE 'panicked|ERROR' "$DP_SOCKDIR/soak.mux.log" || true)
echo "soak: $elapsed s at $rate pps (share $share % of $max Mpps, $mode, $flows flows): tx $tx Mpps rx $rx Mpps loss $loss %"
echo "soak: reloads $reloads (failed $reload_failures); rewrite errors $errors; vipmux drops $(field "$counters" '" ".join("%s=%d" % kv for kv in d["drops"].items() if kv[1]) or "none"')"
echo "soak: mbufs in use $mbufs0 before, $mbufs1 after the load (slack $slack)"
echo "soak: resident memory $rss0 KiB -> $rss1 KiB (+$growth KiB; flow table $table_kib KiB)"
echo "soak: longest busy poll-loop iteration $max_busy ns; panic/ERROR log lines $log_bad; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$hitless" = 1 ]; then
  moved=$(field "$summary" 'd["mismatches"]["moved"]')
  drops1=$(field "$counters" 'sum(d["drops"].values())')
  stay_lost=$(field "$summary" 'sum(m["lost"] for m in d["members"] if m["name"] not in ("b8", "b9"))')
  stay_moved=$(field "$summary" 'sum(m["moved_flows"] for m in d["members"] if m["name"] not in ("b8", "b9"))')
  echo "soak: hitless: lost by flows of members that stay $stay_lost (vipmux drops before the first reload $drops0, after it $((drops1 - drops0))); moved flows of members that stay $stay_moved; frames of moved flows $moved"
  echo "soak: per member (lost, moved flows): $(field "$summary" '" ".join("%s=%d,%d" % (m["name"], m["lost"], m["moved_flows"]) for m in d["members"])'); unanswered flows $(field "$summary" 'd["unanswered_flows"]')"
  # The flows' losses include the start's drops (before the first reload) and, after it, frames the
  # worker could not queue toward the generator (`tx_full`: the generator descheduled on a shared core
  # for longer than the worker's 10 ms back-pressure bound, not the reload). Every other drop after the first reload would be the reload's doing: none may
  # happen, and the staying members' losses must be covered by those two counts.
  txfull1=$(field "$counters" 'd["drops"].get("tx_full", 0)')
  other1=$((drops1 - drops0 - (txfull1 - txfull0)))
  echo "soak: hitless: drops after the first reload other than tx_full $other1"
  check "$([ "$stay_lost" -le $((drops0 + txfull1 - txfull0)) ] && [ "$other1" = 0 ] && [ "$stay_moved" = 0 ] && echo 1)" "no flow of a member that stays moved or lost a frame to a reload"
  errors=$((errors - moved))
fi
check "$([ "$errors" = 0 ] && echo 1)" "no rewrite error"
check "$([ "$reloads" -gt 0 ] && [ "$reload_failures" = 0 ] && echo 1)" "every reload applied"
check "$([ "$mbufs1" -le $((mbufs0 + slack)) ] && echo 1)" "mbufs back to the level before the load"
check "$([ "$growth" -le $((table_kib + 16384)) ] && echo 1)" "no memory growth beyond the flow table"
check "$([ "$max_busy" -le $((max_stall_ms * 1000000)) ] && echo 1)" "no worker stall over $max_stall_ms ms"
check "$([ "$log_bad" = 0 ] && echo 1)" "no panic or ERROR in the log"
[ "$fail" = 0 ] || exit 1
