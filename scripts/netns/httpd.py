#!/usr/bin/env python3
"""Backend HTTP server for the vipmux namespace topologies.

GET /        -> 200 "backend=<name> client=<ip>:<port> dst=<local ip> dport=<local port>\n"
GET /health  -> 200 "ok\n", or 503 "unhealthy\n" while the health file exists
GET /bytes/N -> 200 with a body of N bytes (N <= 64 MiB), for bulk transfers
Any other path answers like "/". The PID is written to --pidfile once the socket listens.
"""

import argparse
import os
import signal
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True, help="backend name reported in answers")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--health-file", default="", help="while this file exists /health answers 503")
    ap.add_argument("--pidfile", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        server_version = "vipmux-test-backend"
        sys_version = ""

        def _answer(self, with_body: bool) -> None:
            if self.path.split("?", 1)[0] == "/health":
                if args.health_file and os.path.exists(args.health_file):
                    status, body = 503, "unhealthy\n"
                else:
                    status, body = 200, "ok\n"
            elif self.path.startswith("/bytes/") and self.path[7:].isdigit():
                status, body = 200, "x" * min(int(self.path[7:]), 64 << 20)
            else:
                cip, cport = self.client_address[:2]
                lip, lport = self.connection.getsockname()[:2]
                status = 200
                body = f"backend={args.name} client={cip}:{cport} dst={lip} dport={lport}\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Backend", args.name)
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def log_message(self, fmt: str, *a) -> None:
            sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % a))

    class Server(ThreadingHTTPServer):
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
    tmp = args.pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, args.pidfile)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    socketserver.TCPServer.allow_reuse_address = True
    sys.exit(main())
