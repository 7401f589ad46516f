#!/usr/bin/env bash
# Instructions per packet of testpmd's forwarding lcore (macswap), counted by callgrind the way
# worker_ir.sh counts vipmux's worker: the same generator (`vipmux pktgen`, memif server, not
# instrumented), the same memif client setup in copy mode (--no-huge: valgrind cannot give DPDK
# hugepage memory), 64-byte established flows.
#
#   scripts/bench/testpmd_ir.sh [VIPMUX_BIN] [FLOWS] [SECS]
#
# testpmd's DPDK is stripped, so there is no function to toggle collection on: callgrind counts
# every thread apart (--separate-threads) and the forwarding lcore is the thread whose dump calls
# the memif PMD most. Frames come from testpmd's own port statistics (printed every second) read
# after zeroing and after dumping; polls and busy polls from callgrind's call counts of the memif
# rx and tx functions (macswap sends only after a non-empty receive). Prints the lcore's
# instructions per frame and the split by object (memif PMD, mempool ring, mbuf, libc, testpmd)
# and by function, with the empty polls taken off: under valgrind the generator does not keep
# testpmd's ring full, so most polls are empty. A first pass of the script itself, fed a trickle
# (IR_RATE=200 frames per second, the link up; testpmd's memif client does not reconnect to a new
# generator, hence a second testpmd) gives the instructions of one empty poll. Needs root,
# valgrind, hugepages (for the generator); leaves nothing running (KEEP=1 keeps the dumps).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/release/vipmux}
FLOWS=${2:-1000}
SECS=${3:-20}
PY=python3
# shellcheck source=scripts/bench/ir_common.sh
source "$ROOT/scripts/bench/ir_common.sh"
ir_begin testpmd-ir vtir
# shellcheck source=scripts/bench/dataplane.sh
source "$ROOT/scripts/bench/dataplane.sh"
dp_vipmux_config "$DIR/dut.toml" "$DIR/ctl.sock" "$FLOWS" nat 1
if [ -z "${IR_RATE:-}" ]; then
  IR_RATE=200 IR_OUT=$DIR/idle "$0" "$BIN" "$FLOWS" 5
fi
ir_pktgen --expect echo --dst-mac 02:00:00:00:00:01 --rate "${IR_RATE:-0}"
ip netns exec "$NS" valgrind --tool=callgrind --separate-threads=yes \
  --callgrind-out-file="$DIR/cg.out" dpdk-testpmd --lcores=0@1,1@1 --no-huge -m 512 --file-prefix="$NS" \
  --no-pci --log-level='*:warning' "--vdev=net_memif0,role=client,socket=$SOCK,id=0,socket-abstract=no" -- \
  --forward-mode=macswap --auto-start --stats-period=1 --total-num-mbufs=8192 \
  </dev/null >"$DIR/dut.log" 2>&1 &
DUT=$!
OWN_PIDS+=("$DUT")
# The latest RX-packets of testpmd's statistics that appear after this call.
rx_after() {
  local n0 line
  n0=$(grep -c 'RX-packets' "$DIR/dut.log" || true)
  for _ in $(seq 1 600); do
    line=$(grep 'RX-packets' "$DIR/dut.log" | sed -n "$((n0 + 1))p" || true)
    [ -n "$line" ] && { awk '{print $2}' <<<"$line"; return; }
    sleep 0.1
  done
  echo "testpmd printed no statistics" >&2
  exit 1
}
# testpmd's latest RX-packets.
rx_latest() {
  grep 'RX-packets' "$DIR/dut.log" | tail -n 1 | awk '{print $2}'
}
ir_await rx_latest "$(( ${IR_RATE:-0} > 0 ? IR_RATE : 100000 ))"
callgrind_control -z "$DUT" >/dev/null
r0=$(rx_after)
sleep "$SECS"
callgrind_control -d "$DUT" >/dev/null
r1=$(rx_after)
if [ -n "${IR_OUT:-}" ]; then
  # The trickle pass: its dumps and frames for the caller.
  mkdir -p "$IR_OUT"
  mv "$DIR"/cg.out.1-* "$IR_OUT"/
  echo "$((r1 - r0))" >"$IR_OUT/frames"
  exit 0
fi
echo "frames in the window (testpmd RX-packets): $((r1 - r0))"
"$PY" "$ROOT/scripts/bench/callgrind_groups.py" --frames "$((r1 - r0))" \
  --idle "$DIR"/idle/cg.out.1-* --idle-frames "$(cat "$DIR/idle/frames")" "$DIR"/cg.out.1-*
