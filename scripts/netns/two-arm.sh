#!/usr/bin/env bash
# Two-arm gateway topology (docs/design.md §1.3): client on one MUX port, backends on a bridge behind the other.
#
# Usage: two-arm.sh up   [--backends N] [--mux dpdk|kernel] [--no-servers] [--ipv6]
#        two-arm.sh down
# Environment equivalents: VIPMUX_BACKENDS (3), VIPMUX_MUX (dpdk), VIPMUX_SERVERS (1); naming and state:
# see lib.sh (VIPMUX_NS_PREFIX, VIPMUX_NS_STATE).
#
#   <p>-client  eth0 10.9.0.10/24, default via 10.9.0.2; the VIP 10.9.0.100 is on-link (the MUX answers ARP)
#   <p>-mux     mux0 (client side, peer of client eth0), mux1 (backend side, port of the LAN bridge).
#               --mux dpdk: no addresses, for vipmux (net_af_packet iface=mux0 and iface=mux1) run with
#               `ip netns exec <p>-mux`. --mux kernel: mux0 10.9.0.2/24 + VIP 10.9.0.100/32, mux1 10.1.0.2/24,
#               forwarding, nftables DNAT of the VIP (numgen random, conntrack) and SNAT of the backends'
#               own outbound connections to the VIP (outbound rule).
#   <p>-lan     bridge br0, ports: mux, b1..bN
#   <p>-bI      eth0 10.1.0.(10+I)/24, default via 10.1.0.2 (the MUX)
# --ipv6 (VIPMUX_IPV6=1) adds the IPv6 twin: client 2001:db8:9::10/64 via 2001:db8:9::2 (the MUX;
# the VIP6 2001:db8:9::100 on-link), backends 2001:db8:1::(10+I)/64 via 2001:db8:1::2, and IPv6
# HTTP/TCP echo servers beside the IPv4 ones (--mux dpdk only).
# `up` prints KEY=VALUE lines describing the topology (also saved to $VIPMUX_NS_STATE/topology.env).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

LAN_NET=10.1.0.0/24
MUX_BACKEND_IP=10.1.0.2
CLIENT_NET=10.9.0.0/24
MUX_CLIENT_IP=10.9.0.2
MUX_CLIENT_IP6=2001:db8:9::2
MUX_BACKEND_IP6=2001:db8:1::2
CLIENT_IP6=2001:db8:9::10
VIP6=2001:db8:9::100
VIP=10.9.0.100
CLIENT_IP=10.9.0.10

backends=${VIPMUX_BACKENDS:-3}
mux=${VIPMUX_MUX:-dpdk}
servers=${VIPMUX_SERVERS:-1}
ipv6=${VIPMUX_IPV6:-0}

[ $# -ge 1 ] || usage
action=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    --backends) backends=$2; shift 2 ;;
    --mux) mux=$2; shift 2 ;;
    --no-servers) servers=0; shift ;;
    --ipv6) ipv6=1; shift ;;
    *) usage ;;
  esac
done

