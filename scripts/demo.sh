#!/usr/bin/env bash
# vipmux demo: set up the machine, run the appliance in the one-arm namespace topology, drive real
# HTTP traffic through the VIP, fail a backend's health probe and bring it back, print a report,
# and tear everything down again (also on error or Ctrl-C).
#
# Usage (as root): scripts/demo.sh [--no-setup]
#   --no-setup   skip scripts/setup.sh (packages, hugepages, release build) when already done
# Environment: VIPMUX_DEMO_PREFIX (namespace prefix, default "demo"), VIPMUX_DEMO_CONFIG (default
# examples/demo.toml), CARGO_TARGET_DIR (where the release binary is, default target).
#
# Topology (scripts/netns/README.md): client 10.9.0.10 -> router -> LAN bridge with the MUX
# (vipmux on net_af_packet over mux0, address 10.1.0.2) and backends b1..b3 (10.1.0.11-13), which
# run HTTP servers (/ and /health) and TCP/UDP echo servers on 7000. VIP 10.1.0.100.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PREFIX=${VIPMUX_DEMO_PREFIX:-demo}
CONFIG=${VIPMUX_DEMO_CONFIG:-$ROOT/examples/demo.toml}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/vipmux
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
NETNS=$ROOT/scripts/netns
VIP=10.1.0.100
FIRST_REQUESTS=60
FAILOVER_REQUESTS=30
RECOVERY_REQUESTS=30

setup=1
for a in "$@"; do
  case $a in
    --no-setup) setup=0 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*" >&2; }
log() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'demo: error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, DPDK)"

export VIPMUX_NS_PREFIX=$PREFIX
STATE=${TMPDIR:-/tmp}/vipmux-netns/$PREFIX
export VIPMUX_NS_STATE=$STATE
VIPMUX_PID=
MUX_NS=$PREFIX-mux
CLIENT_NS=$PREFIX-client

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$VIPMUX_PID" ] && kill -0 "$VIPMUX_PID" 2>/dev/null; then
    say "stopping vipmux (pid $VIPMUX_PID)"
    kill -TERM "$VIPMUX_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$VIPMUX_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$VIPMUX_PID" 2>/dev/null; then
      log "vipmux did not exit within 10 s; killing it"
      kill -KILL "$VIPMUX_PID" 2>/dev/null || true
    fi
    wait "$VIPMUX_PID" 2>/dev/null || true
  fi
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -q "^$PREFIX-"; then
    say "tearing down the topology"
    "$NETNS/one-arm.sh" down >/dev/null 2>&1 || log "teardown reported an error (see $STATE)"
  fi
  if [ $rc -ne 0 ] && [ -f "$STATE/vipmux.log" ]; then
    printf '\n--- last lines of the vipmux log (%s) ---\n' "$STATE/vipmux.log" >&2
    tail -n 30 "$STATE/vipmux.log" >&2 || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
if [ $setup = 1 ]; then
  say "machine setup (scripts/setup.sh: packages, hugepages, release build)"
  scripts/setup.sh
fi
[ -x "$BIN" ] || die "no release binary at $BIN (run without --no-setup, or set CARGO_TARGET_DIR)"
[ -r "$CONFIG" ] || die "no config at $CONFIG"
"$BIN" check "$CONFIG" >/dev/null || die "$CONFIG does not validate"
SOCKET=$(sed -n 's/^socket *= *"\(.*\)".*/\1/p' "$CONFIG" | head -n 1)
METRICS=$(sed -n 's/^metrics *= *"\(.*\)".*/\1/p' "$CONFIG" | head -n 1)
[ -n "$SOCKET" ] || die "$CONFIG has no [control] socket"
T_START=$(date +%s.%N)

# A previous run that was killed hard may have left its topology: take it down first.
if ip netns list | awk '{print $1}' | grep -q "^$PREFIX-"; then
  say "removing a leftover topology with prefix $PREFIX"
  "$NETNS/one-arm.sh" down >/dev/null 2>&1 || true
