#!/usr/bin/env python3
"""Plots of the benchmark CSVs (needs matplotlib: Debian python3-matplotlib, i.e. /usr/bin/python3).

Usage: plot.py OUT_DIR
  OUT_DIR/e2e.csv       -> OUT_DIR/e2e.png        requests/s per peer (keep-alive, and connections/s without)
  OUT_DIR/dataplane.csv -> OUT_DIR/dataplane.png  Mpps vs number of flows, one line per `config`
                           (columns: date, machine, config, flows, mpps; rows with mode=synflood or
                           synflood-established become a note with the new-flow rate (and the established
                           loss); other columns are ignored)
A missing or empty input is skipped with a note.
"""

import csv
import os
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_csv(path):
    """Rows as dicts, or None when the file is missing or has no data row."""
    if not os.path.exists(path):
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows or None


def plot_e2e(rows, out):
    """Grouped bars: req/s with keep-alive and conn/s without, per peer."""
    vals = OrderedDict()
    for r in rows:
        vals.setdefault(r["peer"], {})[r["metric"]] = float(r["value"])
    peers = [p for p, m in vals.items() if "rps_keepalive" in m or "cps_close" in m]
    if not peers:
        print("plot: e2e.csv has no throughput rows; skipped", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    xs = range(len(peers))
    ka = [vals[p].get("rps_keepalive", 0) for p in peers]
    cl = [vals[p].get("cps_close", 0) for p in peers]
    b1 = ax.bar([x - width / 2 for x in xs], ka, width, label="requests/s, keep-alive")
    b2 = ax.bar([x + width / 2 for x in xs], cl, width, label="connections/s (no keep-alive)")
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(peers)
    ax.set_ylabel("per second")
    ax.set_title(f"End to end through the MUX ({rows[0]['date']})")
    ax.legend()
    fig.text(0.01, 0.01, rows[0]["machine"], fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"plot: {out}", file=sys.stderr)


def plot_dataplane(rows, out):
    """Mpps vs flows, one line per config; SYN-flood rows (mode synflood) are a note, not a line."""
    series = OrderedDict()
    notes = []
    for r in rows:
        if r.get("mode") == "synflood":
            notes.append(f"{r.get('config')}: {float(r['mpps']):.2f} M new flows/s")
            continue
        if r.get("mode") == "synflood-established":
            if r.get("syn_rx_mpps"):
                notes.append(f"{r.get('config')}: {float(r['syn_rx_mpps']):.2f} M new flows/s, established "
                             f"loss {float(r.get('est_loss_percent') or 0):.3f} %")
            continue
        name = r.get("config") or "vipmux"
        if r.get("mode") in ("syn", "mix"):
            name += f" ({r['mode']})"
        series.setdefault(name, []).append((float(r["flows"]), float(r["mpps"])))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    # More series than the colour cycle has colours: each pass through it changes line and marker.
    styles = [("-", "o"), ("--", "s"), (":", "^")]
    colours = max(1, len(plt.rcParams["axes.prop_cycle"].by_key().get("color", [])))
    for i, (name, pts) in enumerate(series.items()):
        pts.sort()
        line, marker = styles[(i // colours) % len(styles)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle=line, marker=marker, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("flows")
    ax.set_ylabel("Mpps (received back by the generator)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Data plane throughput vs flows ({rows[0].get('date', '')})")
    ax.grid(True, alpha=0.3)
    if series:
        # Beside the axes, not over the lines or the notes.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    # The notes go under the axes (over them they would hide the lowest points).
    bottom = 0.03 + 0.035 * len(notes)
    if notes:
        fig.text(0.01, 0.035, "\n".join(notes), fontsize=8)
    fig.text(0.01, 0.01, rows[0].get("machine", ""), fontsize=6)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"plot: {out}", file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    for name, fn in (("e2e", plot_e2e), ("dataplane", plot_dataplane)):
        rows = read_csv(os.path.join(d, f"{name}.csv"))
        if rows is None:
            print(f"plot: no {name}.csv data; skipped", file=sys.stderr)
            continue
        fn(rows, os.path.join(d, f"{name}.png"))


if __name__ == "__main__":
    main()
