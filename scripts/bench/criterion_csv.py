#!/usr/bin/env python3
"""Criterion results -> criterion.csv (stdlib only).

Walks CRITERION_DIR (target/criterion) for */new/estimates.json and writes one row per benchmark:
date, machine, bench, ns_per_iter_median, packets_per_iter, ns_per_packet, mpps.

Naming convention: a bench id containing `burstN` (e.g. `burst32`, as in `lookup_hit_burst32/plain/1000`)
means N packets per iteration, so ns/packet = median / N and Mpps = 1000 / (ns/packet). Any other bench
leaves the packet columns empty (criterion's Throughput::Elements is not taken as packets: it often counts
table entries or buckets).
"""

import argparse
import csv
import json
import os
import re
import sys

BURST = re.compile(r"burst(\d+)")


def packets_per_iter(bench_id):
    """Packets per iteration from the id (`burstN`), or None."""
    m = BURST.search(bench_id)
    if m and int(m.group(1)) > 0:
        return int(m.group(1))
    return None


def collect(root, since):
    """(bench id, median ns/iter, packets/iter) for every estimates.json modified at or after `since`."""
    rows = []
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        est_path = os.path.join(dirpath, "estimates.json")
        if os.path.getmtime(est_path) < since:
            continue
        with open(est_path, encoding="utf-8") as f:
            est = json.load(f)
        meta = {}
        meta_path = os.path.join(dirpath, "benchmark.json")
        if os.path.exists(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        bench_id = meta.get("full_id") or os.path.relpath(os.path.dirname(dirpath), root)
        median = float(est["median"]["point_estimate"])
        rows.append((bench_id, median, packets_per_iter(bench_id)))
    rows.sort()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--criterion-dir", required=True)
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--date", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--since", type=float, default=0.0, help="ignore results older than this epoch time")
    args = ap.parse_args()
    rows = collect(args.criterion_dir, args.since) if os.path.isdir(args.criterion_dir) else []
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "machine", "bench", "ns_per_iter_median", "packets_per_iter", "ns_per_packet", "mpps"])
        for bench_id, median, pkts in rows:
            if pkts:
                ns_pkt = median / pkts
                w.writerow([args.date, args.machine, bench_id, f"{median:.2f}", pkts, f"{ns_pkt:.3f}",
                            f"{1000.0 / ns_pkt:.3f}" if ns_pkt > 0 else ""])
            else:
                w.writerow([args.date, args.machine, bench_id, f"{median:.2f}", "", "", ""])
    print(f"criterion: {len(rows)} result(s) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