fi

say "bringing up the one-arm topology (prefix $PREFIX, 3 backends with HTTP servers)"
UP_LOG=$(mktemp)
if ! "$NETNS/one-arm.sh" up --backends 3 --mux dpdk --return gateway >/dev/null 2>"$UP_LOG"; then
  sed 's/^/    /' "$UP_LOG" >&2
  rm -f "$UP_LOG"
  die "the topology did not come up"
fi
grep -c 'listening' "$UP_LOG" | xargs -I{} printf '    %s backend servers listening\n' {} >&2
rm -f "$UP_LOG"

say "starting vipmux in $MUX_NS"
ip link set lo up 2>/dev/null || true
ip netns exec "$MUX_NS" ip link set lo up
ip netns exec "$MUX_NS" "$BIN" run --config "$CONFIG" --eal=--vdev=net_af_packet0,iface=mux0 \
  >"$STATE/vipmux.log" 2>&1 &
VIPMUX_PID=$!
log "pid $VIPMUX_PID, log $STATE/vipmux.log"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
status_json() { "$BIN" status --json --socket "$SOCKET" 2>/dev/null; }
# member_health NAME — prints "up" / "down" / "?" from `vipmux status --json`.
member_health() {
  status_json | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except Exception:
    print("?"); sys.exit(0)
for p in s.get("pools", []):
    for m in p.get("members", []):
        if m.get("name") == sys.argv[1]:
            print("up" if m.get("healthy") else "down"); sys.exit(0)
print("?")' "$1"
}
# wait_for SECONDS DESCRIPTION CMD... — poll CMD every 0.1 s until it succeeds; fail after SECONDS.
wait_for() {
  local limit=$1 what=$2 t0
  shift 2
  t0=$(now)
  while ! "$@"; do
    kill -0 "$VIPMUX_PID" 2>/dev/null || die "vipmux exited while waiting for: $what"
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      die "timed out after ${limit} s waiting for: $what"
    fi
    sleep 0.1
  done
}
forwarding() { "$BIN" status --socket "$SOCKET" >/dev/null 2>&1; }
all_up() { for m in b1 b2 b3; do [ "$(member_health $m)" = up ] || return 1; done; }
is_down() { [ "$(member_health "$1")" = down ]; }
is_up() { [ "$(member_health "$1")" = up ]; }

T0=$(now)
wait_for 60 "vipmux status to exit 0 (forwarding)" forwarding
log "forwarding after $(elapsed "$T0") s"
wait_for 20 "every member's probe up" all_up
log "all three members healthy after $(elapsed "$T0") s"

OK=0
FAILED=0
# drive N LABEL — N curl requests from the client to the VIP; prints the spread "b1=.. b2=.. b3=..".
drive() {
  local n=$1 i body b
  declare -A seen=([b1]=0 [b2]=0 [b3]=0)
  for i in $(seq 1 "$n"); do
    if body=$(ip netns exec "$CLIENT_NS" curl -sS --fail -m 3 "http://$VIP/" 2>/dev/null); then
      b=$(printf '%s' "$body" | sed -n 's/^backend=\([^ ]*\).*/\1/p')
      if [ -n "$b" ]; then
        OK=$((OK + 1))
        seen[$b]=$((${seen[$b]:-0} + 1))
        continue
      fi
    fi
    FAILED=$((FAILED + 1))
  done
  SPREAD="b1=${seen[b1]} b2=${seen[b2]} b3=${seen[b3]}"
  B2_COUNT=${seen[b2]}
}

say "$FIRST_REQUESTS HTTP requests from the client to http://$VIP/"
drive "$FIRST_REQUESTS"
SPREAD_BEFORE=$SPREAD
log "spread: $SPREAD_BEFORE"

