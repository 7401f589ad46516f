#!/usr/bin/env bash
# Scale-out topology (docs/design.md §6): clients -> an FRR router with ECMP over BGP-learned routes ->
# a LAN shared by several MUXes (vipmux on af_packet, each with ExaBGP) and the backends (DSR).
#
# Usage: scale-out.sh up   [--muxes N] [--backends N] [--clients N] [--no-servers] [--ipv6]
#        scale-out.sh mux-start I CONFIG    start vipmux (CONFIG, socket from its [control]) in mux I,
#                                          wait until it forwards, then its ExaBGP (config from vipmux bgp-config)
#        scale-out.sh mux-kill I            kill -9 the vipmux of mux I (its ExaBGP follows by itself)
#        scale-out.sh exabgp-start I CONFIG (re)start only the ExaBGP of mux I (its vipmux runs), config from CONFIG
#        scale-out.sh routes                the router's next hops for the VIP, one per line
#        scale-out.sh routes6               the router's next hops for the IPv6 VIP, one per line
#        scale-out.sh down
# Environment: VIPMUX_BIN (the vipmux binary; default: vipmux on PATH), VIPMUX_MUXES (3),
# VIPMUX_BACKENDS (3), VIPMUX_CLIENTS (source addresses, 20); naming and state: see lib.sh.
#
#   <p>-client  eth0 10.9.0.10..(10+clients-1)/24, default via 10.9.0.1
#   <p>-router  eth0 10.9.0.1/24, eth1 10.1.0.1/24, forwarding, fib_multipath_hash_policy=1 (L4 hash);
#               FRR zebra + bgpd (AS 65000) accepting any MUX of 10.1.0.0/24 (AS 65010), maximum-paths 8
#   <p>-lan     bridge br0, ports: router, mux1..N, b1..bN
#   <p>-muxI    mux0 (on the LAN), no address: vipmux owns it (net_af_packet iface=mux0) with 10.1.0.(1+I)
#   <p>-bI      eth0 10.1.0.(10+I)/24, default via 10.1.0.1, the VIP on lo (floating IP / DSR)
# The VIP 10.200.0.100 is routed: the router learns it from the MUXes over BGP.
# --ipv6 adds the IPv6 LAN 2001:db8:1::/64 (router ::1, MUX I ::(1+I) for its config's address6,
# backends ::(10+I) with IPv6 servers) and IPv6 unicast on the router's BGP sessions, over which it
# learns the IPv6 VIP 2001:db8:200::100/128.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

VIP=10.200.0.100
VIP6=2001:db8:200::100
ROUTER_LAN_IP6=2001:db8:1::1
ROUTER_LAN_IP=10.1.0.1
ROUTER_CLIENT_IP=10.9.0.1
ROUTER_AS=65000
MUX_AS=65010
FRR=/usr/lib/frr

muxes=${VIPMUX_MUXES:-3}
backends=${VIPMUX_BACKENDS:-3}
clients=${VIPMUX_CLIENTS:-20}
servers=1
ipv6=0
VIPMUX_BIN=${VIPMUX_BIN:-$(command -v vipmux || true)}

