#!/usr/bin/env python3
"""Instructions per frame of one polling thread from callgrind dumps, split by shared object
(memif PMD, mempool, mbuf, ethdev, libc, the application) and by function (self cost).

    callgrind_groups.py --frames N [--idle DUMP... --idle-frames M] DUMP...

With several dumps (callgrind --separate-threads) the thread that calls into the memif PMD most
is taken. Works on stripped objects: a function without a symbol is named by its address, its
object still known. With --idle (dumps of a window where nearly every poll is empty) the cost of
an empty poll, per function, is taken off the window's (polls - busy polls) empty polls: polls
are the calls of the memif entry called most (rx), busy polls those of the application's other
memif entry (tx; the DUT sends only after a non-empty receive, as testpmd does). The trickle's
few frames are counted as empty polls (a small overestimate of an empty poll's cost). Used by
testpmd_ir.sh (and for vipmux's worker dumps, worker_ir.sh KEEP=1, without --idle).
"""
import argparse
import re
from collections import Counter

GROUPS = [
    ("memif PMD (rx + tx, copies)", r"librte_net_memif"),
    ("mempool / ring", r"librte_mempool|librte_ring"),
    ("mbuf", r"librte_mbuf"),
    ("ethdev", r"librte_ethdev"),
    ("libc (memcpy, ...)", r"libc\.so|ld-linux"),
]
REF = re.compile(r"(ob|cob|fn|cfn)=\((\d+)\)(?: (.*))?")


def parse(path):
    """Self cost per (object, function), and calls and inclusive call cost per callee."""
    names = {"ob": {}, "fn": {}}
    self_cost, calls, incl, from_app = Counter(), Counter(), Counter(), Counter()
    ob = fn = cfn = cob = None
    after_calls = False
    for line in open(path, errors="replace"):
        if after_calls:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                incl[(cob, cfn)] += int(parts[1])
            after_calls = False
            continue
        m = REF.match(line)
        if m:
            kind, ident, name = m.groups()
            table = names["ob" if kind in ("ob", "cob") else "fn"]
            if name:
                table[ident] = name.strip()
            value = table.get(ident, ident)
            if kind == "ob":
                ob = cob = value
            elif kind == "cob":
                cob = value
            elif kind == "fn":
                fn, cob = value, ob
            else:
                cfn = value
            continue
        if line.startswith("calls="):
            n = int(line.split()[0][6:])
            calls[(cob, cfn)] += n
            if "librte_net_memif" not in (ob or ""):
                from_app[(cob, cfn)] += n
            after_calls = True
            continue
        parts = line.split()
        if len(parts) >= 2 and re.match(r"^[+\-*]?\d*$", parts[0]) and parts[1].isdigit():
            self_cost[(ob, fn)] += int(parts[1])
    return self_cost, calls, incl, from_app


def busiest(dumps):
    """The parsed dump (self, calls, inclusive, calls from the application) of the polling
    thread: the one calling into the memif PMD most."""
    best = None
    for d in dumps:
        parsed = parse(d)
        memif = sum(n for (o, _), n in parsed[1].items() if "librte_net_memif" in (o or ""))
        if best is None or memif > best[0]:
            best = (memif, d, parsed)
    return best[1], best[2]


def entries(from_app):
    """The memif entries the application calls: (rx, tx) by call count, rx called most."""
    e = [k for k, n in from_app.most_common() if "librte_net_memif" in (k[0] or "") and n > 0]
    return (e + [None, None])[:2]


def group_of(obj):
    for label, pat in GROUPS:
        if re.search(pat, obj or ""):
            return label
    return "application (" + (obj or "?").rsplit("/", 1)[-1] + ")"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=float, required=True)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--idle", nargs="+", default=[])
    ap.add_argument("--idle-frames", type=float, default=0)
    ap.add_argument("dumps", nargs="+")
    a = ap.parse_args()
    dump, (self_cost, calls, incl, from_app) = busiest(a.dumps)
    rx, tx = entries(from_app)
    polls, busy = calls[rx], calls[tx] if tx else 0
    empty = Counter()
    empty_incl = Counter()
    if a.idle:
        _, (i_self, i_calls, i_incl, _) = busiest(a.idle)
        i_polls = max(i_calls[rx], 1)
        n_empty = max(polls - busy, 0)
        for k, n in i_self.items():
            empty[k] = n / i_polls * n_empty
        for k, n in i_incl.items():
            empty_incl[k] = n / i_polls * n_empty
        print(f"idle window: {i_polls} polls, {sum(i_self.values()) / i_polls:.1f} Ir each "
              f"({a.idle_frames:.0f} frames in it, counted as empty polls)")
    f = a.frames
    total = sum(self_cost.values())
    busy_total = total - sum(empty.values())
    print(f"thread dump {dump.rsplit('/', 1)[-1]}: {f:.0f} frames, {polls} polls, {busy} busy "
          f"({f / max(busy, 1):.1f} frames each)")
    print(f"  {total / f:.1f} Ir/frame with the empty polls, {busy_total / f:.1f} without")
    groups, groups_busy = Counter(), Counter()
    for k, n in self_cost.items():
        groups[group_of(k[0])] += n
        groups_busy[group_of(k[0])] += n - empty[k]
    print("self cost by group (Ir/frame: with empty polls, without):")
    for g, n in groups.most_common():
        print(f"  {n / f:8.1f} {groups_busy[g] / f:8.1f}  {g}")
    print("memif PMD functions (calls; inclusive Ir/frame: with empty polls, without):")
    for k, n in calls.most_common():
        if "librte_net_memif" in (k[0] or "") and n > 0:
            role = {rx: " (rx)", tx: " (tx)"}.get(k, "")
            print(f"  {(k[1] + role)[:40]:40} calls={n:<10} {incl[k] / f:8.1f} "
                  f"{(incl[k] - empty_incl[k]) / f:8.1f}")
    print("self cost by function (Ir/frame: with empty polls, without):")
    for k, n in self_cost.most_common(a.top):
        print(f"  {n / f:8.1f} {(n - empty[k]) / f:8.1f}  {k[1][:70]}  "
              f"[{(k[0] or '?').rsplit('/', 1)[-1]}]")


if __name__ == "__main__":
    main()
