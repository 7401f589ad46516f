#!/usr/bin/env bash
# Interleaved memif comparison of vipmux builds: the data-plane bench's established points (section
# (d) of scripts/bench/README.md) for each binary in turn, ROUNDS times, the order reversed every
# other round; then, per binary and point, the lowest and the median busy cycles per packet, the
# lowest lower quartile, and the rewrite errors. The core of a shared VM slows for seconds to minutes
# at a time, so one run of each build compares two moments of the host, not two builds; the lowest
# figures of several interleaved runs compare the builds in the host's fast moments.
#
# Usage: scripts/bench/ab.sh [--rounds N] [--rules "KINDS"] [--flows "COUNTS"] [--secs S] [--size B]
#                            [--rate PPS] [--flood] [--testpmd] BIN [BIN...]
#   BIN...        two or more vipmux binaries (one is enough with --testpmd), labelled by position
#                 and file name (1:vipmux, ...)
#   --rounds N    rounds (default 3): each runs every binary once
#   --rules K     the rule kinds, as DP_RULES (default "nat")
#   --flows F     the flow counts, as DP_FLOWS (default "1000 1000000")
#   --secs S      seconds per point (default 5, at least 2)
#   --size B      the generator's frame size in bytes, FCS included (default 64; 64 to 1518), as
#                 DP_SIZE; each run's line ends with the size the generator reports it sent
#   --flood       the two SYN flood points too (alone, and with established traffic mixed in; at the
#                 first flow count, NAT): busy cycles per received frame, rx Mpps = new flows/s
#   --rate PPS    the generator's offered rate at the established points, packets per second, as
#                 DP_RATE (default 0: as fast as it can); compares kinds or builds at one load, where
#                 each at its own limit compares them at different burst fills and rates
#   --testpmd     testpmd macswap (the reference DUT) too, first in every round, at each flow count;
#                 then each build's busy cycles per packet over testpmd's of the same round and
#                 flow count (lowest and median ratio): the cost relative to the reference, which a
#                 slow moment of the host moves far less than the cycles themselves
# The generator is the first binary (PKTGEN_BIN overrides it), the same in every run. Needs what
# scripts/bench.sh's memif part needs (root, hugepages). Exits 1 when a run fails or a returned
# frame had a wrong rewrite; the per-run lines and the summary go to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The data-plane bench's argument checks (dp_size_valid, dp_rate_valid): ab.sh refuses before any
# run what the bench would refuse in each.
# shellcheck source=scripts/bench/dataplane.sh
source scripts/bench/dataplane.sh

rounds=3 rules=nat flows="1000 1000000" secs=5 size=64 rate=0 flood=0 testpmd=0
bins=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --rules) rules=${2:?--rules needs a value}; shift 2 ;;
    --flows) flows=${2:?--flows needs a value}; shift 2 ;;
    --secs) secs=${2:?--secs needs a value}; shift 2 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --rate) rate=${2:?--rate needs a value}; shift 2 ;;
    --flood) flood=1; shift ;;
    --testpmd) testpmd=1; shift ;;
    -h | --help) awk 'NR > 1 { if (!/^#/) exit; print }' "$0"; exit 0 ;;
    -*) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ "${#bins[@]}" -lt $((2 - testpmd)) ]; then
  echo "ab.sh: give two or more vipmux binaries, or one with --testpmd (see --help)" >&2
  exit 2
fi
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 2 ]; then
  echo "ab.sh: --secs $secs: give 2 seconds or more (a point's window is its seconds less the first)" >&2
  exit 2
fi
if ! dp_size_valid "$size"; then
  echo "ab.sh: --size $size: give a frame size in bytes from 64 to 1518 (FCS included)" >&2
  exit 2
fi
if ! dp_rate_valid "$rate"; then
  echo "ab.sh: --rate $rate: give packets per second (0: as fast as the generator can)" >&2
  exit 2
fi
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "ab.sh: $b is not an executable" >&2; exit 2; }
done
gen=${PKTGEN_BIN:-${bins[0]}}