[ $# -ge 1 ] || usage
action=$1
shift

mux_ip() { printf '10.1.0.%d' $((1 + $1)); }
mux_ip6() { printf '2001:db8:1::%x' $((1 + $1)); }

up() {
  while [ $# -gt 0 ]; do
    case $1 in
      --muxes) muxes=$2; shift 2 ;;
      --backends) backends=$2; shift 2 ;;
      --clients) clients=$2; shift 2 ;;
      --no-servers) servers=0; shift ;;
      --ipv6) ipv6=1; shift ;;
      *) usage ;;
    esac
  done
  case "$muxes$backends$clients" in *[!0-9]*) nsl_die "counts must be numbers" ;; esac
  [ "$muxes" -ge 1 ] && [ "$muxes" -le 8 ] || nsl_die "--muxes must be 1..8"
  [ "$backends" -ge 1 ] && [ "$backends" -le 80 ] || nsl_die "--backends must be 1..80"
  [ "$clients" -ge 1 ] && [ "$clients" -le 200 ] || nsl_die "--clients must be 1..200"
  nsl_require_tools ip python3 "$FRR/zebra" "$FRR/bgpd" exabgp
  [ -z "$(nsl_prefix_namespaces)" ] || nsl_die "namespaces with prefix $PREFIX already exist (run down first)"
  creating=1
  : >"$STATE/topology.env"
  local i r roles=() ips=() mux_roles=() mux_ips=()
  for i in $(seq 1 "$backends"); do roles+=("b$i"); done
  for i in $(seq 1 "$muxes"); do mux_roles+=("mux$i"); mux_ips+=("$(mux_ip "$i")"); done

  nsl_ns_create client
  nsl_ns_create router
  nsl_ns_create lan
  for r in "${mux_roles[@]}" "${roles[@]}"; do nsl_ns_create "$r"; done
  nsl_bridge lan br0
  nsl_veth client eth0 router eth0
  nsl_veth router eth1 lan router
  nsl_bridge_port lan br0 router
  for r in "${mux_roles[@]}"; do
    nsl_veth "$r" mux0 lan "$r"
    nsl_bridge_port lan br0 "$r"
    nsl_sysctl "$r" net.ipv4.ip_forward=0 net.ipv4.conf.mux0.arp_ignore=8
    nsx "$r" ip link set lo up
  done
  for r in "${roles[@]}"; do
    nsl_veth "$r" eth0 lan "$r"
    nsl_bridge_port lan br0 "$r"
  done
  if [ "$ipv6" = 1 ]; then ipv6_addresses; fi

  for i in $(seq 0 $((clients - 1))); do nsl_addr client eth0 "10.9.0.$((10 + i))/24"; done
  nsx client ip route add default via "$ROUTER_CLIENT_IP"
  nsl_addr router eth0 "$ROUTER_CLIENT_IP/24"
  nsl_addr router eth1 "$ROUTER_LAN_IP/24"
  nsl_sysctl router net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
  nsx router ip link set lo up

  for i in $(seq 1 "$backends"); do
    r=b$i
    ips+=("10.1.0.$((10 + i))")
    nsl_addr "$r" eth0 "10.1.0.$((10 + i))/24"
    nsx "$r" ip route add default via "$ROUTER_LAN_IP"
    "$NSL_DIR/backend.sh" vip-add "$r" "$VIP"
  done
  if [ "$servers" = 1 ]; then nsl_start_servers "${roles[@]}"; fi
  start_router

  nsl_emit TOPOLOGY scale-out
  nsl_emit PREFIX "$PREFIX"
  nsl_emit STATE "$STATE"
  nsl_emit NS_CLIENT "$(nsl_ns client)"
  nsl_emit NS_ROUTER "$(nsl_ns router)"
  nsl_emit MUX_ROLES "${mux_roles[*]}"
  nsl_emit MUX_IPS "${mux_ips[*]}"
  nsl_emit BACKEND_ROLES "${roles[*]}"
  nsl_emit BACKEND_IPS "${ips[*]}"
  nsl_emit CLIENT_IPS "$(seq -s ' ' -f '10.9.0.%g' 10 $((10 + clients - 1)))"
  nsl_emit VIP "$VIP"
  nsl_emit ROUTER_LAN_IP "$ROUTER_LAN_IP"
  nsl_emit ROUTER_AS "$ROUTER_AS"
  nsl_emit MUX_AS "$MUX_AS"
  if [ "$ipv6" = 1 ]; then
    nsl_emit VIP6 "$VIP6"
    nsl_emit MUX_IPS6 "$(for i in $(seq 1 "$muxes"); do mux_ip6 "$i"; printf ' '; done)"
    nsl_emit BACKEND_IPS6 "$(seq -s ' ' -f '2001:db8:1::%g' 11 $((10 + backends)))"
  fi
  nsl_emit ECHO_PORT "${VIPMUX_ECHO_PORT:-7000}"
  nsl_log "scale-out topology up (prefix $PREFIX, $muxes MUX namespaces); tear down with:"
  nsl_log "  VIPMUX_NS_PREFIX=$PREFIX $0 down"
}

# ipv6_addresses — the IPv6 LAN (--ipv6): router and backends addressed, the MUXes' own stacks
# silent on mux0 (vipmux owns it), the backends' servers doubled on IPv6 (the state marker).
ipv6_addresses() {
  local r i
  : >"$STATE/ipv6"
  for r in router "${mux_roles[@]}" "${roles[@]}"; do nsl_v6_enable "$r"; done
  for r in "${mux_roles[@]}"; do nsl_sysctl "$r" net.ipv6.conf.mux0.disable_ipv6=1; done
  nsl_addr6 router eth1 "$ROUTER_LAN_IP6/64"
  nsl_sysctl router net.ipv6.conf.all.forwarding=1
  for i in $(seq 1 "$backends"); do
    nsl_addr6 "b$i" eth0 "2001:db8:1::$((10 + i))/64"
    nsx "b$i" ip -6 route add default via "$ROUTER_LAN_IP6"
  done
}

