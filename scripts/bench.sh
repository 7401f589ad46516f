#!/usr/bin/env bash
# Benchmark harness: criterion micro-benchmarks and an end-to-end peer comparison of MUXes.
#
# Usage: scripts/bench.sh [--quick] [--out DIR] [--no-criterion] [--peers LIST] [--no-dataplane]
#   --quick         short runs (criterion 2 s per bench, wrk 3 s per load) instead of full (10 s, 15 s)
#   --out DIR       where the CSVs, plots and README-table.md go (default benches/results)
#   --no-criterion  skip part (a) (the test suite already runs the code; the smoke test uses this)
#   --peers LIST    comma-separated end-to-end peers (default kernel,haproxy,vipmux; "" = none)
#   --no-dataplane  skip part (d), the memif data-plane runs
# Environment: BENCH_CONNS (wrk connections, 32 quick / 64 full), BENCH_THREADS (wrk threads, 1),
#   BENCH_SECS (wrk seconds), VIPMUX_BIN (default $CARGO_TARGET_DIR/release/vipmux).
#
# (a) criterion: every [[bench]] of Cargo.toml, then target/criterion/**/new/estimates.json -> criterion.csv
#     (the handoff bench prints the cost of a handed-off packet instead -> handoff.txt)
#     (a bench id containing `burstN`, e.g. `burst32`, counts N packets per iteration -> ns/packet, Mpps).
# (b) end to end on the one-arm namespaces (scripts/netns/one-arm.sh) with the same client and the same
#     backends (nginx, short fixed body) for each peer:
#       kernel   nftables DNAT + conntrack in <p>-mux (one-arm.sh --mux kernel)
#       haproxy  HAProxy TCP mode in <p>-mux, bound to the VIP (added to mux0); backends see 10.1.0.2
#       vipmux   `vipmux run --config` in <p>-mux (one-arm.sh --mux dpdk); skipped while not available
#     wrk measures req/s with keep-alive and conn/s without (Connection: close), with p99 latency;
#     CPU: the mux processes' utime+stime (% of one core) and /proc/stat of the whole machine
#     (busy and softirq, % of all cores) -> e2e.csv (date, machine, peer, metric, value, unit).
# (c) scripts/bench/cpu_pct.sh PID SECONDS: idle CPU of a process (used here for the process peers), and
#     the idle CPU of vipmux with adaptive polling on and off (idle.csv).
# (d) memif data plane (scripts/bench/dataplane.sh): vipmux pktgen (memif server, core 0) against
#     dpdk-testpmd macswap and vipmux run (memif client, core 1) -> dataplane.csv.
# Then e2e.png / dataplane.png (scripts/bench/plot.py) and README-table.md (scripts/bench/report.py).
# Everything started is killed by PID and the namespaces torn down on exit, failure or Ctrl-C.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/scripts/bench/lib.sh"
# shellcheck source=netns/lib.sh
. "$ROOT/scripts/netns/lib.sh"
# shellcheck source=bench/dataplane.sh
. "$ROOT/scripts/bench/dataplane.sh"

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
log() { printf '[bench] %s\n' "$*" >&2; }

quick=0
out=benches/results
criterion=1
peers=kernel,haproxy,vipmux
dataplane=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --no-criterion) criterion=0; shift ;;
    --peers) [ $# -ge 2 ] || usage; peers=$2; shift 2 ;;
    --no-dataplane) dataplane=0; shift ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
if [ $quick = 1 ]; then
  crit_secs=2 wrk_secs=${BENCH_SECS:-3} conns=${BENCH_CONNS:-32} idle_secs=1
else
  crit_secs=10 wrk_secs=${BENCH_SECS:-15} conns=${BENCH_CONNS:-64} idle_secs=5
fi
threads=${BENCH_THREADS:-1}
mkdir -p "$out"
out=$(cd "$out" && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
MACHINE=$(bench_machine)
failures=()
if [ -z "${VIPMUX_BIN:-}" ]; then
  VIPMUX_BIN=$TARGET_DIR/release/vipmux
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --quiet) || failures+=("cargo build --release")
fi

# Python: Debian's (matplotlib is a Debian package) when it is there.
PY=python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then PY=/usr/bin/python3; fi

