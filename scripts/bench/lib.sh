# shellcheck shell=bash
# Measurement helpers of the vipmux benchmark harness (sourced by scripts/bench.sh and cpu_pct.sh).
#
# CPU accounting, all from procfs:
#   bench_proc_ticks PID...   utime+stime clock ticks of the processes (all their threads), summed
#   bench_stat_snapshot       "busy softirq total" ticks of the whole machine (first line of /proc/stat)
#   bench_stat_pct A B        "busy% softirq%" between two snapshots, in % of all cores of the machine
#   bench_ticks_pct T0 T1 S   ticks over S seconds as % of one core

BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# bench_proc_ticks PID... — utime + stime (fields 14 and 15 of /proc/PID/stat; the thread-group leader's
# line covers every thread). A PID that is gone contributes 0.
bench_proc_ticks() {
  local pid sum=0 line rest
  for pid in "$@"; do
    line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # The command name (field 2) may contain spaces: cut after its closing parenthesis.
    rest=${line##*) }
    # rest starts at field 3 (state): utime is its 12th word, stime the 13th.
    # shellcheck disable=SC2086
    set -- $rest
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}

# bench_stat_snapshot — "busy softirq total" ticks summed over all CPUs. busy = total - idle - iowait;
# total = user+nice+system+idle+iowait+irq+softirq+steal (guest time is already inside user).
bench_stat_snapshot() {
  awk '$1 == "cpu" { t = $2+$3+$4+$5+$6+$7+$8+$9; print t - $5 - $6, $8, t; exit }' /proc/stat
}

# bench_stat_pct "B0 S0 T0" "B1 S1 T1" — "busy% softirq%" of the whole machine between two snapshots.
bench_stat_pct() {
  # shellcheck disable=SC2086
  awk -v a="$1" -v b="$2" 'BEGIN {
    split(a, x, " "); split(b, y, " "); dt = y[3] - x[3];
    if (dt <= 0) { print "0.0 0.0"; exit }
    printf "%.1f %.1f\n", 100 * (y[1] - x[1]) / dt, 100 * (y[2] - x[2]) / dt }'
}

# bench_ticks_pct T0 T1 SECONDS — CPU time between two tick counts as % of one core.
bench_ticks_pct() {
  awk -v a="$1" -v b="$2" -v s="$3" -v hz="$BENCH_CLK_TCK" \
    'BEGIN { if (s <= 0) { print "0.0"; exit } printf "%.1f\n", 100 * (b - a) / hz / s }'
}

# bench_now — seconds since the epoch with nanoseconds (for elapsed-time division).
bench_now() { date +%s.%N; }

# bench_elapsed T0 T1 — seconds between two bench_now values.
bench_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# bench_machine — one-line machine description without commas: nproc, CPU model, kernel, hugepages.
bench_machine() {
  local model hp
  model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  [ -n "$model" ] || model=$(uname -m)
  hp=$(awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo 2>/dev/null)
  if [ "${hp:-0}" -gt 0 ]; then hp="${hp}x$(awk '/^Hugepagesize:/ { print $2 $3 }' /proc/meminfo)"; else hp=none; fi
  printf 'nproc=%s; cpu=%s; kernel=%s; hugepages=%s\n' "$(nproc)" "$model" "$(uname -r)" "$hp" | tr ',' ' ' | tr -s ' '
}
