#!/usr/bin/env bash
# One-arm topology (docs/design.md §1.2, Ananta layout): client -> router -> LAN bridge shared by the MUX and backends.
#
# Usage: one-arm.sh up   [--backends N] [--mux dpdk|kernel] [--return gateway|policy|dsr] [--no-servers] [--ipv6]
#        one-arm.sh down
# Environment equivalents: VIPMUX_BACKENDS (3), VIPMUX_MUX (dpdk), VIPMUX_RETURN (gateway),
# VIPMUX_SERVERS (1); naming and state: see lib.sh (VIPMUX_NS_PREFIX, VIPMUX_NS_STATE).
#
#   <p>-client  eth0 10.9.0.10/24, default via 10.9.0.1
#   <p>-router  eth0 10.9.0.1/24 (client side), eth1 10.1.0.1/24 (LAN), forwarding,
#               route 10.1.0.100/32 via 10.1.0.2 (VIP -> MUX)
#   <p>-lan     bridge br0, ports: router, mux, b1..bN
#   <p>-mux     mux0 (on the LAN). --mux dpdk: no address, for vipmux (net_af_packet iface=mux0) run with
#               `ip netns exec <p>-mux`. --mux kernel: 10.1.0.2/24, default via 10.1.0.1, forwarding and
#               nftables DNAT of the VIP (numgen random over the backends, conntrack) — the kernel stand-in;
#               with --return dsr it rewrites only the destination MAC (stateless jhash, netdev ingress).
#   <p>-bI      eth0 10.1.0.(10+I)/24. --return gateway: default via 10.1.0.2 (replies through the MUX);
#               policy: default via 10.1.0.1, replies to 10.9.0.0/24 via 10.1.0.2 (ip rule, table 100);
#               dsr: default via 10.1.0.1 and the VIP on lo (arp_ignore/arp_announce).
# --ipv6 (VIPMUX_IPV6=1) adds the IPv6 twin of every address: client 2001:db8:9::10/64 (via ::1),
# router 2001:db8:9::1/64 and 2001:db8:1::1/64 with the VIP6 2001:db8:1::100/128 via the MUX
# 2001:db8:1::2, backends 2001:db8:1::(10+I)/64 routed as their IPv4 side (gateway: via the MUX;
# dsr: via the router), and IPv6 HTTP/TCP echo servers beside the IPv4 ones (--mux dpdk only).
# `up` prints KEY=VALUE lines describing the topology (also saved to $VIPMUX_NS_STATE/topology.env).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

LAN_NET=10.1.0.0/24
ROUTER_LAN_IP=10.1.0.1
MUX_IP=10.1.0.2
VIP=10.1.0.100
CLIENT_NET=10.9.0.0/24
ROUTER_CLIENT_IP=10.9.0.1
CLIENT_IP=10.9.0.10
ROUTER_LAN_IP6=2001:db8:1::1
MUX_IP6=2001:db8:1::2
VIP6=2001:db8:1::100
ROUTER_CLIENT_IP6=2001:db8:9::1
CLIENT_IP6=2001:db8:9::10

backends=${VIPMUX_BACKENDS:-3}
mux=${VIPMUX_MUX:-dpdk}
ret=${VIPMUX_RETURN:-gateway}
servers=${VIPMUX_SERVERS:-1}
ipv6=${VIPMUX_IPV6:-0}

[ $# -ge 1 ] || usage
action=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    --backends) backends=$2; shift 2 ;;
    --mux) mux=$2; shift 2 ;;
    --return) ret=$2; shift 2 ;;
    --no-servers) servers=0; shift ;;
    --ipv6) ipv6=1; shift ;;
    *) usage ;;
  esac
done

