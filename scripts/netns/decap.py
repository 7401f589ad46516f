#!/usr/bin/env python3
"""A decapsulating receiver for a backend namespace: IPv4-in-IPv4 or GUE, over IPv4 or IPv6, in user space.

For kernels without an ipip or fou device. Each tunnelled packet loses its outer headers and the
inner IPv4 packet is written into a TUN device, where the namespace's own stack receives it as if it
had arrived on that interface (its destination is the VIP the backend holds on `lo`); the backend
then answers the client directly by its routes.

  decap.py ipip [--dev decap0] [--ipv6]
  decap.py gue [--port 6080] [--dev decap0] [--ipv6]

- ipip: a raw socket for IP protocol 4 receives each whole outer packet; the outer IPv4 header
  (its IHL) is stripped.
- gue: a UDP socket bound to the port receives the UDP payload; the GUE header (version 0, control
  bit clear, protocol 4 = IPv4, `hlen` words of extension fields) is stripped.
- --ipv6: the outer header is IPv6 (IPv6-in-IPv6: a raw IPv6 socket for next header 41, which
  receives the payload after the outer header; GUE: a UDP socket on `::`), and the inner packet
  IPv6 (GUE protocol 41).

Creates the TUN device (gone when the process exits), sets it up and turns reverse-path filtering
off on it and on `all` (the client's route goes out another interface). Prints `ready <mode> <dev>`
once it receives, and on SIGTERM `decapsulated=<n> rejected=<m>` before exiting. Needs root.
"""

import argparse
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True)
    return fd


def sysctl(path: str, value: str) -> None:
    with open(os.path.join("/proc/sys/net/ipv4/conf", path), "w") as f:
        f.write(value)


def inner_ipv6(data: bytes):
    """The inner IPv6 packet at the front of `data` trimmed to its length, or None."""
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    total = 40 + struct.unpack_from("!H", data, 4)[0]
    return data[:total] if total <= len(data) else None


def strip_gue6(payload: bytes):
    if len(payload) < 4:
        return None
    version, control, hlen = payload[0] >> 6, (payload[0] >> 5) & 1, payload[0] & 0x1F
    if version != 0 or control or payload[1] != IPPROTO_IPV6:
        return None
    return inner_ipv6(payload[4 + hlen * 4 :])


def inner_ipv4(data: bytes):
    """The inner IPv4 packet at the front of `data` trimmed to its total length, or None."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    total = struct.unpack_from("!H", data, 2)[0]
    if total < (data[0] & 0x0F) * 4 or total > len(data):
        return None
    return data[:total]


def strip_ipip(packet: bytes):
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != IPPROTO_IPIP:
        return None
    return inner_ipv4(packet[(packet[0] & 0x0F) * 4 :])


def strip_gue(payload: bytes):
    if len(payload) < 4:
        return None
    version, control, hlen = payload[0] >> 6, (payload[0] >> 5) & 1, payload[0] & 0x1F
    if version != 0 or control or payload[1] != IPPROTO_IPIP:
        return None
    return inner_ipv4(payload[4 + hlen * 4 :])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["ipip", "gue"])
    ap.add_argument("--port", type=int, default=6080, help="GUE UDP port")
    ap.add_argument("--dev", default="decap0", help="TUN device name")
    ap.add_argument("--ipv6", action="store_true", help="IPv6 outer and inner packets")
    args = ap.parse_args()

    counts = {"decapsulated": 0, "rejected": 0}

    def on_term(_sig, _frame):
        print(f"decapsulated={counts['decapsulated']} rejected={counts['rejected']}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    tun = open_tun(args.dev)
    sysctl("all/rp_filter", "0")
    sysctl(f"{args.dev}/rp_filter", "0")
    if args.ipv6 and args.mode == "ipip":
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6)
        strip = inner_ipv6
    elif args.ipv6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::", args.port))
        strip = strip_gue6
    elif args.mode == "ipip":
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
        strip = strip_ipip
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", args.port))
        strip = strip_gue
    print(f"ready {args.mode} {args.dev}", flush=True)
    while True:
        inner = strip(sock.recv(65535))
        if inner is None:
            counts["rejected"] += 1
            continue
        os.write(tun, inner)
        counts["decapsulated"] += 1


if __name__ == "__main__":
    sys.exit(main())