say "inbound NAT rule: $VIP:7001 -> b1:7000 (TCP echo, 'whoami')"
NAT_REPLY=$(ip netns exec "$CLIENT_NS" python3 "$NETNS/echo.py" tcp-client --to "$VIP:7001" --data whoami \
  2>&1 || true)
log "$NAT_REPLY"
case $NAT_REPLY in backend=b1\ *) NAT_OK=yes ;; *) NAT_OK=no ;; esac

say "failover: b2's /health starts answering 503"
"$NETNS/backend.sh" health b2 fail
T_FAIL=$(now)
wait_for 15 "b2 reported down by vipmux status" is_down b2
FAILOVER_TIME=$(elapsed "$T_FAIL")
log "b2 down after $FAILOVER_TIME s"
"$BIN" status --socket "$SOCKET" | grep -E '\bb2\b' | sed 's/^/    /' >&2 || true
drive "$FAILOVER_REQUESTS"
SPREAD_FAILOVER=$SPREAD
B2_DURING=$B2_COUNT
log "$FAILOVER_REQUESTS requests: $SPREAD_FAILOVER"

say "recovery: b2's /health answers 200 again"
"$NETNS/backend.sh" health b2 ok
T_OK=$(now)
wait_for 15 "b2 reported up again" is_up b2
RECOVERY_TIME=$(elapsed "$T_OK")
log "b2 up after $RECOVERY_TIME s"
drive "$RECOVERY_REQUESTS"
SPREAD_RECOVERY=$SPREAD
log "$RECOVERY_REQUESTS requests: $SPREAD_RECOVERY"

say "vipmux status"
"$BIN" status --socket "$SOCKET" || true

METRICS_TEXT=
if [ -n "$METRICS" ]; then
  METRICS_TEXT=$(ip netns exec "$MUX_NS" curl -s -m 3 "http://$METRICS/metrics" || true)
fi
metric() { printf '%s\n' "$METRICS_TEXT" | awk -v k="$1" '$1 == k { print $2; exit }'; }

TOTAL=$((FIRST_REQUESTS + FAILOVER_REQUESTS + RECOVERY_REQUESTS))
verdict=PASS
[ "$FAILED" = 0 ] || verdict=FAIL
[ "$B2_DURING" = 0 ] || verdict=FAIL
[ "$NAT_OK" = yes ] || verdict=FAIL
cat <<EOF

================================ vipmux demo report ================================
requests through VIP $VIP   : $OK ok, $FAILED failed (of $TOTAL)
spread, first $FIRST_REQUESTS          : $SPREAD_BEFORE
spread, b2 probe failing   : $SPREAD_FAILOVER   (b2 must get none)
spread, b2 back            : $SPREAD_RECOVERY
failover (503 -> b2 down)   : $FAILOVER_TIME s   (probe interval 1 s; a non-200 answer marks down at once)
recovery (200 -> b2 up)     : $RECOVERY_TIME s
inbound NAT :7001 -> b1     : ${NAT_REPLY:-no reply}
metrics ($METRICS):
  packets received          : $(metric vipmux_packets_received_total)
  packets transmitted       : $(metric vipmux_packets_transmitted_total)
  new flows, rule web       : $(metric 'vipmux_rule_new_flows_total{frontend="web-fe",rule="web"}')
  new flows per member      : b1=$(metric 'vipmux_member_new_flows_total{pool="web",member="b1"}') b2=$(metric 'vipmux_member_new_flows_total{pool="web",member="b2"}') b3=$(metric 'vipmux_member_new_flows_total{pool="web",member="b3"}')
  drops (non-zero)          : $(printf '%s\n' "$METRICS_TEXT" | awk '/^vipmux_drops_total/ && $2 != 0 { sub(/^vipmux_drops_total/, ""); printf "%s=%s ", $1, $2; n++ } END { if (!n) print "none" }')
demo time (after setup)     : $(elapsed "$T_START") s
result                      : $verdict
=====================================================================================
EOF
[ $verdict = PASS ]
