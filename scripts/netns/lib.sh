# shellcheck shell=bash
# Shared helpers for the vipmux network-namespace test topologies (sourced, not executed).
#
# Every object a topology creates is named from one prefix so that parallel runs never collide and
# teardown can find everything again:
#   VIPMUX_NS_PREFIX      name prefix (default: vmx<pid of the calling shell>); namespaces are "<prefix>-<role>"
#   VIPMUX_NS_STATE_ROOT  parent of the per-run state directories (default: ${TMPDIR:-/tmp}/vipmux-netns)
#   VIPMUX_NS_STATE       this run's state directory (default: $VIPMUX_NS_STATE_ROOT/$VIPMUX_NS_PREFIX)
#   VIPMUX_NS_OWNER_PID   optional PID of the process owning the topology (a test binary); once it is gone,
#                         cleanup-stale.sh may tear the topology down
# The state directory holds the PIDs this run started (only those are killed on teardown), server logs,
# health flags and topology.env (the KEY=VALUE description printed by `up`).
#
# Interfaces live only inside the namespaces; nothing is created in the root namespace.

NSL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NSL_STATE_ROOT=${VIPMUX_NS_STATE_ROOT:-${TMPDIR:-/tmp}/vipmux-netns}

nsl_log() { printf '[netns] %s\n' "$*" >&2; }
nsl_die() {
  printf '[netns] error: %s\n' "$*" >&2
  exit 1
}

# nsl_init up|down|use — fix PREFIX and STATE. "up" defaults the prefix to vmx$$ and records it as the last
# one created; "down"/"use" without VIPMUX_NS_PREFIX fall back to that record so hand use works.
nsl_init() {
  local mode=$1
  if [ -n "${VIPMUX_NS_PREFIX:-}" ]; then
    PREFIX=$VIPMUX_NS_PREFIX
  elif [ "$mode" = up ]; then
    PREFIX=vmx$$
  elif [ -r "$NSL_STATE_ROOT/last" ]; then
    PREFIX=$(cat "$NSL_STATE_ROOT/last")
    nsl_log "VIPMUX_NS_PREFIX not set; using the last topology brought up: $PREFIX"
  else
    nsl_die "VIPMUX_NS_PREFIX is not set and no topology was recorded in $NSL_STATE_ROOT/last"
  fi
  case $PREFIX in
    *[!A-Za-z0-9_]* | '') nsl_die "prefix '$PREFIX' must be non-empty and only [A-Za-z0-9_]" ;;
  esac
  [ ${#PREFIX} -le 24 ] || nsl_die "prefix '$PREFIX' is longer than 24 characters"
  STATE=${VIPMUX_NS_STATE:-$NSL_STATE_ROOT/$PREFIX}
  export VIPMUX_NS_PREFIX=$PREFIX VIPMUX_NS_STATE=$STATE
  if [ "$mode" = up ]; then
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/health"
    mkdir -p "$NSL_STATE_ROOT"
    printf '%s\n' "$PREFIX" >"$NSL_STATE_ROOT/last"
    if [ -n "${VIPMUX_NS_OWNER_PID:-}" ]; then printf '%s\n' "$VIPMUX_NS_OWNER_PID" >"$STATE/owner"; fi
  fi
}

# nsl_require_tools TOOL... — fail with a clear message when a needed command is missing.
nsl_require_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || nsl_die "missing tools: ${missing[*]} (run scripts/setup.sh)"
  [ "$(id -u)" = 0 ] || nsl_die "network namespaces need root"
}

# nsl_ns ROLE — full namespace name of a role.
nsl_ns() { printf '%s-%s' "$PREFIX" "$1"; }

# nsx ROLE CMD... — run CMD inside the role's namespace.
nsx() {
  local role=$1
  shift
  ip netns exec "$(nsl_ns "$role")" "$@"
}

# nsl_sysctl ROLE KEY=VALUE... — set sysctls inside a namespace; unknown keys are ignored.
nsl_sysctl() {
  local role=$1 kv
  shift
  for kv in "$@"; do nsx "$role" sysctl -qw "$kv" >/dev/null 2>&1 || true; done
}

# nsl_ns_create ROLE — create a namespace with lo up, IPv6 and ICMP redirects off, rp_filter off.
nsl_ns_create() {
  local role=$1 ns
  ns=$(nsl_ns "$role")
  if ! ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    ip netns add "$ns"
  fi
  printf '%s\n' "$ns" >>"$STATE/namespaces"
  nsx "$role" ip link set lo up
  nsl_sysctl "$role" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
}

# nsl_v6_enable ROLE — turn IPv6 back on in a namespace for the --ipv6 topologies: no duplicate
# address detection (addresses usable at once), no router advertisements, no redirects.
nsl_v6_enable() {
  nsl_sysctl "$1" net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
    net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0
}

# nsl_offloads_off ROLE IF — software checksums and no TSO/GSO/GRO, so every frame on the wire is a
# complete, correctly checksummed packet (what a DPDK af_packet port expects to receive).
nsl_offloads_off() {
  if [ "${VIPMUX_NS_OFFLOADS:-off}" = off ] && command -v ethtool >/dev/null 2>&1; then
    nsx "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
  fi
}

