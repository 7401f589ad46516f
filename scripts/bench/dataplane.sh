# shellcheck shell=bash
# Data-plane part of the benchmark harness (sourced by scripts/bench.sh, which owns the trap, OWN_PIDS,
# DATE, MACHINE, VIPMUX_BIN, log, failures): two DPDK processes joined by one memif link.
#
#   generator  `vipmux pktgen`, memif SERVER, core 0 (dpdk-config/memif-pktgen.toml)
#   DUT        memif CLIENT, core 1 (dpdk-config/memif-dut.toml):
#                testpmd  dpdk-testpmd --forward-mode=macswap: the limit of the setup (pktgen --expect echo)
#                vipmux   `vipmux run --config` with one load-balancing (NAT) rule on the memif port; the
#                         members are on-link and pktgen answers their ARP (pktgen --expect rewrite)
#                ovs      Open vSwitch with the DPDK datapath (full runs only): OVN-style LB, a select group
#                         over the same members, buckets ct(commit, nat(dst=member:8080)) (--expect rewrite)
#
# Points: established traffic (64-byte frames unless DP_SIZE says otherwise) for each flow count of DP_FLOWS, a SYN flood
# (--mode synflood: every frame a new flow from a random source) against vipmux, and the same flood
# with established traffic mixed in ("synflood-established": --established-share DP_FLOOD_EST_SHARE
# percent of the frames are data segments of the established flows, the rest flood SYNs), followed by
# the established traffic alone at the rate it had in the flood (--established-share 100 --rate R),
# the loss to compare with. Outbound SNAT ("vipmux-outbound", at the first flow count): pktgen plays the
# 8 members of an outbound rule (--direction outbound) opening connections to remote hosts behind the
# gateway 10.1.0.1 (pktgen answers its ARP), checks every frame's SNAT (10.1.0.100 and a port of the
# member's block, one port per connection), and in mode established also sends the remotes' answers to
# the SNAT endpoints, which vipmux must translate back: established data both ways in turn; mode syn
# repeats the members' SYNs (each finds its connection's translation). Each point runs DP_REPEAT times;
# dataplane.csv gets the median by rx Mpps (the whole row of that run).
#
# Cost per packet: `perf stat -e cycles` when the CPU exposes the counter, else the DUT's on-CPU time
# (sum of /proc/PID/task/*/schedstat run time) over the sending window divided by the packets
# forwarded in it: ns_per_packet = on-CPU share of the window * 1000 / rx Mpps. cycles_per_packet is
# then ns_per_packet * the nominal clock (cpu MHz of /proc/cpuinfo) and marked "derived".
#
# memif mode (DP_MEMIF): every DUT is the memif client with the same setting, so the comparison stays
# fair. "zero-copy" (default): the client's own mbufs are the ring buffers (zero-copy=yes; the
# generator, the server, still copies), which is how a memif client in production (VPP, a container)
# runs. "copy" (the PMD's own default): each side copies frames between its mbufs and the shared rings. Every zero-copy
# client gets --socket-mem (memory reserved up front). It does not keep DPDK 22.11's memif client from
# deadlocking against a mempool creation at connect time (docs/design.md §5.1): vipmux's start order does.
#
# Environment: DP_FLOWS (quick "1000", full "1000 100000 1000000"), DP_SECS (quick 3, full 10; 2 at least),
#   DP_REPEAT (quick 1, full 3), DP_DUTS (quick "testpmd vipmux", full "testpmd vipmux ovs"),
#   DP_SYNFLOOD (1 = run the two flood points; default 1), DP_FLOOD_EST_SHARE (percent of established
#   frames in the synflood-established point; default 25), PKTGEN_BIN (the generator's binary, default
#   VIPMUX_BIN: set it to compare two builds of the DUT against one generator), DP_RULES (rule kinds
#   of the vipmux established points, see dp_vipmux_config: quick "nat nat6", full all of DP_KINDS; the nat
#   points are always run, the config column names the kind: vipmux-nat, vipmux-nat6, vipmux-gue, ...),
#   DP_WORKERS2 (1: the two two-worker points; full runs 1, quick runs 0), DP_OUTBOUND (1 = run the two
#   outbound SNAT points; default 1), DP_SIZE (the generator's frame size in bytes, FCS included, 64 to
#   1518; default 64; the frame_bytes column is the size the generator reports it sent), DP_RATE (the
#   generator's offered rate in packets per second at the established points, every DUT; default 0, as
#   fast as it can: set it to compare rule kinds or builds at one load rather than each at its limit).

DP_SOCKDIR=""
DP_MEMIF=${DP_MEMIF:-zero-copy}
DP_NS=""   # the DUT runs in its own network namespace (vipmux makes a kernel exception tap per interface)

# dp_cleanup — remove the socket directory and the DUT namespace (the caller's trap calls this).
dp_cleanup() {
  if [ -n "$DP_SOCKDIR" ]; then rm -rf "$DP_SOCKDIR"; fi
  if [ -n "$DP_NS" ]; then ip netns del "$DP_NS" 2>/dev/null || true; fi
  DP_SOCKDIR="" DP_NS=""
}

# dp_prereq — why the data-plane part cannot run ("" when it can).
dp_prereq() {
  local free
  [ "$(id -u)" = 0 ] || { echo "needs root"; return; }
  [ -x "$VIPMUX_BIN" ] || { echo "$VIPMUX_BIN missing"; return; }
  "$VIPMUX_BIN" pktgen --help >/dev/null 2>&1 || { echo "vipmux has no pktgen"; return; }
  free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
  [ "${free:-0}" -ge 256 ] || { echo "fewer than 256 free hugepages"; return; }
  echo ""
}

