# shellcheck shell=bash
# Shared by the callgrind counters worker_ir.sh and testpmd_ir.sh (sourced, with ROOT, BIN, FLOWS
# and SECS set; IR_MODE, the generator's --mode, default established): a temporary directory, a
# network namespace for the DUT, the generator's start and the cleanup of what the script started
# (OWN_PIDS, by PID). KEEP=1 keeps the directory.

# Creates DIR (/tmp/vipmux-NAME.*) and the namespace NS (PREFIX and the script's PID).
ir_begin() {
  DIR=$(mktemp -d "/tmp/vipmux-$1.XXXXXX")
  NS=$2$$
  SOCK=$DIR/memif.sock
  OWN_PIDS=()
  trap ir_cleanup EXIT
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
}

# Stops what the script started (SIGTERM, then SIGKILL after 10 s), removes the namespace.
ir_cleanup() {
  local p
  for p in "${OWN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${OWN_PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}

# Starts `vipmux pktgen` (memif server on SOCK, 64-byte established flows of DIR/dut.toml, the
# extra arguments appended) and waits until it listens.
ir_pktgen() {
  RUST_LOG=warn "$BIN" pktgen --profile "$ROOT/dpdk-config/memif-pktgen.toml" \
    "--eal=--vdev=net_memif0,role=server,socket=$SOCK,id=0,socket-abstract=no" \
    --config "$DIR/dut.toml" --flows "$FLOWS" --size 64 --duration $((SECS + 600)) --mode "${IR_MODE:-established}" \
    "$@" </dev/null >"$DIR/gen.json" 2>"$DIR/gen.log" &
  OWN_PIDS+=($!)
  for _ in $(seq 1 300); do [ -S "$SOCK" ] && break; sleep 0.1; done
  [ -S "$SOCK" ] || { echo "pktgen did not listen: $(tail -n 3 "$DIR/gen.log")" >&2; exit 1; }
}

# Replaces the generator (the first PID started) by one sending RATE frames per second with the
# same arguments (a trickle: the link stays up, nearly every poll is empty), for the window that
# gives the instructions of one empty poll. vipmux's memif client reconnects by itself (testpmd's
# does not: testpmd_ir.sh runs a second testpmd instead).
ir_trickle() {
  local rate=$1
  shift
  kill "${OWN_PIDS[0]}" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "${OWN_PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
  rm -f "$SOCK"
  ir_pktgen "$@" --rate "$rate"
}

# Waits (up to 10 minutes: valgrind starts slowly) until the last field of COMMAND's output, a
# frame count, exceeds LEAST; fails if the DUT (PID in DUT) exits first (with IR_SOFT set, returns
# 1 then instead of ending the script).
ir_await() {
  local command=$1 least=$2 out
  for _ in $(seq 1 1200); do
    out=$("$command" 2>/dev/null || true)
    [ -n "$out" ] && [ "${out##* }" -gt "$least" ] && return 0
    if ! kill -0 "$DUT" 2>/dev/null; then
      echo "the DUT exited: $(tail -n 5 "$DIR/dut.log")" >&2
      [ -n "${IR_SOFT:-}" ] && return 1
      exit 1
    fi
    sleep 0.5
  done
  echo "$command did not report more than $least frames in 10 minutes" >&2
  exit 1
}