# nsl_veth ROLE_A IF_A ROLE_B IF_B — veth pair between two namespaces, both ends up, offloads off.
nsl_veth() {
  local ra=$1 ia=$2 rb=$3 ib=$4
  ip -n "$(nsl_ns "$ra")" link add "$ia" type veth peer name "$ib" netns "$(nsl_ns "$rb")"
  nsl_offloads_off "$ra" "$ia"
  nsl_offloads_off "$rb" "$ib"
  nsx "$ra" ip link set "$ia" up
  nsx "$rb" ip link set "$ib" up
}

# nsl_bridge ROLE BR — a bridge inside a namespace (no STP, no forwarding delay), up.
nsl_bridge() {
  nsx "$1" ip link add "$2" type bridge stp_state 0 forward_delay 0
  nsl_offloads_off "$1" "$2"
  # With br_netfilter loaded, a bridge validates IPv4/ARP headers and drops malformed frames; a
  # physical switch would not, and the crafted-packet tests need them to reach the MUX. The
  # sysctls exist only when the module is loaded.
  nsx "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
  nsx "$1" sysctl -qw net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
  nsx "$1" ip link set "$2" up
}

# nsl_bridge_port ROLE BR IF — enslave IF to bridge BR.
nsl_bridge_port() { nsx "$1" ip link set "$3" master "$2"; }

# nsl_addr ROLE IF CIDR — add an IPv4 address.
nsl_addr() { nsx "$1" ip addr add "$3" dev "$2"; }

# nsl_addr6 ROLE IF CIDR — add an IPv6 address, usable at once (no duplicate address detection).
nsl_addr6() { nsx "$1" ip -6 addr add "$3" dev "$2" nodad; }

# nsl_mac ROLE IF — the interface's MAC address.
nsl_mac() { nsx "$1" cat "/sys/class/net/$2/address"; }

# nsl_record_pid NAME PID — remember a PID this run started (teardown kills only recorded PIDs).
nsl_record_pid() {
  printf '%s\n' "$2" >"$STATE/pids/$1.pid"
}

# nsl_wait_file FILE SECONDS — bounded poll for a file to appear; returns 1 on timeout.
nsl_wait_file() {
  local f=$1 deadline=$(($(date +%s%N) / 1000000 + $2 * 1000))
  while [ ! -s "$f" ]; do
    [ $(($(date +%s%N) / 1000000)) -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# nsl_pid_ours PID — true when PID is alive and its command line names this run's state directory.
nsl_pid_ours() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE"
}

# nsl_kill_pids PID... — TERM, bounded wait, then KILL.
nsl_kill_pids() {
  local pid i alive
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for i in $(seq 1 100); do
    alive=0
    for pid in "$@"; do
      if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then alive=1; fi
    done
    [ $alive = 1 ] || return 0
    sleep 0.02
  done
  kill -KILL "$@" 2>/dev/null || true
}

# nsl_kill_recorded [NAME] — kill the recorded process NAME (or all recorded processes) and forget them.
nsl_kill_recorded() {
  local f pid pids=() files=()
  if [ -n "${1:-}" ]; then
    files=("$STATE/pids/$1.pid")
  else
    files=("$STATE"/pids/*.pid)
  fi
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if nsl_pid_ours "$pid"; then pids+=("$pid"); fi
    rm -f "$f"
  done
  nsl_kill_pids "${pids[@]}"
}

# nsl_prefix_namespaces — every namespace whose name starts with "$PREFIX-".
nsl_prefix_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-" || true
}

# nsl_teardown — idempotent: kill recorded PIDs, then anything still inside this prefix's namespaces,
# delete the namespaces (which removes their veths and bridges), remove the state directory.
nsl_teardown() {
  local ns pids
  if [ -d "$STATE/pids" ]; then nsl_kill_recorded; fi
  for ns in $(nsl_prefix_namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || nsl_kill_pids $pids
  done
  for ns in $(nsl_prefix_namespaces); do
    ip netns del "$ns" 2>/dev/null || nsl_log "could not delete namespace $ns"
  done
  case $STATE in
    */"$PREFIX") rm -rf "$STATE" ;;
    *) [ ! -d "$STATE" ] || rm -rf "$STATE/pids" "$STATE/logs" "$STATE/health" "$STATE/namespaces" "$STATE/topology.env" "$STATE/owner" ;;
  esac
  if [ -r "$NSL_STATE_ROOT/last" ] && [ "$(cat "$NSL_STATE_ROOT/last")" = "$PREFIX" ]; then
    rm -f "$NSL_STATE_ROOT/last"
  fi
  [ -z "$(nsl_prefix_namespaces)" ] || nsl_die "namespaces with prefix $PREFIX remain"
}

# nsl_emit KEY VALUE — print one line of the topology description and append it to topology.env.
nsl_emit() {
  printf '%s=%s\n' "$1" "$2"
  printf '%s=%q\n' "$1" "$2" >>"$STATE/topology.env"
}

# nsl_start_servers ROLE... — start the backend servers (HTTP, TCP echo, UDP echo) in each backend.
nsl_start_servers() {
  local r
  for r in "$@"; do "$NSL_DIR/backend.sh" start "$r" >&2; done
}
