#!/usr/bin/env bash
# Instructions per packet of the whole forwarding worker (rx burst, pipeline, tx burst, mbuf frees,
# loop checks), counted by callgrind: repeatable on a loaded machine, unlike cycles.
#
#   scripts/bench/worker_ir.sh [VIPMUX_BIN] [FLOWS] [SECS] [KIND] [MODE]
#
# `vipmux pktgen` (memif server, not instrumented) sends 64-byte established NAT traffic as fast as it
# can to `vipmux run` (memif client in copy mode, --no-huge, else the memif-dut.toml profile and the benchmark's one NAT
# rule, in its own network namespace) running under
# `valgrind --tool=callgrind --toggle-collect='*Worker*run*'`: only the worker thread's loop is
# counted. DPDK cannot get its hugepage address space under valgrind, hence --no-huge and memif copy
# mode. Once traffic flows the counts are zeroed (callgrind_control -z), SECS later dumped (-d),
# then a window with a trickle (a new generator sending 100 frames per second, the link up) gives
# the instructions of one empty poll. Frames
# and polls come from callgrind's call counts. Prints the whole worker's instructions per packet
# with and without the empty polls and the split (rx, tx, pipeline, loop), inclusive.
# KIND (default nat) is a rule kind of dp_vipmux_config (dataplane.sh); with `outbound` pktgen runs
# --direction outbound (the members' data segments and the remote hosts' answers in turn, through SNAT);
# with `nat6` pktgen sends IPv6 flows (--family 6, 78-byte frames). MODE (default established) is
# pktgen's --mode; with `synflood` (SYNs from random sources) the DUT's flow table has 65,536 slots,
# so that it fills within the first seconds under valgrind and every SYN after evicts, as in the
# memif bench's flood into its 1 M-slot table.
# Needs root, valgrind, hugepages (for the generator); leaves nothing running (KEEP=1 keeps the dumps;
# IR_VALGRIND_OPTS adds valgrind options, e.g. "--dump-instr=yes" for per-instruction counts).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/release/vipmux}
FLOWS=${2:-1000}
SECS=${3:-20}
KIND=${4:-nat}
IR_MODE=${5:-established}
PY=python3
# shellcheck source=scripts/bench/ir_common.sh
source "$ROOT/scripts/bench/ir_common.sh"
ir_begin worker-ir vwir
# shellcheck source=scripts/bench/dataplane.sh
source "$ROOT/scripts/bench/dataplane.sh"
CAPACITY=""
[ "$IR_MODE" = synflood ] && CAPACITY=65536
dp_vipmux_config "$DIR/dut.toml" "$DIR/ctl.sock" "$FLOWS" "$KIND" 1 "$CAPACITY"
DIRECTION=inbound
[ "$KIND" = outbound ] && DIRECTION=outbound
FAMILY=4
[ "$KIND" = nat6 ] && FAMILY=6
# valgrind cannot give DPDK the address space hugepage memory wants: the DUT runs --no-huge (so
# memif copies: a zero-copy client needs shareable hugepage memory), else as memif-dut.toml.
sed -e 's/^hugepages = .*/hugepages = "off"/' -e 's/"--single-file-segments", "--socket-mem=256", //' \
  "$ROOT/dpdk-config/memif-dut.toml" >"$DIR/dut-profile.toml"
sed -i "s|^dpdk_profile = .*|dpdk_profile = \"$DIR/dut-profile.toml\"|" "$DIR/dut.toml"
# The worker's received frames, polls, busy polls and the frames sent, from its control socket.
runtime() {
  "$PY" - "$DIR/ctl.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(300)  # valgrind runs one thread at a time: the control thread answers slowly
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"counters"}\n')
d = json.loads(s.makefile().readline())["data"]
w = d["workers"][0]
print(w["received"], w["polls"], w["busy_polls"], d["transmitted"])
EOF
}
GEN_ARGS=(--expect rewrite --direction "$DIRECTION" --family "$FAMILY")
ir_pktgen "${GEN_ARGS[@]}"
# shellcheck disable=SC2086 # IR_VALGRIND_OPTS: extra options, split on spaces
ip netns exec "$NS" valgrind --tool=callgrind --toggle-collect='*Worker*run*' ${IR_VALGRIND_OPTS:-} \
  --callgrind-out-file="$DIR/cg.out" "$BIN" run --config "$DIR/dut.toml" \
  "--eal=--vdev=net_memif0,role=client,socket=$SOCK,id=0,socket-abstract=no" \
  </dev/null >"$DIR/dut.log" 2>&1 &
DUT=$!
OWN_PIDS+=("$DUT")
# Traffic flows once the DUT has forwarded frames (link up, the members' ARP answered).
r0=""
ir_await runtime 100000
callgrind_control -z "$DUT" >/dev/null
r0=$(runtime)
sleep "$SECS"
r1=$(runtime)
callgrind_control -d "$DUT" >/dev/null
# The generator is slower than one full burst per poll here (load, valgrind's thread switching),
# so the window has empty polls too: a second window with a trickle (100 frames per second, the
# link up: polls on a link that is down skip the PMD) gives the instructions of one empty poll,
# taken off the total below (the trickle's pipeline and tx calls taken off it first).
# DPDK 22.11's memif driver has died under valgrind (SIGSEGV in the EAL interrupt thread) when the
# generator went away here, in about one run in six; the first window's dump is written by then, so
# the figures are printed without the empty polls' correction (an empty second dump).
ir_trickle 100 "${GEN_ARGS[@]}"
if rt=$(runtime 2>/dev/null) && IR_SOFT=1 ir_await runtime "$((${rt##* } + 100))"; then
  callgrind_control -z "$DUT" >/dev/null
  sleep 5
  callgrind_control -d "$DUT" >/dev/null