# ---------------------------------------------------------------- cleanup (trap)
TOPO_PREFIX=""     # namespace prefix of the topology that is up, if any
OWN_PIDS=()        # processes this script started (killed by PID)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#OWN_PIDS[@]} -gt 0 ]; then nsl_kill_pids "${OWN_PIDS[@]}"; fi
  OWN_PIDS=()
  dp_cleanup
  if [ -n "$TOPO_PREFIX" ]; then
    VIPMUX_NS_PREFIX=$TOPO_PREFIX VIPMUX_NS_STATE="" "$ROOT/scripts/netns/one-arm.sh" down >/dev/null 2>&1 ||
      log "teardown of $TOPO_PREFIX failed"
    TOPO_PREFIX=""
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- (a) criterion
run_criterion() {
  local names n since
  names=$(awk '/^\[\[bench\]\]/ { inb = 1; next } /^\[/ { inb = 0 }
               inb && /^[ \t]*name[ \t]*=/ { gsub(/.*=[ \t]*"|".*/, ""); print }' Cargo.toml)
  since=$(date +%s)
  if [ -z "$names" ]; then
    log "criterion: no [[bench]] in Cargo.toml"
  fi
  for n in $names; do
    log "criterion: cargo bench --bench $n (measurement ${crit_secs} s per bench)"
    if ! cargo bench --bench "$n" -- --warm-up-time 1 --measurement-time "$crit_secs" >"$out/criterion-$n.log" 2>&1; then
      log "criterion: bench $n failed (log: $out/criterion-$n.log)"
      failures+=("criterion:$n")
    fi
  done
  # The hand-off bench prints its figure (H of the README's cost model) instead of criterion files.
  if grep -h '^handoff:' "$out/criterion-handoff.log" >"$out/handoff.txt" 2>/dev/null; then
    log "$(cat "$out/handoff.txt")"
  fi
  "$PY" "$ROOT/scripts/bench/criterion_csv.py" --criterion-dir "$TARGET_DIR/criterion" --out "$out/criterion.csv" \
    --date "$DATE" --machine "$MACHINE" --since "$since"
}

# ---------------------------------------------------------------- (b) end to end
E2E=$out/e2e.csv
emit() { printf '%s,%s,%s,%s,%s,%s\n' "$DATE" "$MACHINE" "$1" "$2" "$3" "$4" >>"$E2E"; }

# topo_up PEER MODE — bring the one-arm topology up without the python servers; sets TOPO_PREFIX, STATE.
topo_up() {
  local prefix="vb$$${1:0:1}"
  TOPO_PREFIX=$prefix
  VIPMUX_NS_PREFIX=$prefix VIPMUX_NS_STATE="" VIPMUX_NS_OWNER_PID=$$ \
    "$ROOT/scripts/netns/one-arm.sh" up --mux "$2" --no-servers >/dev/null
  VIPMUX_NS_PREFIX=$prefix
  unset VIPMUX_NS_STATE
  nsl_init use
  mkdir -p "$STATE/bench"
  # Many short connections from one client address: wide port range, reuse of TIME_WAIT ports.
  nsl_sysctl client "net.ipv4.ip_local_port_range=1024 65535" net.ipv4.tcp_tw_reuse=1
  nsl_sysctl mux "net.ipv4.ip_local_port_range=1024 65535" net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=8192
}

topo_down() {
  if [ ${#OWN_PIDS[@]} -gt 0 ]; then nsl_kill_pids "${OWN_PIDS[@]}"; fi
  OWN_PIDS=()
  VIPMUX_NS_PREFIX=$TOPO_PREFIX VIPMUX_NS_STATE="" "$ROOT/scripts/netns/one-arm.sh" down >/dev/null
  TOPO_PREFIX=""
}

# start_bg NAME ROLE CMD... — start CMD in ROLE's namespace in the background (ip netns exec execs CMD, so
# $! is CMD's PID); record the PID for cleanup here and for the topology's teardown.
start_bg() {
  local name=$1 role=$2
  shift 2
  # Not through the nsx function: a backgrounded function is a subshell, and $! would be its PID.
  ip netns exec "$(nsl_ns "$role")" "$@" </dev/null >>"$STATE/bench/$name.log" 2>&1 &
  OWN_PIDS+=("$!")
  nsl_record_pid "bench-$name" "$!"
}

# start_nginx — one nginx per backend on its address, port 80, answering a short fixed body.
start_nginx() {
  local i role ip dir
  read -r -a roles <<<"$(grep '^BACKEND_ROLES=' "$STATE/topology.env" | cut -d= -f2- | tr -d "'\\\\")"
  i=0
  for role in "${roles[@]}"; do
    i=$((i + 1))
    ip=10.1.0.$((10 + i))
    dir=$STATE/bench/nginx-$role
    mkdir -p "$dir/tmp"
    nsl_sysctl "$role" net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen $ip:80 backlog=8192;
    location / { default_type text/plain; return 200 "backend=$role\n"; }
  }
}
EOF
    start_bg "nginx-$role" "$role" nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
    if ! nsl_wait_file "$dir/nginx.pid" 10; then
      log "nginx in $role did not start: $(tail -n 3 "$STATE/bench/nginx-$role.log" "$dir/error.log" 2>/dev/null)"
      return 1
    fi
  done
}

# start_haproxy — HAProxy in TCP mode in the mux namespace, bound to the VIP, round robin over the backends.
start_haproxy() {
  local i cfg=$STATE/bench/haproxy.cfg
  # The kernel DNAT rules must go: the VIP is now a local address of the mux namespace.
  nsx mux nft delete table ip vipmux
  nsx mux ip addr add 10.1.0.100/32 dev mux0
  {
    printf 'global\n  maxconn 8000\n  nbthread 1\n  pidfile %s/bench/haproxy.pid\n' "$STATE"
    printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n'
    printf 'frontend vip\n  bind 10.1.0.100:80 backlog 8192\n  default_backend pool\n'
    printf 'backend pool\n  balance roundrobin\n'
    for i in $(seq 1 "${#roles[@]}"); do printf '  server b%d 10.1.0.%d:80\n' "$i" $((10 + i)); done
  } >"$cfg"
  nsx mux haproxy -c -q -f "$cfg" >/dev/null
  start_bg haproxy mux haproxy -db -f "$cfg"
  MUX_PIDS=("${OWN_PIDS[-1]}")
}

# vipmux_supported — the binary exists and `run --help` offers --config.
vipmux_supported() {
  [ -x "$VIPMUX_BIN" ] && "$VIPMUX_BIN" run --help 2>/dev/null | grep -q -- '--config'
}

# start_vipmux — `vipmux run --config` in the mux namespace on mux0 (one-arm, NAT, the backends reply through
# the MUX as their gateway): interface 10.1.0.2/24 on net_af_packet0, gateway 10.1.0.1, the VIP 10.1.0.100,
# one TCP rule 80 -> 80 over the backends. Bounded by af_packet (one copy each way through the kernel,
# ~0.7 Mpps on this kind of machine) and by the nginx backends, not by the data path.
start_vipmux() {
  local i cfg=$STATE/bench/vipmux.toml
  {
    printf '[appliance]\nname = "bench"\nhash_seed = 0x5eedcafe\n\n'
    printf '[dataplane]\ndpdk_profile = "%s/dpdk-config/ci-af-packet.toml"\nworkers = 1\n\n' "$ROOT"
    printf '[control]\nsocket = "%s/bench/vipmux.sock"\nmetrics = "127.0.0.1:9469"\n\n' "$STATE"
    printf '[[interfaces]]\nname = "lan"\nport = "net_af_packet0"\naddress = "10.1.0.2/24"\ngateway = "10.1.0.1"\n\n'
    printf '[[frontends]]\nname = "vip"\naddress = "10.1.0.100"\ninterface = "lan"\n\n'
    printf '[[backend_pools]]\nname = "web"\nmembers = [\n'
    for i in $(seq 1 "${#roles[@]}"); do printf '  { name = "b%d", address = "10.1.0.%d" },\n' "$i" $((10 + i)); done
    printf ']\n\n'
    printf '[[load_balancing_rules]]\nname = "web"\nfrontend = "vip"\nprotocol = "tcp"\nfrontend_port = 80\n'
    printf 'backend_port = 80\nbackend_pool = "web"\n'
  } >"$cfg"
  "$VIPMUX_BIN" check "$cfg" >>"$STATE/bench/vipmux.log" 2>&1 ||
    log "vipmux: check --config failed: $(tail -n 3 "$STATE/bench/vipmux.log" | tr '\n' ' ')"
  # The metrics endpoint listens on the namespace's loopback.
  nsx mux ip link set lo up
  start_bg vipmux mux "$VIPMUX_BIN" run --config "$cfg" --eal=--vdev=net_af_packet0,iface=mux0
  MUX_PIDS=("${OWN_PIDS[-1]}")
}

# alive PID — the process exists and is not a zombie.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# vip_ready SECONDS — bounded wait until a GET to the VIP from the client answers from a backend, while the
# mux processes (if any) are alive.
vip_ready() {
  local deadline=$(($(date +%s) + $1)) p
  while [ "$(date +%s)" -lt "$deadline" ]; do
    for p in "${MUX_PIDS[@]}"; do alive "$p" || return 1; done
    if nsx client curl -s -m 1 http://10.1.0.100/ 2>/dev/null | grep -q '^backend=b'; then return 0; fi
    sleep 0.1
  done
  return 1
}

# spread_ok — 30 sequential requests must all answer and reach every backend.
spread_ok() {
  local i seen=""
  for i in $(seq 1 30); do
    seen+="$(nsx client curl -s -m 2 http://10.1.0.100/ || true)"$'\n'
  done
  [ "$(grep -c '^backend=b' <<<"$seen")" -eq 30 ] || return 1
  [ "$(grep '^backend=b' <<<"$seen" | sort -u | wc -l)" -eq "${#roles[@]}" ]
}

# to_ms VALUE — wrk latency (e.g. 812.00us, 1.20ms, 1.05s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.3f\n", n }'
}