up() {
  case $backends in '' | *[!0-9]*) nsl_die "--backends must be a number" ;; esac
  [ "$backends" -ge 1 ] && [ "$backends" -le 80 ] || nsl_die "--backends must be 1..80"
  case $mux in dpdk | kernel) ;; *) nsl_die "--mux must be dpdk or kernel" ;; esac
  nsl_require_tools ip python3 nft
  [ -z "$(nsl_prefix_namespaces)" ] || nsl_die "namespaces with prefix $PREFIX already exist (run down first)"
  creating=1
  : >"$STATE/topology.env"

  local i r roles=() ips=() macs=() nss=()
  for i in $(seq 1 "$backends"); do roles+=("b$i"); done

  nsl_ns_create client
  nsl_ns_create mux
  nsl_ns_create lan
  for r in "${roles[@]}"; do nsl_ns_create "$r"; done
  if [ "$ipv6" = 1 ]; then
    # The mux namespace too: vipmux's exception TAP carries the interfaces' IPv6 addresses there
    # (its DPDK ports stay silent below).
    for r in client mux "${roles[@]}"; do nsl_v6_enable "$r"; done
    : >"$STATE/ipv6"
  fi

  nsl_bridge lan br0
  nsl_veth client eth0 mux mux0
  nsl_veth mux mux1 lan mux
  nsl_bridge_port lan br0 mux
  for r in "${roles[@]}"; do
    nsl_veth "$r" eth0 lan "$r"
    nsl_bridge_port lan br0 "$r"
  done

  nsl_addr client eth0 "$CLIENT_IP/24"
  nsx client ip route add default via "$MUX_CLIENT_IP"

  for i in $(seq 1 "$backends"); do
    r=b$i
    ips+=("10.1.0.$((10 + i))")
    nsl_addr "$r" eth0 "10.1.0.$((10 + i))/24"
    nsx "$r" ip route add default via "$MUX_BACKEND_IP"
    macs+=("$(nsl_mac "$r" eth0)")
    nss+=("$(nsl_ns "$r")")
  done

  if [ "$ipv6" = 1 ]; then
    nsl_addr6 client eth0 "$CLIENT_IP6/64"
    nsx client ip -6 route add default via "$MUX_CLIENT_IP6"
    local ips6=()
    for i in $(seq 1 "$backends"); do
      ips6+=("2001:db8:1::$((10 + i))")
      nsl_addr6 "b$i" eth0 "2001:db8:1::$((10 + i))/64"
      nsx "b$i" ip -6 route add default via "$MUX_BACKEND_IP6"
    done
  fi

  if [ "$mux" = kernel ]; then
    kernel_mux
  else
    nsl_sysctl mux net.ipv4.ip_forward=0 net.ipv4.conf.mux0.arp_ignore=8 net.ipv4.conf.mux1.arp_ignore=8
    nsl_sysctl mux net.ipv6.conf.mux0.disable_ipv6=1 net.ipv6.conf.mux1.disable_ipv6=1
  fi
  if [ "$servers" = 1 ]; then nsl_start_servers "${roles[@]}"; fi

  nsl_emit TOPOLOGY two-arm
  nsl_emit PREFIX "$PREFIX"
  nsl_emit STATE "$STATE"
  nsl_emit MUX_MODE "$mux"
  nsl_emit RETURN gateway
  nsl_emit NS_CLIENT "$(nsl_ns client)"
  nsl_emit NS_LAN "$(nsl_ns lan)"
  nsl_emit NS_MUX "$(nsl_ns mux)"
  nsl_emit NS_BACKENDS "${nss[*]}"
  nsl_emit BACKEND_ROLES "${roles[*]}"
  nsl_emit BACKEND_IPS "${ips[*]}"
  nsl_emit BACKEND_MACS "${macs[*]}"
  nsl_emit MUX_CLIENT_IF mux0
  nsl_emit MUX_CLIENT_MAC "$(nsl_mac mux mux0)"
  nsl_emit MUX_CLIENT_IP "$MUX_CLIENT_IP"
  nsl_emit MUX_BACKEND_IF mux1
  nsl_emit MUX_BACKEND_MAC "$(nsl_mac mux mux1)"
  nsl_emit MUX_BACKEND_IP "$MUX_BACKEND_IP"
  nsl_emit VIP "$VIP"
  nsl_emit LAN_NET "$LAN_NET"
  nsl_emit CLIENT_NET "$CLIENT_NET"
  nsl_emit CLIENT_IP "$CLIENT_IP"
  nsl_emit CLIENT_MAC "$(nsl_mac client eth0)"
  nsl_emit HTTP_PORT "${VIPMUX_HTTP_PORT:-80}"
  nsl_emit ECHO_PORT "${VIPMUX_ECHO_PORT:-7000}"
  if [ "$ipv6" = 1 ]; then
    nsl_emit BACKEND_IPS6 "${ips6[*]}"
    nsl_emit MUX_CLIENT_IP6 "$MUX_CLIENT_IP6"
    nsl_emit MUX_BACKEND_IP6 "$MUX_BACKEND_IP6"
    nsl_emit VIP6 "$VIP6"
    nsl_emit CLIENT_IP6 "$CLIENT_IP6"
  fi
  nsl_log "two-arm topology up (prefix $PREFIX, mux=$mux); tear down with:"
  nsl_log "  VIPMUX_NS_PREFIX=$PREFIX $0 down"
}

# kernel_mux — the Linux stand-in for vipmux in the mux namespace.
kernel_mux() {
  local i map=""
  nsl_addr mux mux0 "$MUX_CLIENT_IP/24"
  nsl_addr mux mux0 "$VIP/32"
  nsl_addr mux mux1 "$MUX_BACKEND_IP/24"
  nsl_sysctl mux net.ipv4.ip_forward=1
  for i in $(seq 1 "$backends"); do map+="${map:+, }$((i - 1)) : 10.1.0.$((10 + i))"; done
  nsx mux nft -f - <<EOF
table ip vipmux {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "mux0" ip daddr $VIP meta l4proto { tcp, udp } dnat ip to numgen random mod $backends map { $map }
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "mux0" ip saddr $LAN_NET snat ip to $VIP
  }
}
EOF
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