# start_router — zebra and bgpd in the router namespace, with their own files under the state directory.
start_router() {
  local d="$STATE/frr" daemon
  mkdir -p "$d"
  printf 'hostname router\n' >"$d/zebra.conf"
  cat >"$d/bgpd.conf" <<EOF
hostname router
router bgp $ROUTER_AS
 bgp router-id $ROUTER_LAN_IP
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor MUXES peer-group
 neighbor MUXES remote-as $MUX_AS
 neighbor MUXES timers 1 3
 neighbor MUXES timers connect 1
 bgp listen range 10.1.0.0/24 peer-group MUXES
 address-family ipv4 unicast
  neighbor MUXES activate
  maximum-paths 8
 exit-address-family
EOF
  if [ "$ipv6" = 1 ]; then
    # IPv6 unicast over the same (IPv4) sessions: the MUXes announce IPv6 VIPs with IPv6 next hops.
    printf ' address-family ipv6 unicast\n  neighbor MUXES activate\n  maximum-paths 8\n exit-address-family\n' >>"$d/bgpd.conf"
  fi
  # The daemons drop to the frr user (the Debian package's): their directory must be theirs.
  chown -R frr:frr "$d"
  for daemon in zebra bgpd; do
    local extra=()
    [ "$daemon" = bgpd ] && extra=(-l "$ROUTER_LAN_IP")
    nsx router "$FRR/$daemon" -d -f "$d/$daemon.conf" -i "$d/$daemon.pid" \
      -z "$d/zserv.api" --vty_socket "$d" --log "file:$d/$daemon.log" "${extra[@]}"
    nsl_wait_file "$d/$daemon.pid" 10 || nsl_die "$daemon did not start (see $d/$daemon.log)"
    nsl_record_pid "router-$daemon" "$(cat "$d/$daemon.pid")"
  done
}

# mux_start I CONFIG — vipmux in mux I, then (once it forwards) its ExaBGP.
mux_start() {
  local i=$1 config=$2 ns pid socket
  [ -n "$VIPMUX_BIN" ] || nsl_die "set VIPMUX_BIN to the vipmux binary"
  ns=$(nsl_ns "mux$i")
  mkdir -p "$STATE/logs" "$STATE/pids"
  ip netns exec "$ns" "$VIPMUX_BIN" run --config "$config" --eal=--vdev=net_af_packet0,iface=mux0 \
    >"$STATE/logs/mux$i-vipmux.log" 2>&1 &
  pid=$!
  nsl_record_pid "mux$i-vipmux" "$pid"
  socket=$(sed -n 's/^socket *= *"\(.*\)"/\1/p' "$config" | head -n1)
  local deadline=$(($(date +%s) + 60))
  until "$VIPMUX_BIN" status --socket "$socket" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || nsl_die "vipmux of mux$i exited; see $STATE/logs/mux$i-vipmux.log"
    [ "$(date +%s)" -lt "$deadline" ] || nsl_die "vipmux of mux$i does not forward after 60 s"
    sleep 0.1
  done
  exabgp_start "$i" "$config"
}

# exabgp_start I CONFIG — ExaBGP of mux I, its files generated by `vipmux bgp-config` from CONFIG
# (also how a test brings back a daemon it killed, or restarts it with a corrected peer).
exabgp_start() {
  local i=$1 config=$2 ns
  [ -n "$VIPMUX_BIN" ] || nsl_die "set VIPMUX_BIN to the vipmux binary"
  ns=$(nsl_ns "mux$i")
  mkdir -p "$STATE/logs" "$STATE/pids"
  "$VIPMUX_BIN" bgp-config --config "$config" --vipmux "$VIPMUX_BIN" \
    -o "$STATE/mux$i-exabgp.conf" --env "$STATE/mux$i-exabgp.env"
  ip netns exec "$ns" exabgp --env "$STATE/mux$i-exabgp.env" "$STATE/mux$i-exabgp.conf" \
    >>"$STATE/logs/mux$i-exabgp.log" 2>&1 &
  nsl_record_pid "mux$i-exabgp" "$!"
}

# mux_kill I — SIGKILL the vipmux of mux I (no drain, no withdrawal: the death case).
mux_kill() {
  local f="$STATE/pids/mux$1-vipmux.pid" pid
  [ -f "$f" ] || nsl_die "mux$1 has no recorded vipmux"
  pid=$(cat "$f")
  nsl_pid_ours "$pid" || nsl_die "pid $pid is not this topology's vipmux"
  kill -KILL "$pid"
  rm -f "$f"
}

# routes — the router's kernel next hops for the VIP (one per line; none when withdrawn).
routes() {
  nsx router ip route show "$VIP/32" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort
}

# routes6 — the router's kernel next hops for the IPv6 VIP (one per line; none when withdrawn).
routes6() {
  nsx router ip -6 route show "$VIP6/128" | grep -o 'via [0-9a-f:]*' | awk '{print $2}' | sort
}

nsl_init "$action"
case $action in
  up)
    creating=0
    trap 'rc=$?; if [ $rc -ne 0 ] && [ $creating = 1 ]; then nsl_log "up failed; tearing down"; nsl_teardown || true; fi' EXIT
    up "$@"
    trap - EXIT
    ;;
  mux-start) [ $# -eq 2 ] || usage; mux_start "$1" "$2" ;;
  mux-kill) [ $# -eq 1 ] || usage; mux_kill "$1" ;;
  exabgp-start) [ $# -eq 2 ] || usage; exabgp_start "$1" "$2" ;;
  routes) routes ;;
  routes6) routes6 ;;
  down) nsl_teardown ;;
  *) usage ;;
esac