# load PEER MODE — one wrk run (MODE keepalive|close) with CPU accounting; emits its metrics.
load() {
  local peer=$1 mode=$2 hdr=() res s0 s1 t0 t1 p0 p1 el rps p99 errs cpu sirq wpid wrc
  [ "$mode" = close ] && hdr=(-H "Connection: close")
  p0=$(bench_proc_ticks "${MUX_PIDS[@]}")
  s0=$(bench_stat_snapshot)
  t0=$(bench_now)
  # wrk in the background and `wait`: a signal to this script runs the trap at once (which kills wrk).
  timeout $((wrk_secs + 30)) ip netns exec "$(nsl_ns client)" \
    wrk -t "$threads" -c "$conns" -d "${wrk_secs}s" --timeout 5s --latency "${hdr[@]}" http://10.1.0.100/ \
    >"$out/wrk-$peer-$mode.txt" 2>&1 </dev/null &
  wpid=$!
  OWN_PIDS+=("$wpid")
  wrc=0
  wait "$wpid" || wrc=$?
  unset 'OWN_PIDS[-1]'
  if [ "$wrc" != 0 ]; then
    log "$peer/$mode: wrk failed: $(cat "$out/wrk-$peer-$mode.txt")"
    failures+=("$peer:$mode")
    return 0
  fi
  t1=$(bench_now)
  s1=$(bench_stat_snapshot)
  p1=$(bench_proc_ticks "${MUX_PIDS[@]}")
  el=$(bench_elapsed "$t0" "$t1")
  res=$(cat "$out/wrk-$peer-$mode.txt")
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$res")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$res")
  errs=$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 }
              /Non-2xx or 3xx responses:/ { s += $5 } END { print s + 0 }' <<<"$res")
  read -r cpu sirq <<<"$(bench_stat_pct "$s0" "$s1")"
  if [ -z "$rps" ] || [ -z "$p99" ]; then
    log "$peer/$mode: could not parse wrk output"
    failures+=("$peer:$mode")
    return 0
  fi
  if [ "$mode" = keepalive ]; then
    emit "$peer" rps_keepalive "$rps" "req/s"
  else
    emit "$peer" cps_close "$rps" "conn/s"
  fi
  emit "$peer" "p99_$mode" "$(to_ms "$p99")" ms
  emit "$peer" "errors_$mode" "$errs" count
  if [ ${#MUX_PIDS[@]} -gt 0 ]; then emit "$peer" "mux_cpu_$mode" "$(bench_ticks_pct "$p0" "$p1" "$el")" "% of one core"; fi
  emit "$peer" "machine_cpu_$mode" "$cpu" "% of machine"
  emit "$peer" "softirq_$mode" "$sirq" "% of machine"
  log "$peer/$mode: $rps/s, p99 $p99, errors $errs, machine CPU $cpu % (softirq $sirq %)"
}

# run_peer PEER — topology, servers, the peer, checks, the two loads, teardown.
run_peer() {
  local peer=$1 idle
  MUX_PIDS=()
  case $peer in
    kernel | haproxy) topo_up "$peer" kernel ;;
    vipmux)
      if ! vipmux_supported; then
        log "vipmux: not available yet ($VIPMUX_BIN missing or its 'run' has no --config); skipped"
        emit vipmux available 0 bool
        return 0
      fi
      topo_up "$peer" dpdk
      ;;
    *) log "unknown peer $peer"; failures+=("$peer"); return 0 ;;
  esac
  start_nginx
  case $peer in
    haproxy) start_haproxy ;;
    vipmux) start_vipmux ;;
  esac
  if ! vip_ready 20 || ! spread_ok; then
    if [ "$peer" = vipmux ]; then
      log "vipmux: not available yet (it did not serve the VIP; log: $(tail -n 3 "$STATE/bench/vipmux.log" 2>/dev/null | tr '\n' ' '))"
      emit vipmux available 0 bool
    else
      log "$peer: the VIP does not answer from every backend; skipped. Logs:"
      tail -n 5 "$STATE"/bench/*.log >&2 2>/dev/null || true
      failures+=("$peer")
    fi
    topo_down
    return 0
  fi
  emit "$peer" available 1 bool
  # Other work on the machine skews every figure: keep the 1-minute load average next to them.
  emit "$peer" loadavg1_before "$(cut -d' ' -f1 /proc/loadavg)" load
  if [ ${#MUX_PIDS[@]} -gt 0 ]; then
    idle=$("$ROOT/scripts/bench/cpu_pct.sh" "${MUX_PIDS[0]}" "$idle_secs")
    emit "$peer" idle_mux_cpu "$idle" "% of one core"
    idle_on=$idle
  fi
  load "$peer" keepalive
  load "$peer" close
  if [ "$peer" = vipmux ]; then vipmux_idle_busy; fi
  topo_down
}

# vipmux_idle_busy — idle CPU of vipmux with adaptive polling off (the e2e run above had it on: the
# ci-af-packet profile): restart vipmux with a copy of the profile, wait until it serves, measure.
vipmux_idle_busy() {
  local cfg=$STATE/bench/vipmux.toml prof=$STATE/bench/af-packet-busy.toml idle
  sed 's/^adaptive_polling = true/adaptive_polling = false/' "$ROOT/dpdk-config/ci-af-packet.toml" >"$prof"
  nsl_kill_pids "${MUX_PIDS[@]}"
  sed -i "s|^dpdk_profile = .*|dpdk_profile = \"$prof\"|" "$cfg"
  start_bg vipmux-busy mux "$VIPMUX_BIN" run --config "$cfg" --eal=--vdev=net_af_packet0,iface=mux0
  MUX_PIDS=("${OWN_PIDS[-1]}")
  if ! vip_ready 20; then
    log "vipmux: restart with adaptive polling off did not serve; no idle figure"
    return 0
  fi
  sleep 1
  idle=$("$ROOT/scripts/bench/cpu_pct.sh" "${MUX_PIDS[0]}" "$idle_secs")
  emit vipmux idle_mux_cpu_busy_poll "$idle" "% of one core"
  log "vipmux idle CPU: adaptive polling on ${idle_on:-?} %, off $idle %"
}

run_e2e() {
  local p
  nsl_require_tools ip nft curl wrk nginx haproxy timeout
  printf 'date,machine,peer,metric,value,unit\n' >"$E2E"
  for p in ${peers//,/ }; do
    log "peer $p (wrk: $threads thread(s), $conns connections, $wrk_secs s per load)"
    run_peer "$p"
  done
}

log "$DATE $MACHINE -> $out"
if [ $criterion = 1 ]; then run_criterion; fi
if [ -n "$peers" ]; then run_e2e; fi
if [ $dataplane = 1 ]; then run_dataplane; fi
"$PY" "$ROOT/scripts/bench/report.py" "$out"
if "$PY" -c 'import matplotlib' 2>/dev/null; then
  "$PY" "$ROOT/scripts/bench/plot.py" "$out"
else
  log "matplotlib missing (Debian python3-matplotlib): no plots"
  failures+=("plot")
fi
if [ ${#failures[@]} -gt 0 ]; then
  log "FAILED: ${failures[*]}"
  exit 1
fi
log "done: $(cd "$out" && ls)"