# dp_sched_ns PID — on-CPU nanoseconds of each thread of PID (schedstat field 1) as "tid:ns,tid:ns,..."
# ("" when gone). The window's CPU time is summed over the threads alive at both ends, so a thread
# that exits or starts inside the window cannot make it negative or inflate it.
dp_sched_ns() {
  local f s="" v t
  for f in /proc/"$1"/task/*/schedstat; do
    { read -r v _ <"$f"; } 2>/dev/null || continue
    t=${f%/schedstat}
    s+="${t##*/}:$v,"
  done
  echo "$s"
}

# dp_vipmux_runtime SOCKET — "received busy_ns handoffs per_worker busy_polls" of vipmux from its
# control socket ("" if it does not answer): frames received and busy nanoseconds summed over the
# workers (the workers' own accounting of the iterations that found frames), frames handed between
# workers, "received:busy_ns" of each worker joined by ";", and the iterations that found frames.
dp_vipmux_runtime() {
  dp_vipmux_ask "$1" counters
}

# dp_vipmux_neighbours6 CTL — the number of IPv6 neighbours vipmux's workers have (resolved, over
# every port) by its control socket CTL ("" if it does not answer).
dp_vipmux_neighbours6() {
  dp_vipmux_ask "$1" status
}

# dp_vipmux_ask CTL CMD [OUT] — CMD's reading of dp_vipmux_runtime (counters) or
# dp_vipmux_neighbours6 (status); CMD "sample" is dp_vipmux_sample's loop. A counters reading that
# fails says why on stderr (the point then has no busy cycles).
dp_vipmux_ask() {
  "$PY" - "$1" "$2" "${3:-}" <<'EOF' || true
import json, os, socket, sys, time
def ask(cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)["data"]
if sys.argv[2] == "status":
    try:
        print(sum(len(p.get("neighbours6", [])) for p in ask("status")["ports"]))
    except (OSError, ValueError, KeyError):
        pass  # not up yet: the caller polls
    sys.exit(0)
if sys.argv[2] == "sample":
    out, end = sys.argv[3], time.time() + 900
    while not os.path.exists(out + ".stop") and time.time() < end:
        try:
            ws = ask("counters")["workers"]
        except (OSError, ValueError, KeyError):
            break  # the DUT is gone
        with open(out, "a") as f:
            f.write(f'{sum(w["received"] for w in ws)} {sum(w["busy_ns"] for w in ws)}\n')
        time.sleep(0.25)
    sys.exit(0)
try:
    ws = ask("counters")["workers"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"vipmux's control socket {sys.argv[1]} gave no counters ({type(e).__name__}: {e})")
print(sum(w["received"] for w in ws), sum(w["busy_ns"] for w in ws),
      sum(w.get("handoff_sent", 0) for w in ws),
      ";".join(f'{w["received"]}:{w["busy_ns"]}' for w in ws),
      sum(w["busy_polls"] for w in ws))
EOF
}

# dp_frames_per_poll B0 B1 — from two dp_vipmux_runtime readings: the frames one busy iteration
# received on average, over its ports' rx bursts ("-" when unknown). Near the burst size (32) the
# DUT was the limit (an iteration can also take the exception port's few frames: a little over 32);
# well below it the generator was, and the per-iteration costs (rx and tx calls, clock) weigh on
# fewer frames each.
dp_frames_per_poll() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
    if (y[5] > x[5]) printf "%.1f\n", (y[1] - x[1]) / (y[5] - x[5]); else print "-" }'
}

# dp_worker_stats MHZ B0 B1 — from two dp_vipmux_runtime readings: "cycles;cycles… handoff_percent",
# each worker's busy cycles per packet it received and the share of frames handed between workers
# ("- -" when unknown).
dp_worker_stats() {
  "$PY" - "$1" "$2" "$3" <<'EOF' 2>/dev/null || echo "- -"
import sys
mhz, a, b = float(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
w0 = [tuple(map(int, x.split(":"))) for x in a[3].split(";")]
w1 = [tuple(map(int, x.split(":"))) for x in b[3].split(";")]
cyc = [f"{(b1 - b0) * mhz / 1000 / (r1 - r0):.0f}" if r1 > r0 else "-" for (r0, b0), (r1, b1) in zip(w0, w1)]
rx = int(b[0]) - int(a[0])
print(";".join(cyc), f"{100.0 * (int(b[2]) - int(a[2])) / rx:.1f}" if rx > 0 else "-")
EOF
}

# dp_vipmux_sample CTL OUT — appends "received busy_ns" of vipmux's workers (summed) to OUT every
# quarter second, read over the control socket CTL by one long-lived process (none started per
# reading: its own CPU time stays far below a millisecond a reading), until OUT.stop exists or the
# DUT is gone (15 minutes at most).
dp_vipmux_sample() {
  dp_vipmux_ask "$1" sample "$2"
}

# dp_window_q1 MHZ FILE — the lower quartile of the busy cycles per packet of the quarter-second windows
# dp_vipmux_sample wrote to FILE ("-" with fewer than 4 windows that received frames). The host's
# co-tenants can slow the core for seconds at a time (both DUTs then show about 1.6 to 2 times their
# cost); a whole-window average mixes both, the lower quartile is the cost when the core was not slowed.
dp_window_q1() {
  "$PY" - "$1" "$2" <<'EOF' 2>/dev/null || echo -
import sys
mhz = float(sys.argv[1])
pts = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
cyc = sorted((b1 - b0) * mhz / 1000 / (r1 - r0)
             for (r0, b0), (r1, b1) in zip(pts, pts[1:]) if r1 - r0 > 10000)
print(f"{cyc[len(cyc) // 4]:.0f}" if len(cyc) >= 4 else "-")
EOF
}

# dp_busy_cycles DUT TAG MHZ B0 B1 — the forwarding core's busy cycles per packet as the DUT itself
# counts them ("" when unknown): vipmux's worker runtime between the window's ends B0 and B1 (busy
# ns x MHz), testpmd's --record-core-cycles busy total (printed at exit) over the frames it returned, OVS's
# pmd-stats-show ("avg processing cycles per packet", cleared at the window start). Unlike the on-CPU
# figure, these leave out empty polls, so they are the cost of a packet, not of the core's idle time.
dp_busy_cycles() {
  local dut=$1 tag=$2 mhz=$3 b0=$4 b1=$5
  case $dut in
    vipmux)
      [ -n "$b0" ] && [ -n "$b1" ] || return 0
      awk -v a="$b0" -v b="$b1" -v m="$mhz" 'BEGIN { split(a, x, " "); split(b, y, " ");
        if (y[1] > x[1] && m > 0) printf "%.0f\n", (y[2] - x[2]) / (y[1] - x[1]) * m / 1000 }'
      ;;
    testpmd)
      # Its own packets/cycle ratio is wrong here: memif zeroes its counters when the generator
      # disconnects. The busy-cycle total is right; the packets it forwarded are pktgen's rx count.
      local cyc pk
      cyc=$(sed -n 's/.*total cycles=\([0-9]*\).*/\1/p' "$DP_SOCKDIR/$tag.dut.log" | tail -n 1)
      pk=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["rx_packets"])' "$DP_SOCKDIR/$tag.json" 2>/dev/null)
      [ -n "$cyc" ] && [ -n "$pk" ] && [ "$pk" -gt 0 ] && awk -v c="$cyc" -v p="$pk" 'BEGIN { printf "%.0f\n", c / p }'
      ;;
    ovs)
      sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' "$DP_SOCKDIR/$tag-ovs/pmd-stats.txt" 2>/dev/null |
        head -n 1 | awk '{ printf "%.0f\n", $1 }'
      ;;
  esac
}

