#!/usr/bin/env bash
# CPU used by one process (all its threads) over a window, from /proc/PID/stat utime+stime deltas.
#
# Usage: scripts/bench/cpu_pct.sh PID SECONDS
# Prints the CPU use in % of one core (a DPDK worker that busy-polls shows ~100 per polling core).
# Used for the idle-CPU measurement of vipmux: start it, let it sit without traffic, run this.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
pid=$1 secs=$2
case $pid in '' | *[!0-9]*) echo "cpu_pct: PID must be a number" >&2; exit 2 ;; esac
case $secs in '' | *[!0-9.]*) echo "cpu_pct: SECONDS must be a number" >&2; exit 2 ;; esac
[ -r "/proc/$pid/stat" ] || { echo "cpu_pct: no process $pid" >&2; exit 1; }
t0=$(bench_now)
a=$(bench_proc_ticks "$pid")
sleep "$secs"
b=$(bench_proc_ticks "$pid")
t1=$(bench_now)
[ -r "/proc/$pid/stat" ] || { echo "cpu_pct: process $pid exited during the window" >&2; exit 1; }
bench_ticks_pct "$a" "$b" "$(bench_elapsed "$t0" "$t1")"
