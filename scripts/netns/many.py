#!/usr/bin/env python3
"""Many long-lived TCP connections through a VIP from one process, for the scale-out tests.

  many.py --to 10.200.0.100:7000 --count 300 --sources 10.9.0.10,10.9.0.11,...

Opens COUNT connections (source addresses taken in turn), asks each echo server "whoami" and prints
"READY <n>" once every connection is open. Then, for every "check" line on stdin, sends "whoami" on
every connection (all at once, each with its own deadline) and prints one JSON line:
  {"open": n, "same": n, "moved": n, "broken": n, "max_stall_ms": x, "stalls_ms": [...]}
"same" answered from the backend it first reached; "moved" answered from another backend (the
connection is broken from the client's point of view too, but counted apart); "broken" gave no
answer within --timeout or failed. "quit" (or EOF) exits.
"""

import argparse
import json
import selectors
import socket
import sys
import time


def backend_of(reply: bytes) -> str:
    for part in reply.decode(errors="replace").split():
        if part.startswith("backend="):
            return part[len("backend="):]
    return "?"


def open_all(host, port, count, sources, timeout):
    conns = []
    for i in range(count):
        src = sources[i % len(sources)] if sources else None
        s = socket.create_connection((host, port), timeout=timeout,
                                     source_address=(src, 0) if src else None)
        s.sendall(b"whoami\n")
        reply = b""
        while b"\n" not in reply:
            d = s.recv(4096)
            if not d:
                raise OSError("closed during whoami")
            reply += d
        conns.append({"sock": s, "backend": backend_of(reply), "alive": True})
    return conns


def check(conns, timeout):
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    pending = {}
    for c in conns:
        if not c["alive"]:
            continue
        try:
            c["sock"].setblocking(False)
            c["sock"].sendall(b"whoami\n")
            c["buf"] = b""
            pending[c["sock"].fileno()] = c
            sel.register(c["sock"], selectors.EVENT_READ, c)
        except OSError:
            c["alive"] = False
    same = moved = 0
    stalls = []
    while pending and time.monotonic() - start < timeout:
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                d = c["sock"].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                c["alive"] = False
                sel.unregister(c["sock"])
                del pending[c["sock"].fileno()]
                continue
            c["buf"] += d
            if b"\n" in c["buf"]:
                stalls.append(round((time.monotonic() - start) * 1000, 1))
                if backend_of(c["buf"]) == c["backend"]:
                    same += 1
                else:
                    moved += 1
                sel.unregister(c["sock"])
                del pending[c["sock"].fileno()]
    for c in pending.values():
        c["alive"] = False
    sel.close()
    broken = sum(1 for c in conns if not c["alive"])
    return {"open": len(conns), "same": same, "moved": moved, "broken": broken,
            "max_stall_ms": max(stalls) if stalls else 0.0, "stalls_ms": stalls}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--sources", default="")
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    host, port = a.to.rsplit(":", 1)
    sources = [s for s in a.sources.split(",") if s]
    try:
        conns = open_all(host, int(port), a.count, sources, a.timeout)
    except OSError as e:
        print(f"ERR open: {e}", flush=True)
        return 1
    print(f"READY {len(conns)}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            print(json.dumps(check(conns, a.timeout)), flush=True)
        elif cmd == "quit":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