# dp_vipmux_config FILE SOCKET FLOWS [KIND] [WORKERS] [CAPACITY] — the DUT configuration: one interface on net_memif0, the
# VIP 10.1.0.100, 8 on-link members 10.1.0.11..18 and one rule of KIND (default nat; see DP_RULES):
#   nat          TCP 80 load-balancing rule, NAT to port 8080, 5-tuple distribution
#   3tuple       the same with load_distribution = "source_ip_protocol"
#   2tuple       the same with load_distribution = "source_ip"
#   weighted     the same with member weights 1, 2, 3, 4, 1, 2, 3, 4
#   floating     floating IP delivered by MAC rewrite (dsr_encapsulation "none"), backend port 80
#   gue          floating IP in GUE (UDP 6080) to the member's address, backend port 80
#   inbound-nat  no load-balancing rule: an inbound NAT port range 50000-50063 over the pool, to port 22
#   reset-idle   the nat rule with enable_tcp_reset = true and idle_timeout_seconds = 60
#   outbound     the nat rule, the gateway 10.1.0.1 and an outbound rule: the pool's members leave as
#                10.1.0.100 (TCP, 1,024 ports per member); pktgen --direction outbound
#   nat6         the nat rule over IPv6: interface address6 2001:db8:1::2/64, the VIP 2001:db8:1::100,
#                8 on-link members 2001:db8:1::11..18; pktgen --family 6 (IPv6 flows, NAT66 checked;
#                78-byte frames, the smallest IPv6 TCP frame, where IPv4 points use 64); its IPv6
#                flow table as large as the IPv4 one (flow_table_capacity_ipv6), so 1 M flows fit
# WORKERS (1 or 2, default 1) workers, two on memif-dut-2w.toml. CAPACITY (default 1 M slots, 2 M above
# 500 K flows) sets flow_table_capacity.
dp_vipmux_config() {
  local i cap=1048576 kind=${4:-nat} dist=default fip=false bport=8080 encap=none extra="" w workers=${5:-1} prof=memif-dut.toml
  local vip=10.1.0.100 net=10.1.0.
  [ "$3" -gt 500000 ] && cap=2097152
  [ -n "${6:-}" ] && cap=$6
  [ "$workers" = 2 ] && prof=memif-dut-2w.toml
  case $kind in
    3tuple) dist=source_ip_protocol ;;
    2tuple) dist=source_ip ;;
    floating) fip=true bport=80 ;;
    gue) fip=true bport=80 encap=gue ;;
    reset-idle) extra='enable_tcp_reset = true\nidle_timeout_seconds = 60\n' ;;
    nat6) vip=2001:db8:1::100 net=2001:db8:1:: ;;
  esac
  {
    printf '[appliance]\nname = "bench-memif"\nhash_seed = 0x5eedcafe\n\n'
    printf '[dataplane]\ndpdk_profile = "%s/dpdk-config/%s"\nworkers = %s\nflow_table_capacity = %s\n' \
      "$ROOT" "$prof" "$workers" "$cap"
    # IPv6 flows get as many slots as IPv4's (the default, a quarter, would overflow at 1 M).
    [ "$kind" = nat6 ] && printf 'flow_table_capacity_ipv6 = %s\n' "$cap"
    printf '\n'
    printf '[control]\nsocket = "%s"\nmetrics = ""\n\n' "$2"
    printf '[[interfaces]]\nname = "lan"\nport = "net_memif0"\naddress = "10.1.0.2/24"\n'
    [ "$kind" = outbound ] && printf 'gateway = "10.1.0.1"\n'
    [ "$kind" = nat6 ] && printf 'address6 = "2001:db8:1::2/64"\n'
    printf '\n'
    printf '[[frontends]]\nname = "vip"\naddress = "%s"\ninterface = "lan"\n\n' "$vip"
    printf '[[backend_pools]]\nname = "web"\ndsr_encapsulation = "%s"\nmembers = [\n' "$encap"
    for i in $(seq 1 8); do
      w=1
      [ "$kind" = weighted ] && w=$(((i - 1) % 4 + 1))
      printf '  { name = "b%d", address = "%s%d", weight = %d },\n' "$i" "$net" $((10 + i)) "$w"
    done
    printf ']\n\n'
    if [ "$kind" = inbound-nat ]; then
      printf '[[inbound_nat_rules]]\nname = "ssh"\nfrontend = "vip"\nprotocol = "tcp"\n'
      printf 'frontend_port_range_start = 50000\nfrontend_port_range_end = 50063\nbackend_pool = "web"\nbackend_port = 22\n'
    else
      printf '[[load_balancing_rules]]\nname = "web"\nfrontend = "vip"\nprotocol = "tcp"\nfrontend_port = 80\n'
      printf 'backend_port = %s\nbackend_pool = "web"\nload_distribution = "%s"\nenable_floating_ip = %s\n' \
        "$bport" "$dist" "$fip"
      printf '%b' "$extra"
    fi
    if [ "$kind" = outbound ]; then
      printf '\n[[outbound_rules]]\nname = "egress"\nfrontends = ["vip"]\nbackend_pool = "web"\nprotocol = "tcp"\n'
    fi
  } >"$1"
}

