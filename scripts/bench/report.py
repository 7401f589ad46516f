#!/usr/bin/env python3
"""Markdown table fragment for the README from the benchmark CSVs (stdlib only).

Usage: report.py OUT_DIR  -> writes OUT_DIR/README-table.md from OUT_DIR/e2e.csv, criterion.csv and
dataplane.csv (each optional; a missing or empty one is left out).
"""

import csv
import os
import sys

PEER_NOTES = {
    "kernel": "nftables DNAT + conntrack in the mux namespace (kube-proxy style); backends see the client address",
    "haproxy": "HAProxy TCP mode (1 thread), VIP on the mux namespace; backends see the HAProxy address 10.1.0.2",
    "vipmux": "vipmux (DPDK, net_af_packet on the veth, adaptive polling); backends see the client address. "
    "Bounded by af_packet (~0.7 Mpps) and the nginx backends, not by its data path (see the memif table)",
}


def read_csv(path):
    """Rows of a CSV file as dicts, or [] when it is missing."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def fmt(v, digits=0):
    """A number for the table; '-' when absent."""
    if v is None or v == "":
        return "-"
    x = float(v)
    return f"{x:,.{digits}f}"


def e2e_table(rows):
    """The end-to-end peer comparison."""
    peers = []
    by = {}
    for r in rows:
        if r["peer"] not in by:
            peers.append(r["peer"])
            by[r["peer"]] = {}
        by[r["peer"]][r["metric"]] = r["value"]
    out = [
        "| peer | req/s keep-alive | p99 ms | conn/s (no keep-alive) | p99 ms | mux CPU % of 1 core "
        "(keep-alive / close) | machine CPU % (keep-alive / close) | softirq % of machine | idle mux CPU % "
        "(busy-poll) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in peers:
        m = by[p]
        if m.get("available") == "0":
            out.append(f"| {p} | not available yet | | | | | | | |")
            continue
        mux = "-" if "mux_cpu_keepalive" not in m else f"{fmt(m['mux_cpu_keepalive'])} / {fmt(m.get('mux_cpu_close'))}"
        mach = f"{fmt(m.get('machine_cpu_keepalive'))} / {fmt(m.get('machine_cpu_close'))}"
        sirq = f"{fmt(m.get('softirq_keepalive'))} / {fmt(m.get('softirq_close'))}"
        idle = fmt(m.get("idle_mux_cpu"), 1)
        if "idle_mux_cpu_busy_poll" in m:
            idle += f" ({fmt(m['idle_mux_cpu_busy_poll'], 1)})"
        out.append(
            f"| {p} | {fmt(m.get('rps_keepalive'))} | {fmt(m.get('p99_keepalive'), 2)} | {fmt(m.get('cps_close'))} "
            f"| {fmt(m.get('p99_close'), 2)} | {mux} | {mach} | {sirq} | {idle} |"
        )
    notes = [f"- **{p}**: {PEER_NOTES.get(p, '')}" for p in peers if p in PEER_NOTES]
    return out + [""] + notes


def criterion_table(rows):
    """Micro-benchmarks (criterion medians)."""
    out = ["| bench | ns/iter (median) | ns/packet | Mpps |", "|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| `{r['bench']}` | {fmt(r['ns_per_iter_median'], 1)} | {fmt(r['ns_per_packet'], 2)} "
                   f"| {fmt(r['mpps'], 2)} |")
    return out


def workers_lines(rows):
    """One line on the two-worker points: busy cycles per packet per worker with the software hand-off
    and with flows steered to their owner, and the extra cycles of a handed-off packet derived from
    the two (difference of the busy cycles per packet over the share of frames handed over)."""
    by = {r.get("config"): r for r in rows}
    h, st = by.get("vipmux-nat-2w-handoff"), by.get("vipmux-nat-2w-steered")
    if not h or not st:
        return []
    line = (f"Two workers, {fmt(h['flows'])} flows: busy cycles/packet per worker "
            f"{h.get('busy_cycles_per_worker') or '-'} with {h.get('handoff_percent') or '-'} % of the frames "
            f"handed over, {st.get('busy_cycles_per_worker') or '-'} with every flow steered to its owner")
    try:
        share = float(h["handoff_percent"]) / 100
        extra = float(h["busy_cycles_per_packet"]) - float(st["busy_cycles_per_packet"])
        if share > 0 and extra > 0:
            line += f"; a handed-off packet costs about {extra / share:.0f} cycles more"
        elif share > 0:
            # A worker sharing the generator's core (a two-core machine) measures its scheduling,
            # not the hand-off: no cost is derived from a steered run that was not the cheaper one.
            line += ("; the steered run was not the cheaper one, so these runs give no hand-off cost "
                     "(`handoff.txt` has it measured without a generator)")
    except (KeyError, TypeError, ValueError):
        pass
    return ["", line + "."]


def ipv6_lines(rows):
    """One line per flow count with both NAT rows: IPv6 NAT's busy cycles per packet against IPv4's
    (the goal: at most 1.25 times)."""
    out = []
    for r6 in rows:
        if r6.get("config") != "vipmux-nat6" or r6.get("mode") != "established":
            continue
        r4 = next((r for r in rows if r.get("config") == "vipmux-nat" and r.get("mode") == "established"
                   and r.get("flows") == r6.get("flows")), None)
        try:
            c6, c4 = float(r6["busy_cycles_per_packet"]), float(r4["busy_cycles_per_packet"])
        except (KeyError, TypeError, ValueError):
            continue
        if c4 > 0:
            line = (f"IPv6 NAT, {fmt(r6['flows'])} flows: {c6:.0f} busy cycles/packet against IPv4's {c4:.0f} "
                    f"({c6 / c4:.2f} times; goal at most 1.25), {fmt(r6['mpps'], 2)} Mpps of 78-byte frames")
            try:
                q6, q4 = float(r6["busy_cycles_q1"]), float(r4["busy_cycles_q1"])
                line += (f"; lower quartile of the quarter-second windows {q6:.0f} against {q4:.0f} "
                         f"({q6 / q4:.2f} times)")
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                pass
            out.append(line + ".")
    return [""] + out if out else []


def dataplane_table(rows):
    """Data-plane throughput by number of flows (extra columns of bench.sh's memif runs when present),
    then vipmux / testpmd ratios at equal flow counts, each named by its configuration."""
    out = [
        "| config | mode | flows | rx Mpps | tx Mpps | loss % | errors | on-CPU ns/packet (DUT) | on-CPU cycles/packet "
        "| busy cycles/packet (DUT's own count) | runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.get('config', '')} | {r.get('mode') or '-'} | {fmt(r['flows'])} | {fmt(r['mpps'], 2)} "
            f"| {fmt(r.get('tx_mpps'), 2)} | {fmt(r.get('loss_percent'), 1)} | {fmt(r.get('errors'))} "
            f"| {fmt(r.get('ns_per_packet'), 0)} | {fmt(r.get('cycles_per_packet'))} "
            f"| {fmt(r.get('busy_cycles_per_packet'))} | {r.get('runs') or '-'} |"
        )
    ref = {r["flows"]: float(r["mpps"]) for r in rows if r.get("dut") == "testpmd" and r.get("mpps")}
    ratios = []
    for r in rows:
        # Outbound rows carry SNAT both ways, not the inbound path testpmd's echo compares with.
        if (r.get("dut") == "vipmux" and r.get("mode") == "established" and ref.get(r["flows"])
                and r.get("config") not in ("vipmux-outbound", "vipmux-nat6")):
            ratios.append(f"{r['config']} at {fmt(r['flows'])} flows {float(r['mpps']) / ref[r['flows']]:.2f}")
    if ratios:
        out += ["", "vipmux / testpmd macswap (rx Mpps): " + ", ".join(ratios) + "."]
    out += workers_lines(rows)
    out += ipv6_lines(rows)
    modes = sorted({r.get("memif") for r in rows if r.get("memif")})
    if modes:
        out += ["", "memif mode of every device under test (the memif client): " + ", ".join(modes)
                + " (zero-copy: the client's mbufs are the ring buffers and only the generator copies)."]
    out += ["", "memif has back-pressure: the generator's tx burst takes only what fits in the ring, so a DUT that "
            "cannot keep up shows as a lower tx rate, not as loss; the rates are the DUT's (testpmd: the setup's) "
            "limit under the CPU share it got (`dut_cpu_share`, the DUT process's on-CPU time over the window; "
            "vipmux's includes its control and slow-path threads on core 0). On a shared machine compare "
            "ns/packet, the on-CPU cost, rather than Mpps. A polling core is on-CPU all the time, so on-CPU "
            "cycles/packet also count its empty polls when the generator, not the DUT, is the limit; busy "
            "cycles/packet are the DUT's own count of the time spent in iterations that found frames (vipmux: "
            "its worker runtime; testpmd: --record-core-cycles; OVS: pmd-stats-show processing cycles), i.e. "
            "the cost of a packet whatever the headroom."]
    syn = [r for r in rows if r.get("mode") == "synflood"]
    for r in syn:
        out += ["", f"SYN flood (every frame a new flow from a random source): vipmux forwarded "
                f"{fmt(float(r['mpps']) * 1e6)} new flows/s ({fmt(r.get('loss_percent'), 1)} % of the SYNs sent lost)."]
    for r in rows:
        if r.get("mode") == "synflood-established":
            out += ["", flood_established_line(r)]
    return out


def flood_established_line(r):
    """The SYN flood with established traffic: new flows/s beside the established flows' loss, and the
    loss of the same established traffic without the flood when it was measured."""
    if not r.get("syn_rx_mpps"):
        return "SYN flood with established flows: no flood split in the row."
    line = (f"SYN flood {float(r['syn_rx_mpps']):.2f} M new flows/s while established flows lose "
            f"{fmt(r.get('est_loss_percent'), 3)} % ({fmt(r.get('est_share_percent'))} % of the frames were data "
            f"segments of the {fmt(r['flows'])} established flows: {fmt(r.get('est_rx_mpps'), 2)} Mpps received "
            f"back, {fmt(r.get('est_errors'))} rewrite errors)")
    if r.get("est_only_loss_percent"):
        line += (f"; the same established traffic alone at the same rate loses "
                 f"{fmt(r['est_only_loss_percent'], 3)} %")
    return line + "."


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    e2e = read_csv(os.path.join(d, "e2e.csv"))
    crit = read_csv(os.path.join(d, "criterion.csv"))
    dp = read_csv(os.path.join(d, "dataplane.csv"))
    first = (e2e or crit or dp or [{}])[0]
    lines = [
        "<!-- generated by scripts/bench.sh; paste into README -->",
        f"Measured {first.get('date', '?')} on `{first.get('machine', '?')}`.",
        "",
    ]
    if e2e:
        lines += ["End to end (one-arm namespaces, wrk from the client namespace, nginx backends, short GET):", ""]
        lines += e2e_table(e2e) + [""]
        lines += [
            "Machine CPU and softirq are /proc/stat deltas of the whole machine during the run (they include wrk "
            "and nginx); for the kernel peer the MUX work is softirq time, so that is its CPU figure.",
            "",
        ]
        loads = [f"{r['peer']} {r['value']}" for r in e2e if r["metric"] == "loadavg1_before"]
        if loads:
            lines += [f"1-minute load average before each peer's run: {', '.join(loads)}.", ""]
    if crit:
        lines += ["Micro-benchmarks (criterion; a bench id with `burstN` counts N packets per iteration):", ""]
        lines += criterion_table(crit) + [""]
    if dp:
        lines += [
            "Data plane (`dataplane.csv`): `vipmux pktgen` (memif server, core 0) against the DUT (memif client, "
            "core 1), 64-byte frames, median of the runs; ns/packet is the DUT's on-CPU time over the packets it "
            "forwarded, cycles/packet that times the nominal clock (no hardware counters in this VM):",
            "",
        ] + dataplane_table(dp) + [""]
    path = os.path.join(d, "README-table.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