work=$(mktemp -d /tmp/vipmux-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
rows=$work/rows.csv
failed=0

# One bench run of binary number $1 (`t`: testpmd) in round $2; appends its rows (label first,
# round last) to $rows.
run_one() {
  local i=$1 r=$2 b label out why dut=vipmux kinds=$rules syn=$flood
  if [ "$i" = t ]; then
    b=${bins[0]} label=0:testpmd dut=testpmd kinds=nat syn=0
  else
    b=${bins[$i]} label="$((i + 1)):$(basename "${bins[$i]}")"
  fi
  out=$work/run.$r.$i
  if ! PKTGEN_BIN=$gen VIPMUX_BIN=$b DP_SYNFLOOD=$syn DP_OUTBOUND=0 DP_WORKERS2=0 DP_DUTS=$dut \
    DP_RULES=$kinds DP_FLOWS=$flows DP_SECS=$secs DP_SIZE=$size DP_RATE=$rate DP_REPEAT=1 \
    scripts/bench.sh --quick --no-criterion --peers "" --out "$out" >"$out.log" 2>&1; then
    # The data-plane bench's own words on the failed point, else the log's last lines.
    why=$(grep -E '^\[bench\] dataplane.*(failed|exited|did not|had not)' "$out.log" | tail -n 3 || true)
    echo "round $r $label: scripts/bench.sh failed: ${why:-$(tail -n 3 "$out.log")}"
    failed=1
    return
  fi
  if [ ! -s "$out/dataplane.csv" ]; then
    echo "round $r $label: no data-plane results: $(grep -E '^\[bench\] dataplane' "$out.log" | tail -n 3 || true)"
    failed=1
    return
  fi
  python3 - "$out/dataplane.csv" "$label" "$r" "$rows" <<'PY'
import csv, sys
path, label, rnd, rows = sys.argv[1:5]
with open(rows, "a") as sink:
    for x in csv.DictReader(open(path)):
        if x["mode"] not in ("established", "synflood", "synflood-established"):
            continue
        point = x["config"] if x["mode"] == "established" else x["mode"]
        fields = [label, point, x["flows"], x["busy_cycles_per_packet"],
                  x["busy_cycles_q1"], x["errors"] or "0", x["rx_mpps"], rnd]
        fpp = x.get("frames_per_busy_poll") or "-"
        print(f"round {rnd} {label} {point} {x['flows']} flows: busy {fields[3]} "
              f"(q1 {fields[4]}), rx {fields[6]} Mpps, {fpp} frames per busy poll, "
              f"errors {fields[5]}, {x.get('frame_bytes') or '-'}-byte frames", flush=True)
        sink.write(",".join(fields) + "\n")
PY
  # Why a run has no busy cycles, when the DUT's counters could not be read.
  grep -h 'gave no counters' "$out.log" | sed "s/^/round $r $label: /" || true
}

for r in $(seq 1 "$rounds"); do
  order=$(seq 0 $((${#bins[@]} - 1)))
  [ $((r % 2)) -eq 0 ] && order=$(echo "$order" | tac)
  [ "$testpmd" = 1 ] && run_one t "$r"
  for i in $order; do run_one "$i" "$r"; done
done

[ -s "$rows" ] || { echo "ab.sh: no run left a result"; exit 1; }
python3 - "$rows" <<'PY' || failed=1
import csv, statistics, sys
groups = {}
ref = {}  # (round, flows) -> testpmd's busy cycles
rows = list(csv.reader(open(sys.argv[1])))
for label, config, flows, busy, q1, errors, mpps, rnd in rows:
    if label.endswith(":testpmd") and busy not in ("", "-"):
        ref[(rnd, int(flows))] = float(busy)
for label, config, flows, busy, q1, errors, mpps, rnd in rows:
    g = groups.setdefault((config, int(flows), label),
                          {"busy": [], "q1": [], "mpps": [], "ratio": [], "errors": 0})
    if busy not in ("", "-"):
        g["busy"].append(float(busy))
        if (rnd, int(flows)) in ref and not label.endswith(":testpmd"):
            g["ratio"].append(float(busy) / ref[(rnd, int(flows))])
    if q1 not in ("", "-"):
        g["q1"].append(float(q1))
    if mpps not in ("", "-"):
        g["mpps"].append(float(mpps))
    g["errors"] += int(errors or 0)
print("\n| point | binary | runs | lowest busy | median busy | lowest q1 | highest rx Mpps | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
bad = False
for (config, flows, label), g in sorted(groups.items()):
    low = f"{min(g['busy']):.0f}" if g["busy"] else "-"
    med = f"{statistics.median(g['busy']):.0f}" if g["busy"] else "-"
    lq1 = f"{min(g['q1']):.0f}" if g["q1"] else "-"
    top = f"{max(g['mpps']):.2f}" if g["mpps"] else "-"
    print(f"| {config} {flows} | {label} | {len(g['busy'])} | {low} | {med} | {lq1} | {top} | {g['errors']} |")
    bad |= g["errors"] > 0 or not g["busy"]
if ref:
    print("\n| point | binary | rounds | lowest / testpmd | median / testpmd |")
    print("|---|---|---:|---:|---:|")
    for (config, flows, label), g in sorted(groups.items()):
        if g["ratio"]:
            print(f"| {config} {flows} | {label} | {len(g['ratio'])} | {min(g['ratio']):.2f} "
                  f"| {statistics.median(g['ratio']):.2f} |")
if bad:
    print("ab.sh: wrong rewrites or a point without busy cycles (see the table)")
    sys.exit(1)
PY
exit "$failed"