# dp_kinds — the rule kinds dp_vipmux_config knows.
DP_KINDS="nat 3tuple 2tuple weighted floating gue inbound-nat reset-idle nat6"

# dp_point DUT MODE FLOWS SECS KIND [PKTGEN_ARG...] — one run (vipmux runs a rule of KIND, see
# dp_vipmux_config; pktgen checks that rule's rewrite); prints "tx_mpps rx_mpps loss_percent errors
# ns_per_packet cpu_share est_tx_mpps est_rx_mpps est_loss_percent est_errors syn_rx_mpps busy_cycles" (the
# five est/syn fields from pktgen's flood split in mode synflood, "-" otherwise; busy_cycles from
# dp_busy_cycles, "-" when unknown) or nothing on failure (the logs stay in
# $DP_SOCKDIR).
dp_point() {
  local dut=$1 mode=$2 flows=$3 secs=$4 kind=$5 tag sock cfg gen dutpid expect=rewrite extra=() i t0 t1 c0 c1 res base ovs
  local zc="" zmem=()
  if [ "$DP_MEMIF" = zero-copy ]; then zc=",zero-copy=yes" zmem=(--socket-mem=256); fi
  shift 5
  local pgargs=("$@")
  # DP_RATE caps the established points' offered rate (the flood points set their own).
  [ "$mode" = established ] && [ "${DP_RATE:-0}" != 0 ] && pgargs+=(--rate "$DP_RATE")
  # pktgen targets every load-balancing rule by default; the inbound NAT rule is named.
  [ "$kind" = inbound-nat ] && pgargs+=(--rule ssh)
  [ "$kind" = outbound ] && pgargs+=(--direction outbound)
  [ "$kind" = nat6 ] && pgargs+=(--family 6)
  # vipmux resolves its IPv6 members once the link is up: pktgen holds its traffic (answering
  # their solicitations) until they are, else the run's first frames are dropped `no_neighbour`.
  local go=""
  [ "$kind" = nat6 ] && [ "$dut" = vipmux ] && go=$DP_SOCKDIR/go-$RANDOM && pgargs+=(--wait-for-file "$go")
  tag="$dut-$kind-$mode-$flows-$RANDOM"
  sock=$DP_SOCKDIR/$tag.sock
  cfg=$DP_SOCKDIR/vipmux-$kind-$flows-${DP_WORKERS:-1}w.toml
  dp_vipmux_config "$cfg" "$DP_SOCKDIR/$tag.ctl" "$flows" "$kind" "${DP_WORKERS:-1}"
  # testpmd prints its cycle totals when it stops, and only while its port's counters are live:
  # memif clears them once the generator leaves. pktgen holds the link after its run until this
  # file exists, so testpmd is stopped first (below).
  local hold=""
  if [ "$dut" = testpmd ]; then
    expect=echo extra=(--dst-mac 02:00:00:00:00:01)
    hold=$DP_SOCKDIR/hold-$RANDOM
    extra+=(--hold-after-file "$hold")
  fi
  # OVS answers no ARP for the VIP: frames go to a fixed MAC (its netdev bridge takes them all).
  if [ "$dut" = ovs ]; then extra=(--dst-mac 02:00:00:00:00:01); fi
  base=${#OWN_PIDS[@]}
  # OVS connects two tx rings (main thread and PMD): the server must offer two.
  local gprof=memif-pktgen.toml
  [ "$dut" = ovs ] && gprof=memif-pktgen-2q.toml
  RUST_LOG=warn "${PKTGEN_BIN:-$VIPMUX_BIN}" pktgen --profile "$ROOT/dpdk-config/$gprof" \
    "--eal=--vdev=net_memif0,role=server,socket=$sock,id=0,socket-abstract=no" \
    --config "$cfg" --flows "$flows" --size "${DP_SIZE:-64}" --duration "$secs" --mode "$mode" --expect "$expect" \
    --sample-checksums 64 "${extra[@]}" "${pgargs[@]}" --json </dev/null >"$DP_SOCKDIR/$tag.json" 2>"$DP_SOCKDIR/$tag.gen.log" &
  gen=$!
  OWN_PIDS+=("$gen")
  for i in $(seq 1 300); do
    [ -S "$sock" ] && break
    kill -0 "$gen" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -S "$sock" ]; then
    log "dataplane $tag: pktgen did not listen: $(tail -n 3 "$DP_SOCKDIR/$tag.gen.log" | tr '\n' ' ')"
    dp_stop "$base"
    return 0
  fi
  case $dut in
    testpmd)
      ip netns exec "$DP_NS" dpdk-testpmd --lcores=0@1,1@1 --in-memory --single-file-segments --no-pci --log-level='*:warning' \
        "${zmem[@]}" "--vdev=net_memif0,role=client,socket=$sock,id=0,socket-abstract=no$zc" -- \
        --forward-mode=macswap --auto-start --stats-period=1 --total-num-mbufs=8192 --record-core-cycles \
        </dev/null >"$DP_SOCKDIR/$tag.dut.log" 2>&1 &
      ;;
    vipmux)
      ip netns exec "$DP_NS" "$VIPMUX_BIN" run --config "$cfg" "${zmem[@]/#/--eal=}" \
        "--eal=--vdev=net_memif0,role=client,socket=$sock,id=0,socket-abstract=no$zc" \
        </dev/null >"$DP_SOCKDIR/$tag.dut.log" 2>&1 &
      ;;
    ovs)
      ovs=$(dp_start_ovs "$sock" "$DP_SOCKDIR/$tag-ovs" 2>>"$DP_SOCKDIR/$tag.dut.log" || true)
      while read -r i dutpid; do [ "$i" = pid ] && OWN_PIDS+=("$dutpid"); done <<<"$ovs"
      if [ "$(tail -n 1 <<<"$ovs")" != ok ]; then
        log "dataplane $tag: OVS did not come up: $(tail -n 3 "$DP_SOCKDIR/$tag-ovs/vswitchd.log" "$DP_SOCKDIR/$tag.dut.log" 2>/dev/null | tr '\n' ' ')"
        dp_stop "$base"
        return 0
      fi
      ;;
  esac
  if [ "$dut" = ovs ]; then
    dutpid=${OWN_PIDS[-1]}
  else
    dutpid=$!
    OWN_PIDS+=("$dutpid")
  fi
  if [ -n "$go" ]; then
    # Bounded: the 8 members' IPv6 neighbours in the workers' map, or 30 s (then pktgen goes anyway).
    for i in $(seq 1 300); do
      [ "$(dp_vipmux_neighbours6 "$DP_SOCKDIR/$tag.ctl")" = 8 ] && break
      kill -0 "$dutpid" 2>/dev/null || break
      sleep 0.1
    done
    [ "$i" = 300 ] && log "dataplane $tag: vipmux had not resolved its 8 IPv6 members after 30 s"
    touch "$go"
  fi
  # The sending window starts with the first live line that shows traffic (link up, ARP resolved).
  for i in $(seq 1 $((10 * (secs + 40)))); do
    grep -qE 'tx +[0-9]*[1-9][0-9]*\.[0-9]+ Mpps|tx +0\.[0-9]*[1-9][0-9]* Mpps' "$DP_SOCKDIR/$tag.gen.log" && break
    kill -0 "$gen" 2>/dev/null || break
    if ! kill -0 "$dutpid" 2>/dev/null; then
      log "dataplane $tag: the DUT exited: $(tail -n 3 "$DP_SOCKDIR/$tag.dut.log" | tr '\n' ' ')"
      dp_stop "$base"
      return 0
    fi
    sleep 0.1
  done
  local b0="" b1="" octl=(ovs-appctl -t "$DP_SOCKDIR/$tag-ovs/vswitchd.ctl")
  local sampler=""
  if [ "$dut" = vipmux ]; then
    b0=$(dp_vipmux_runtime "$DP_SOCKDIR/$tag.ctl")
    dp_vipmux_sample "$DP_SOCKDIR/$tag.ctl" "$DP_SOCKDIR/$tag.windows" &
    sampler=$!
    OWN_PIDS+=("$sampler")
  fi
  [ "$dut" = ovs ] && "${octl[@]}" dpif-netdev/pmd-stats-clear >/dev/null 2>&1
  t0=$(bench_now) c0=$(dp_sched_ns "$dutpid")
  # The window ends shortly before pktgen's own end (it stops sending at --duration), so the
  # DUT-side readings cover sending time only.
  for i in $(seq 1 $((20 * (secs + 40)))); do
    kill -0 "$gen" 2>/dev/null || break
    [ "$(bench_elapsed "$t0" "$(bench_now)" | cut -d. -f1)" -ge $((secs - 1)) ] && break
    sleep 0.05
  done
  t1=$(bench_now) c1=$(dp_sched_ns "$dutpid")
  [ "$dut" = vipmux ] && b1=$(dp_vipmux_runtime "$DP_SOCKDIR/$tag.ctl")
  if [ -n "$sampler" ]; then
    touch "$DP_SOCKDIR/$tag.windows.stop"
    wait "$sampler" 2>/dev/null || true
  fi
  [ "$dut" = ovs ] && "${octl[@]}" dpif-netdev/pmd-stats-show >"$DP_SOCKDIR/$tag-ovs/pmd-stats.txt" 2>&1
  if [ -n "$hold" ]; then
    # Bounded: pktgen says when its run is over and it holds the link (or it has exited).
    for i in $(seq 1 $((20 * (secs + 40)))); do
      grep -q '^run over: holding the link' "$DP_SOCKDIR/$tag.gen.log" && break
      kill -0 "$gen" 2>/dev/null || break
      sleep 0.05
    done
    # testpmd prints its cycle totals while it shuts down: give it time before dp_stop's SIGKILL.
    kill -INT "$dutpid" 2>/dev/null || true
    for i in $(seq 1 200); do kill -0 "$dutpid" 2>/dev/null || break; sleep 0.05; done
    touch "$hold"
  fi
  # A non-zero exit (wrong frames) still leaves the JSON summary, whose errors the row records.
  wait "$gen" 2>/dev/null || true
  dp_stop "$base"
  local busy wstats="- -"
  busy=$(dp_busy_cycles "$dut" "$tag" "${DP_MHZ:-0}" "$b0" "$b1")
  [ "$dut" = vipmux ] && [ -n "$b0" ] && [ -n "$b1" ] && wstats=$(dp_worker_stats "${DP_MHZ:-0}" "$b0" "$b1")
  local q1=-
  [ -n "$sampler" ] && [ -s "$DP_SOCKDIR/$tag.windows" ] && q1=$(dp_window_q1 "${DP_MHZ:-0}" "$DP_SOCKDIR/$tag.windows")
  wstats+=" $q1"
  if [ "$dut" = vipmux ] && [ -n "$b0" ] && [ -n "$b1" ]; then wstats+=" $(dp_frames_per_poll "$b0" "$b1")"; else wstats+=" -"; fi
  res=$("$PY" - "$DP_SOCKDIR/$tag.json" "$t0" "$t1" "$c0" "$c1" "${busy:--} $wstats" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
def threads(arg):
    return {t: int(v) for t, v in (p.split(":") for p in arg.split(",") if p)}
c0, c1 = threads(sys.argv[4]), threads(sys.argv[5])
cpu_ns = sum(max(0, c1[t] - c0[t]) for t in c0.keys() & c1.keys())
share = cpu_ns / 1e9 / (t1 - t0) if t1 > t0 else 0.0
rx = s["rx_mpps"]
ns = share * 1000.0 / rx if rx > 0 else 0.0
f = s.get("flood")
split = (f'{f["established_tx_mpps"]:.4f} {f["established_rx_mpps"]:.4f} {f["established_loss_percent"]:.3f} '
         f'{f["established_errors"]} {f["syn_rx_mpps"]:.4f}') if f else "- - - - -"
print(f'{s["tx_mpps"]:.4f} {rx:.4f} {s["loss_percent"]:.2f} {s["errors"]} {ns:.1f} {share:.2f} {split} {sys.argv[6]} {s["size"]}')
EOF
)
  if [ -z "$res" ]; then
    log "dataplane $tag: no summary: $(tail -n 3 "$DP_SOCKDIR/$tag.gen.log" "$DP_SOCKDIR/$tag.dut.log" | tr '\n' ' ')"
    return 0
  fi
  echo "$res"
}