up() {
  case $backends in '' | *[!0-9]*) nsl_die "--backends must be a number" ;; esac
  [ "$backends" -ge 1 ] && [ "$backends" -le 80 ] || nsl_die "--backends must be 1..80"
  case $mux in dpdk | kernel) ;; *) nsl_die "--mux must be dpdk or kernel" ;; esac
  case $ret in gateway | policy | dsr) ;; *) nsl_die "--return must be gateway, policy or dsr" ;; esac
  nsl_require_tools ip python3 nft
  [ -z "$(nsl_prefix_namespaces)" ] || nsl_die "namespaces with prefix $PREFIX already exist (run down first)"
  creating=1
  : >"$STATE/topology.env"

  local i roles=() ips=() macs=() nss=()
  for i in $(seq 1 "$backends"); do roles+=("b$i"); done

  nsl_ns_create client
  nsl_ns_create router
  nsl_ns_create lan
  nsl_ns_create mux
  for r in "${roles[@]}"; do nsl_ns_create "$r"; done
  if [ "$ipv6" = 1 ]; then
    # The mux namespace too: vipmux's exception TAP carries the interface's IPv6 address there
    # (its DPDK ports stay silent below).
    for r in client router mux "${roles[@]}"; do nsl_v6_enable "$r"; done
    : >"$STATE/ipv6"
  fi

  nsl_bridge lan br0
  nsl_veth client eth0 router eth0
  nsl_veth router eth1 lan router
  nsl_veth mux mux0 lan mux
  nsl_bridge_port lan br0 router
  nsl_bridge_port lan br0 mux
  for r in "${roles[@]}"; do
    nsl_veth "$r" eth0 lan "$r"
    nsl_bridge_port lan br0 "$r"
  done

  nsl_addr client eth0 "$CLIENT_IP/24"
  nsx client ip route add default via "$ROUTER_CLIENT_IP"

  nsl_addr router eth0 "$ROUTER_CLIENT_IP/24"
  nsl_addr router eth1 "$ROUTER_LAN_IP/24"
  nsl_sysctl router net.ipv4.ip_forward=1
  nsx router ip route add "$VIP/32" via "$MUX_IP" dev eth1

  for i in $(seq 1 "$backends"); do
    local r=b$i ip=10.1.0.$((10 + i))
    ips+=("$ip")
    nsl_addr "$r" eth0 "$ip/24"
    case $ret in
      gateway) nsx "$r" ip route add default via "$MUX_IP" ;;
      policy)
        nsx "$r" ip route add default via "$ROUTER_LAN_IP"
        nsx "$r" ip route add default via "$MUX_IP" table 100
        nsx "$r" ip rule add from "$ip" to "$CLIENT_NET" lookup 100 priority 100
        ;;
      dsr) nsx "$r" ip route add default via "$ROUTER_LAN_IP" ;;
    esac
    macs+=("$(nsl_mac "$r" eth0)")
    nss+=("$(nsl_ns "$r")")
  done

  if [ "$ipv6" = 1 ]; then ipv6_addresses; fi

  if [ "$mux" = kernel ]; then
    kernel_mux
  else
    # vipmux owns mux0 through DPDK: the namespace's own stack must stay silent on it.
    nsl_sysctl mux net.ipv4.ip_forward=0 net.ipv4.conf.mux0.arp_ignore=8
    nsl_sysctl mux net.ipv6.conf.mux0.disable_ipv6=1
  fi

  if [ "$ret" = dsr ]; then
    for r in "${roles[@]}"; do "$NSL_DIR/backend.sh" vip-add "$r" "$VIP"; done
  fi
  if [ "$servers" = 1 ]; then nsl_start_servers "${roles[@]}"; fi

  nsl_emit TOPOLOGY one-arm
  nsl_emit PREFIX "$PREFIX"
  nsl_emit STATE "$STATE"
  nsl_emit MUX_MODE "$mux"
  nsl_emit RETURN "$ret"
  nsl_emit NS_CLIENT "$(nsl_ns client)"
  nsl_emit NS_ROUTER "$(nsl_ns router)"
  nsl_emit NS_LAN "$(nsl_ns lan)"
  nsl_emit NS_MUX "$(nsl_ns mux)"
  nsl_emit NS_BACKENDS "${nss[*]}"
  nsl_emit BACKEND_ROLES "${roles[*]}"
  nsl_emit BACKEND_IPS "${ips[*]}"
  nsl_emit BACKEND_MACS "${macs[*]}"
  nsl_emit MUX_IF mux0
  nsl_emit MUX_MAC "$(nsl_mac mux mux0)"
  nsl_emit MUX_IP "$MUX_IP"
  nsl_emit VIP "$VIP"
  nsl_emit LAN_NET "$LAN_NET"
  nsl_emit CLIENT_NET "$CLIENT_NET"
  nsl_emit CLIENT_IP "$CLIENT_IP"
  nsl_emit ROUTER_CLIENT_IP "$ROUTER_CLIENT_IP"
  nsl_emit ROUTER_LAN_IP "$ROUTER_LAN_IP"
  nsl_emit ROUTER_LAN_MAC "$(nsl_mac router eth1)"
  nsl_emit HTTP_PORT "${VIPMUX_HTTP_PORT:-80}"
  nsl_emit ECHO_PORT "${VIPMUX_ECHO_PORT:-7000}"
  if [ "$ipv6" = 1 ]; then
    local ips6=()
    for i in $(seq 1 "$backends"); do ips6+=("2001:db8:1::$((10 + i))"); done
    nsl_emit BACKEND_IPS6 "${ips6[*]}"
    nsl_emit MUX_IP6 "$MUX_IP6"
    nsl_emit VIP6 "$VIP6"
    nsl_emit CLIENT_IP6 "$CLIENT_IP6"
    nsl_emit ROUTER_LAN_IP6 "$ROUTER_LAN_IP6"
  fi
  nsl_log "one-arm topology up (prefix $PREFIX, mux=$mux, return=$ret); tear down with:"
  nsl_log "  VIPMUX_NS_PREFIX=$PREFIX $0 down"
}