else
  echo "no idle window: the DUT stopped after the first window (see $DIR/dut.log)" >&2
  : >"$DIR/cg.out.2"
fi
dump=$DIR/cg.out.1
[ -f "$dump" ] && [ -f "$DIR/cg.out.2" ] || { echo "no callgrind dumps" >&2; exit 1; }
read -r rx0 p0 b0 tx0 <<<"$r0"
read -r rx1 p1 b1 tx1 <<<"$r1"
pk=$((rx1 - rx0))
echo "counters over about the window: $pk frames ($((tx1 - tx0)) forwarded), $((p1 - p0)) polls, $((b1 - b0)) busy"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null >"$DIR/annotate.txt"
callgrind_annotate --inclusive=yes "$DIR/cg.out.2" 2>/dev/null >"$DIR/annotate2.txt" || true
# Frames and polls come from callgrind's own call counts (the control socket answers seconds late
# under valgrind): busy polls = calls of Pipeline::process, polls = calls of the rx burst, frames =
# busy polls x the worker's frames per busy poll over the window.
"$PY" - "$DIR/annotate.txt" "$dump" "$DIR/cg.out.2" "$pk" "$((b1 - b0))" "$DIR/annotate2.txt" <<'EOF'
import re, sys
from collections import Counter
def calls(path):
    names, out, cfn = {}, Counter(), None
    for line in open(path, errors="replace"):
        m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2).strip()
            cfn = names.get(m.group(1), "")
        elif line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line)
            if m and m.group(2):
                names[m.group(1)] = m.group(2).strip()
        elif line.startswith("calls=") and cfn is not None:
            out[cfn] += int(line.split()[0][6:])
    return out
def grand_total(path):
    for line in open(path, errors="replace"):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    return 0
def count(c, pat):
    return sum(n for name, n in c.items() if re.search(pat, name))
c1, c2 = calls(sys.argv[2]), calls(sys.argv[3])
per_busy = int(sys.argv[4]) / max(int(sys.argv[5]), 1)
busy, polls = count(c1, r"Pipeline.*::process$"), count(c1, r"^vipmux_rx_burst$")
pk = busy * per_busy
def inclusive(path):
    rows = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows
def first_of(rows, pat):
    for ir, name in rows:
        if re.search(pat, name):
            return ir
    return 0
rows, rows2 = inclusive(sys.argv[1]), inclusive(sys.argv[6])
def first(pat):
    return first_of(rows, pat)
RX, TX = r"vipmux_rx_burst", r"vipmux_tx_burst"
PROCESS = r"Pipeline>?::process$|Pipeline>?::process \["
# The trickle's few frames: their pipeline and tx calls are taken off the idle window.
idle_polls = count(c2, r"^vipmux_rx_burst$")
idle_ir = first_of(rows2, r"PROGRAM TOTALS") - first_of(rows2, PROCESS) - first_of(rows2, TX)
per_empty = idle_ir / max(idle_polls, 1)
rx_per_empty = first_of(rows2, RX) / max(idle_polls, 1)
empty_ir = (polls - busy) * per_empty if idle_polls else 0
empty_rx = (polls - busy) * rx_per_empty if idle_polls else 0
print(f"window: {busy} busy polls x {per_busy:.2f} frames = {pk:.0f} frames, {polls - busy} empty polls")
if idle_polls:
    print(f"idle window: {idle_polls} polls, {per_empty:.1f} Ir each ({rx_per_empty:.1f} in the rx call)")
else:
    print("idle window: no rx burst call (the link stayed down, or the DUT stopped): empty polls not taken off")
# Collection is on only inside the worker loop, so the program total is the worker's.
total = first(r"PROGRAM TOTALS")
print(f"whole worker: {total / pk:.1f} Ir/pkt with the empty polls, {(total - empty_ir) / pk:.1f} without")
# Sends of frames a tx queue refused, from the next iterations (`EgressQueues::send` out of line;
# the busy path's own send is the inlined `send_whole`): the worker waiting on a peer that does
# not drain (back-pressure), not work per packet. Their iterations' loop checks stay in the total.
retries, retry_ir = count(c1, r"EgressQueues::send$"), first(r"EgressQueues::send \[")
print(f"tx retries after refusals (back-pressure): {retries} calls, {retry_ir / pk:.1f} Ir/pkt; "
      f"whole worker without them: {(total - empty_ir - retry_ir) / pk:.1f}")
print("  (Ir/pkt: with the empty polls, without)")
parts = [("PMD rx (rx burst call)", RX, empty_rx),
         ("PMD tx (tx burst call, incl. its mbuf frees and the retries')", TX, 0),
         ("pipeline (Pipeline::process)", PROCESS, 0),
         ("mbuf free outside tx (drops)", r"vipmux_pktmbuf_free", 0)]
rest = total
for label, pat, empty in parts:
    ir = first(pat)
    rest -= ir
    print(f"  {label}: {ir / pk:.1f} {(ir - empty) / pk:.1f}")
print(f"  loop (the rest: dispatch, checks, clock, counters, retries): {rest / pk:.1f} "
      f"{(rest - (empty_ir - empty_rx)) / pk:.1f}")
print("top inclusive:")
for ir, name in rows[:25]:
    print(f"  {ir / pk:9.1f}  {name[:110]}")
EOF
