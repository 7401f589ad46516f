#!/usr/bin/env python3
"""TCP/UDP echo servers and clients for the vipmux namespace topologies.

Servers echo every byte back unchanged, except a message that is exactly "whoami" (optionally with a
trailing newline): that is answered with "backend=<name> client=<ip>:<port> dst=<local ip> dport=<port>\n".
The UDP server replies from the address the datagram was sent to (IP_PKTINFO), so it works when the
backend holds the VIP on its loopback (floating IP / DSR).

  echo.py tcp-server --name b1 --port 7000 --pidfile F
  echo.py udp-server --name b1 --port 7000 --pidfile F
  echo.py udp-client --to 10.1.0.100:7000 --data whoami [--timeout 2] [--count 1]
  echo.py tcp-client --to 10.1.0.100:7000 --data hello [--timeout 2]
Clients print each reply on its own line and exit 1 when a reply does not arrive in time.
"""

import argparse
import os
import signal
import socket
import socketserver
import struct
import sys

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
WHOAMI = (b"whoami", b"whoami\n")


def identity(name: str, peer, local) -> bytes:
    return f"backend={name} client={peer[0]}:{peer[1]} dst={local[0]} dport={local[1]}\n".encode()


def write_pidfile(path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, path)


def tcp_server(args) -> int:
    name = args.name

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn = self.request
            local = conn.getsockname()
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                if data in WHOAMI:
                    conn.sendall(identity(name, self.client_address, local))
                else:
                    conn.sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 256
        # An IPv6 bind ("::") serves IPv6 only, beside an IPv4 server on the same port.
        address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET

        def server_bind(self) -> None:
            if self.address_family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    srv = Server((args.bind, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write_pidfile(args.pidfile)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


def udp_server(args) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.bind((args.bind, args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write_pidfile(args.pidfile)
    port = sock.getsockname()[1]
    while True:
        data, anc, _flags, peer = sock.recvmsg(65536, socket.CMSG_SPACE(12))
        dst = None
        for level, ctype, cdata in anc:
            if level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(cdata) >= 12:
                _ifindex, _spec, addr = struct.unpack("=I4s4s", cdata[:12])
                dst = addr
        reply = identity(args.name, peer, (socket.inet_ntoa(dst) if dst else "?", port)) if data in WHOAMI else data
        if dst is not None:
            cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, dst, b"\0\0\0\0"))]
            sock.sendmsg([reply], cmsg, 0, peer)
        else:
            sock.sendto(reply, peer)


def parse_addr(s: str):
    """IP:PORT, or [IPv6]:PORT."""
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def family_of(s: str) -> int:
    return socket.AF_INET6 if ":" in parse_addr(s)[0] else socket.AF_INET


def udp_client(args) -> int:
    sock = socket.socket(family_of(args.to), socket.SOCK_DGRAM)
    sock.settimeout(args.timeout)
    if args.bind:
        sock.bind(parse_addr(args.bind))
    to = parse_addr(args.to)
    data = args.data.encode()
    for _ in range(args.count):
        sock.sendto(data, to)
        try:
            reply, _ = sock.recvfrom(65536)
        except socket.timeout:
            print(f"timeout waiting for a reply from {args.to}", file=sys.stderr)
            return 1
        sys.stdout.write(reply.decode(errors="replace").rstrip("\n") + "\n")
        sys.stdout.flush()
    return 0


def tcp_client(args) -> int:
    try:
        sock = socket.create_connection(parse_addr(args.to), timeout=args.timeout)
    except OSError as e:
        print(f"connect to {args.to}: {e}", file=sys.stderr)
        return 1
    data = args.data.encode()
    chunks = []
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    except OSError as e:
        print(f"tcp exchange with {args.to}: {e}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    sys.stdout.write(b"".join(chunks).decode(errors="replace").rstrip("\n") + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for srv in ("tcp-server", "udp-server"):
        p = sub.add_parser(srv)
        p.add_argument("--name", required=True)
        p.add_argument("--port", type=int, default=7000)
        p.add_argument("--bind", default="0.0.0.0")
        p.add_argument("--pidfile", required=True)
    for cli in ("udp-client", "tcp-client"):
        p = sub.add_parser(cli)
        p.add_argument("--to", required=True, help="IP:PORT")
        p.add_argument("--data", default="whoami")
        p.add_argument("--timeout", type=float, default=2.0)
        p.add_argument("--count", type=int, default=1)
        p.add_argument("--bind", default="", help="local IP:PORT (port 0 = any)")
    args = ap.parse_args()
    return {"tcp-server": tcp_server, "udp-server": udp_server, "udp-client": udp_client, "tcp-client": tcp_client}[
        args.cmd
    ](args)


if __name__ == "__main__":
    sys.exit(main())