# dp_size_valid N — whether N is a frame size pktgen builds: 64 to 1518 bytes, FCS included.
dp_size_valid() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 64 ] && [ "$1" -le 1518 ]
}

# dp_rate_valid N — whether N is an offered rate pktgen takes: a count of packets per second (0: as
# fast as it can).
dp_rate_valid() {
  [[ "$1" =~ ^[0-9]+$ ]]
}

# dp_stop BASE — kill the processes recorded in OWN_PIDS from index BASE on and forget them.
dp_stop() {
  local pids=("${OWN_PIDS[@]:$1}")
  if [ ${#pids[@]} -gt 0 ]; then nsl_kill_pids "${pids[@]}"; fi
  OWN_PIDS=("${OWN_PIDS[@]:0:$1}")
}

# dp_median — reads dp_point lines, prints the one with the median rx Mpps.
dp_median() {
  sort -k2,2g | awk '{ l[NR] = $0 } END { if (NR) print l[int((NR + 1) / 2)] }'
}

run_dataplane() {
  local flows_list secs repeat duts rules workers2 kind why dut flows mode r line mhz cyc all n load1 tx rx loss errs ns share p points
  local pmode pgargs wcyc hpct etx erx eloss eerrs srx eshare oline orx oloss rate oall fpp
  why=$(dp_prereq)
  if [ -n "$why" ]; then
    log "dataplane: skipped ($why)"
    return 0
  fi
  if [ "$quick" = 1 ]; then
    flows_list=${DP_FLOWS:-1000} secs=${DP_SECS:-3} repeat=${DP_REPEAT:-1}
  else
    flows_list=${DP_FLOWS:-"1000 100000 1000000"} secs=${DP_SECS:-10} repeat=${DP_REPEAT:-3}
  fi
  if [ "$quick" = 1 ]; then duts=${DP_DUTS:-"testpmd vipmux"}; else duts=${DP_DUTS:-"testpmd vipmux ovs"}; fi
  if [ "$quick" = 1 ]; then rules=${DP_RULES:-"nat nat6"}; else rules=${DP_RULES:-$DP_KINDS}; fi
  # The two-worker points: full runs only, unless DP_WORKERS2=1 asks for them in a quick run.
  if [ "$quick" = 1 ]; then workers2=${DP_WORKERS2:-0}; else workers2=${DP_WORKERS2:-1}; fi
  # The measurement window is the sending time less its first second: one second at the least.
  [[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -ge 2 ] || { log "dataplane: DP_SECS $secs: give 2 seconds or more (the window is DP_SECS - 1)"; failures+=("dataplane:DP_SECS"); return 0; }
  dp_rate_valid "${DP_RATE:-0}" || { log "dataplane: DP_RATE ${DP_RATE}: give packets per second (0: as fast as the generator can)"; failures+=("dataplane:DP_RATE"); return 0; }
  dp_size_valid "${DP_SIZE:-64}" || { log "dataplane: DP_SIZE ${DP_SIZE}: give a frame size in bytes from 64 to 1518 (FCS included)"; failures+=("dataplane:DP_SIZE"); return 0; }
  for kind in $rules; do
    [[ " $DP_KINDS " == *" $kind "* ]] || { log "dataplane: unknown rule kind $kind in DP_RULES (known: $DP_KINDS)"; failures+=("dataplane:DP_RULES"); return 0; }
  done
  command -v dpdk-testpmd >/dev/null || { log "dataplane: dpdk-testpmd missing; no reference"; duts=${duts//testpmd/}; }
  if [[ " $duts " == *" ovs "* ]] && [ ! -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ]; then
    log "dataplane: Open vSwitch DPDK missing (Debian openvswitch-switch-dpdk); no OVS peer"
    duts=${duts//ovs/}
  fi
  DP_SOCKDIR=$(mktemp -d /tmp/vipmux-dp.XXXXXX)
  DP_NS="vb$$-dut"
  ip netns add "$DP_NS"
  ip netns exec "$DP_NS" ip link set lo up
  mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
  DP_MHZ=${mhz:-0}
  local csv=$out/dataplane.csv
  printf 'date,machine,config,flows,mpps,dut,mode,tx_mpps,rx_mpps,loss_percent,errors,ns_per_packet,cycles_per_packet,cycles_source,dut_cpu_share,runs,loadavg1,est_share_percent,est_tx_mpps,est_rx_mpps,est_loss_percent,est_errors,syn_rx_mpps,est_only_rx_mpps,est_only_loss_percent,busy_cycles_per_packet,memif,workers,busy_cycles_per_worker,handoff_percent,busy_cycles_q1,frames_per_busy_poll,frame_bytes\n' >"$csv"
  points=()
  for dut in $duts; do
    for flows in $flows_list; do points+=("$dut established $flows nat"); done
  done
  # The other rule kinds (vipmux only): every kind of DP_RULES at every flow count.
  if [[ " $duts " == *" vipmux "* ]]; then
    for kind in $rules; do
      [ "$kind" = nat ] && continue
      for flows in $flows_list; do points+=("vipmux established $flows $kind"); done
    done
  fi
  if [[ " $duts " == *" vipmux "* ]] && [ "$workers2" = 1 ]; then
    # Two workers at the first flow count: pktgen spreads flow i on queue i mod 2 (half the frames
    # land on a worker that does not own their flow: software hand-off), then each flow on its
    # owner's queue (what NIC steering would deliver: no hand-off). The difference is the hand-off.
    points+=("vipmux established-2w-handoff $(set -- $flows_list; echo "$1") nat")
    points+=("vipmux established-2w-steered $(set -- $flows_list; echo "$1") nat")
  fi
  if [[ " $duts " == *" vipmux "* ]] && [ "${DP_OUTBOUND:-1}" = 1 ]; then
    # Outbound SNAT at the first flow count: established data both ways, then the members' SYNs.
    points+=("vipmux established $(set -- $flows_list; echo "$1") outbound")
    points+=("vipmux syn $(set -- $flows_list; echo "$1") outbound")
  fi
  if [[ " $duts " == *" vipmux "* ]] && [ "${DP_SYNFLOOD:-1}" = 1 ]; then
    points+=("vipmux synflood $(set -- $flows_list; echo "$1") nat")
    points+=("vipmux synflood-established $(set -- $flows_list; echo "$1") nat")
  fi
  eshare=${DP_FLOOD_EST_SHARE:-25}
  for p in "${points[@]}"; do
    read -r dut mode flows kind <<<"$p"
    pmode=$mode pgargs=() DP_WORKERS=1
    case $mode in
      established-2w-handoff) pmode=established pgargs=(--queues 2 --spread flow) DP_WORKERS=2 ;;
      established-2w-steered) pmode=established pgargs=(--queues 2 --spread owner) DP_WORKERS=2 ;;
    esac
    if [ "$mode" = synflood-established ]; then pmode=synflood pgargs=(--established-share "$eshare"); fi
    all=""
    for r in $(seq 1 "$repeat"); do
      line=$(dp_point "$dut" "$pmode" "$flows" "$secs" "$kind" "${pgargs[@]}")
      log "dataplane $dut $kind $mode $flows flows run $r: ${line:-failed} (tx rx Mpps, loss %, errors, on-CPU ns/pkt, DUT CPU share; flood split: est tx rx Mpps, est loss %, est errors, SYN rx Mpps; DUT busy cycles/pkt)"
      # A run that got nothing back (the DUT never forwarded: link or ARP never came up) is a
      # failed run, not a zero to take the median of.
      if [ -n "$line" ] && awk '{ exit !($2 > 0) }' <<<"$line"; then all+="$line"$'\n'; fi
    done
    n=$(grep -c . <<<"$all" || true)
    if [ "$n" = 0 ]; then
      failures+=("dataplane:$dut:$mode:$flows")
      continue
    fi
    read -r tx rx loss errs ns share etx erx eloss eerrs srx busy wcyc hpct bq1 fpp fbytes <<<"$(printf '%s' "$all" | dp_median)"
    [ "$busy" = - ] && busy=""
    orx="" oloss=""
    if [ "$mode" = synflood-established ] && [ "$etx" != - ]; then
      # The established traffic alone, at the rate it had during the flood: the loss to compare with.
      rate=$(awk -v m="$etx" 'BEGIN { printf "%.0f", m * 1e6 }')
      oall=""
      for r in $(seq 1 "$repeat"); do
        oline=$(dp_point vipmux synflood "$flows" "$secs" nat --established-share 100 --rate "$rate")
        log "dataplane vipmux established-only $flows flows at $rate pps run $r: ${oline:-failed}"
        [ -n "$oline" ] && oall+="$oline"$'\n'
      done
      if [ -n "$oall" ]; then
        read -r _ _ _ _ _ _ _ orx oloss _ _ _ _ _ _ <<<"$(printf '%s' "$oall" | dp_median)"
      else
        failures+=("dataplane:vipmux:established-only:$flows")
      fi
    fi
    if [ "$etx" = - ]; then etx="" erx="" eloss="" eerrs="" srx=""; fi
    load1=$(cut -d' ' -f1 /proc/loadavg)
    cyc=$(awk -v n="$ns" -v m="${mhz:-0}" 'BEGIN { if (m > 0) printf "%.0f", n * m / 1000 }')
    local cfgname=$dut
    [ "$dut" = testpmd ] && cfgname="testpmd-macswap"
    [ "$dut" = vipmux ] && cfgname="vipmux-$kind"
    [ "$dut" = ovs ] && cfgname="ovs-dpdk-ct-lb"
    [ "$mode" = synflood ] && cfgname="vipmux-synflood"
    [ "$mode" = synflood-established ] && cfgname="vipmux-synflood-established"
    [ "$mode" = established-2w-handoff ] && cfgname="vipmux-nat-2w-handoff"
    [ "$mode" = established-2w-steered ] && cfgname="vipmux-nat-2w-steered"
    [ "$wcyc" = - ] && wcyc=""
    [ "$hpct" = - ] && hpct=""
    [ "${bq1:--}" = - ] && bq1=""
    [ "${fpp:--}" = - ] && fpp=""
    local pshare=""
    [ "$mode" = synflood ] && pshare=0
    [ "$mode" = synflood-established ] && pshare=$eshare
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$DATE" "$MACHINE" "$cfgname" "$flows" "$rx" "$dut" \
      "$mode" "$tx" "$rx" "$loss" "$errs" "$ns" "$cyc" "derived-cpu-mhz" "$share" "$n" "$load1" \
      "$pshare" "$etx" "$erx" "$eloss" "$eerrs" "$srx" "$orx" "$oloss" "$busy" "$DP_MEMIF" "$DP_WORKERS" "$wcyc" "$hpct" "$bq1" "$fpp" "$fbytes" >>"$csv"
  done
  dp_cleanup
}

# dp_start_ovs SOCK DIR — Open vSwitch with the DPDK datapath (Debian openvswitch-switch-dpdk) as the DUT:
# ovsdb-server and ovs-vswitchd-dpdk with a private run/db directory DIR in the DUT namespace, one netdev
# bridge with the memif client port, and the OVN-style load balancer: a select group over the members, each
# bucket ct(commit, nat(dst=member:8080)); established flows take their NAT from conntrack. Runs in a
# command substitution: prints "pid N" for every process it starts (the caller records them) and "ok"
# last when everything is set up.
dp_start_ovs() {
  local sock=$1 dir=$2 db vs i buckets="" vsctl ofctl zc=""
  [ "$DP_MEMIF" = zero-copy ] && zc=",zero-copy=yes"
  mkdir -p "$dir"
  export OVS_RUNDIR=$dir OVS_LOGDIR=$dir OVS_DBDIR=$dir OVS_SYSCONFDIR=$dir
  ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 0
  ip netns exec "$DP_NS" ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" \
    --unixctl="$dir/ovsdb.ctl" --log-file="$dir/ovsdb.log" </dev/null >/dev/null 2>&1 &
  db=$!
  echo "pid $db"
  for i in $(seq 1 100); do [ -S "$dir/db.sock" ] && break; sleep 0.05; done
  vsctl=(ovs-vsctl --db="unix:$dir/db.sock" --timeout=30)
  "${vsctl[@]}" --no-wait init
  "${vsctl[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-lcore-mask=0x1 \
    other_config:pmd-cpu-mask=0x2 other_config:dpdk-socket-mem=256 \
    "other_config:dpdk-extra=--no-pci --single-file-segments --in-memory"
  ip netns exec "$DP_NS" /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk "unix:$dir/db.sock" \
    --unixctl="$dir/vswitchd.ctl" --log-file="$dir/vswitchd.log" </dev/null >/dev/null 2>&1 &
  vs=$!
  echo "pid $vs"
  "${vsctl[@]}" add-br br0 -- set bridge br0 datapath_type=netdev || return 0
  ofctl=(ovs-ofctl -O OpenFlow15)
  for i in $(seq 1 8); do
    buckets+=",bucket=bucket_id:$i,actions=ct(commit,zone=1,table=2,nat(dst=10.1.0.$((10 + i)):8080))"
  done
  "${ofctl[@]}" add-group "unix:$dir/br0.mgmt" "group_id=1,type=select,selection_method=hash,fields(ip_src,ip_dst,tcp_src,tcp_dst)$buckets" || return 0
  {
    echo "table=0,priority=100,tcp,nw_dst=10.1.0.100,tp_dst=80,actions=ct(zone=1,table=1,nat)"
    echo "table=0,priority=0,actions=drop"
    echo "table=1,priority=100,ct_state=+new+trk,tcp,actions=group:1"
    echo "table=1,priority=50,ct_state=+est+trk,actions=resubmit(,2)"
    echo "table=1,priority=0,actions=drop"
    for i in $(seq 1 8); do
      printf 'table=2,priority=100,ip,nw_dst=10.1.0.%d,actions=mod_dl_dst:02:76:0a:01:00:%02x,in_port\n' $((10 + i)) $((10 + i))
    done
  } >"$dir/flows.txt"
  "${ofctl[@]}" add-flows "unix:$dir/br0.mgmt" "$dir/flows.txt" || return 0
  # The port last: the memif link (and pktgen's traffic) starts with it, the tables are in place.
  "${vsctl[@]}" add-port br0 m0 -- set Interface m0 type=dpdk \
    "options:dpdk-devargs=net_memif0,role=client,socket=$sock,id=0,socket-abstract=no$zc" || return 0
  echo ok
}
