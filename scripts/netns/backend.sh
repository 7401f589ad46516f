#!/usr/bin/env bash
# Real servers inside a backend namespace of a vipmux test topology.
#
# Usage (VIPMUX_NS_PREFIX names the topology; without it the last one brought up is used):
#   backend.sh start  ROLE [--http-port P] [--echo-port P]   HTTP (GET /, /health), TCP echo, UDP echo
#   backend.sh stop   ROLE [http|tcp|udp|all]                 kill that backend's server(s) (default all)
#   backend.sh health ROLE ok|fail                            /health answers 200 or 503
#   backend.sh vip-add ROLE VIP                               VIP/32 on lo + arp_ignore=1/arp_announce=2 (DSR)
#   backend.sh vip-del ROLE VIP
#   backend.sh status ROLE                                    one line per server: NAME PID|down
# ROLE is the backend's role name (b1, b2, ...); its namespace is "$VIPMUX_NS_PREFIX-ROLE".
# Defaults: HTTP port $VIPMUX_HTTP_PORT (80), echo port $VIPMUX_ECHO_PORT (7000, TCP and UDP).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
role=$2
shift 2
nsl_init use
nsl_require_tools ip python3
ip netns list | awk '{print $1}' | grep -qx "$(nsl_ns "$role")" || nsl_die "no namespace $(nsl_ns "$role")"
mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/health"
PY=$(command -v python3)

# launch SVC CMD... — start one server in the background, wait (bounded) until it listens.
launch() {
  local svc=$1 pidfile
  shift
  pidfile="$STATE/pids/$role-$svc.pid"
  if [ -f "$pidfile" ] && nsl_pid_ours "$(cat "$pidfile")"; then
    nsl_log "$role $svc already running (pid $(cat "$pidfile"))"
    return 0
  fi
  rm -f "$pidfile"
  nsx "$role" "$PY" -u "$@" --pidfile "$pidfile" </dev/null >>"$STATE/logs/$role-$svc.log" 2>&1 &
  if ! nsl_wait_file "$pidfile" 10; then
    kill "$!" 2>/dev/null || true
    nsl_die "$role $svc did not start; log: $(tail -n 5 "$STATE/logs/$role-$svc.log" 2>/dev/null)"
  fi
  nsl_log "$role $svc listening (pid $(cat "$pidfile"))"
}

case $cmd in
  start)
    http_port=${VIPMUX_HTTP_PORT:-80}
    echo_port=${VIPMUX_ECHO_PORT:-7000}
    while [ $# -gt 0 ]; do
      case $1 in
        --http-port) http_port=$2; shift 2 ;;
        --echo-port) echo_port=$2; shift 2 ;;
        *) usage ;;
      esac
    done
    launch http "$NSL_DIR/httpd.py" --name "$role" --port "$http_port" --health-file "$STATE/health/$role.fail"
    launch tcp "$NSL_DIR/echo.py" tcp-server --name "$role" --port "$echo_port"
    launch udp "$NSL_DIR/echo.py" udp-server --name "$role" --port "$echo_port"
    if [ -f "$STATE/ipv6" ]; then
      # The IPv6 twins (IPv6 only, beside the IPv4 servers on the same ports).
      launch http6 "$NSL_DIR/httpd.py" --name "$role" --port "$http_port" --bind :: \
        --health-file "$STATE/health/$role.fail"
      launch tcp6 "$NSL_DIR/echo.py" tcp-server --name "$role" --port "$echo_port" --bind ::
    fi
    ;;
  stop)
    what=${1:-all}
    case $what in
      http | tcp) nsl_kill_recorded "$role-$what"; nsl_kill_recorded "$role-${what}6" ;;
      udp) nsl_kill_recorded "$role-$what" ;;
      all) for s in http tcp udp http6 tcp6; do nsl_kill_recorded "$role-$s"; done ;;
      *) usage ;;
    esac
    ;;
  health)
    case ${1:-} in
      ok) rm -f "$STATE/health/$role.fail" ;;
      fail) : >"$STATE/health/$role.fail" ;;
      *) usage ;;
    esac
    ;;
  vip-add)
    [ $# -eq 1 ] || usage
    nsl_sysctl "$role" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
    case $1 in
      *:*) nsx "$role" ip -6 addr replace "$1/128" dev lo nodad ;;
      *) nsx "$role" ip addr replace "$1/32" dev lo ;;
    esac
    ;;
  vip-del)
    [ $# -eq 1 ] || usage
    case $1 in
      *:*) nsx "$role" ip -6 addr del "$1/128" dev lo 2>/dev/null || true ;;
      *) nsx "$role" ip addr del "$1/32" dev lo 2>/dev/null || true ;;
    esac
    ;;
  status)
    for s in http tcp udp; do
      f="$STATE/pids/$role-$s.pid"
      if [ -f "$f" ] && nsl_pid_ours "$(cat "$f")"; then echo "$s $(cat "$f")"; else echo "$s down"; fi
    done
    ;;
  *) usage ;;
esac