# ipv6_addresses — the IPv6 twin of the IPv4 plan (--ipv6).
ipv6_addresses() {
  local i r
  nsl_addr6 client eth0 "$CLIENT_IP6/64"
  nsx client ip -6 route add default via "$ROUTER_CLIENT_IP6"
  nsl_addr6 router eth0 "$ROUTER_CLIENT_IP6/64"
  nsl_addr6 router eth1 "$ROUTER_LAN_IP6/64"
  nsl_sysctl router net.ipv6.conf.all.forwarding=1
  nsx router ip -6 route add "$VIP6/128" via "$MUX_IP6" dev eth1
  for i in $(seq 1 "$backends"); do
    r=b$i
    nsl_addr6 "$r" eth0 "2001:db8:1::$((10 + i))/64"
    case $ret in
      gateway) nsx "$r" ip -6 route add default via "$MUX_IP6" ;;
      *) nsx "$r" ip -6 route add default via "$ROUTER_LAN_IP6" ;;
    esac
  done
}

# kernel_mux — the Linux stand-in for vipmux in the mux namespace.
kernel_mux() {
  local i map="" mux_mac
  nsl_addr mux mux0 "$MUX_IP/24"
  nsx mux ip route add default via "$ROUTER_LAN_IP"
  nsl_sysctl mux net.ipv4.ip_forward=1 net.ipv4.conf.mux0.send_redirects=0
  for i in $(seq 1 "$backends"); do
    if [ "$ret" = dsr ]; then
      map+="${map:+, }$((i - 1)) : $(nsl_mac "b$i" eth0)"
    else
      map+="${map:+, }$((i - 1)) : 10.1.0.$((10 + i))"
    fi
  done
  if [ "$ret" = dsr ]; then
    mux_mac=$(nsl_mac mux mux0)
    nsx mux nft -f - <<EOF
table netdev vipmux_dsr {
  chain ingress {
    type filter hook ingress device "mux0" priority 0; policy accept;
    ip daddr $VIP meta l4proto { tcp, udp } ether saddr set $mux_mac ether daddr set jhash ip saddr . th sport . th dport mod $backends seed 0x5eed map { $map } fwd to "mux0"
  }
}
EOF
  else
    nsx mux nft -f - <<EOF
table ip vipmux {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $VIP meta l4proto { tcp, udp } dnat ip to numgen random mod $backends map { $map }
  }
}
EOF
  fi
}

nsl_init "$action"
case $action in
  up)
    creating=0
    trap 'rc=$?; if [ $rc -ne 0 ] && [ $creating = 1 ]; then nsl_log "up failed; tearing down"; nsl_teardown || true; fi' EXIT
    up
    trap - EXIT
    ;;
  down) nsl_teardown ;;
  *) usage ;;
esac
