"""The demo's servers: a small shop's HTTP API (some paths answer 500) and an authoritative DNS
responder (A, AAAA, CNAME, NXDOMAIN, REFUSED) over UDP and TCP.

Run inside a network namespace by `runtime.demo.livenet`:
`python3 -m runtime.demo.servers --addr 10.213.0.1 --http-port 80 --http-port 8080 --dns-port 53`
(with `--protocols` also HTTP/2, gRPC, TLS and Redis: `runtime.demo.protocol_servers`) prints
`ready` on stdout once every socket listens, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import socketserver
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ZONE = dns.name.from_text("demo.internal.")
TTL = 30
Records = dict[tuple[str, str], list[str]]  # (owner name, type) -> rdata texts
WORDS = [
    "order", "cart", "item", "price", "stock", "shipping", "invoice", "customer", "payment", "refund",
    "coupon", "basket", "label", "parcel", "tracking", "warehouse", "region", "currency", "total",
]


class HttpAnswer:
    """What the shop answers to one request."""

    def __init__(self, status: int, content_type: str, body: bytes, chunked: bool = False) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.chunked = chunked


def _json(status: int, obj: object, chunked: bool = False) -> HttpAnswer:
    return HttpAnswer(status, "application/json", json.dumps(obj).encode(), chunked)


def _static_body(name: str) -> bytes:
    """A deterministic text asset of 2-8 KB for `name` (compresses like real CSS/JS does)."""
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    size = rng.randint(2048, 8192)
    out: list[str] = []
    length = 0
    while length < size:
        line = f".{rng.choice(WORDS)}-{rng.choice(WORDS)} {{ margin: {rng.randint(0, 32)}px; }}\n"
        out.append(line)
        length += len(line)
    return "".join(out).encode()[:size]


def route(method: str, path: str, body: bytes) -> HttpAnswer:
    """The shop's behaviour, a pure function of the request (so clients know what to expect)."""
    bare = path.split("?", 1)[0]
    parts = [p for p in bare.split("/") if p]
    if bare == "/health":
        return HttpAnswer(200, "text/plain", b"ok\n")
    if bare == "/api/checkout" and method == "POST":
        return _json(500, {"error": "payment backend unavailable", "request_bytes": len(body)})
    if bare == "/api/reports":
        crash = {"error": "report generator crashed", "trace": ["reports.py:42"] * 20}
        return _json(500, crash, chunked=True)
    if bare == "/api/inventory":
        items = [{"sku": f"SKU-{i:04d}", "stock": (i * 37) % 101} for i in range(60)]
        return _json(200, {"items": items}, chunked=True)
    if len(parts) == 3 and parts[:2] == ["api", "orders"] and parts[2].isdigit():
        order = int(parts[2])
        if order % 13 == 0:
            return _json(500, {"error": "order store timeout", "order": order})
        return _json(200, {"order": order, "items": order % 5 + 1, "total": round(order * 3.17, 2)})
    if len(parts) == 2 and parts[0] == "static":
        kind = "text/css" if parts[1].endswith(".css") else "application/javascript"
        return HttpAnswer(200, kind, _static_body(parts[1]))
    return _json(404, {"error": "not found", "path": bare})


class ShopHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; Content-Length or chunked bodies; `Connection: close` honoured."""

    protocol_version = "HTTP/1.1"
    server_version = "demo-shop/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, body: bytes) -> None:
        answer = route(self.command, self.path, body)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not answer.chunked:
            self.wfile.write(answer.body)
            return
        for start in range(0, len(answer.body), 512):
            piece = answer.body[start : start + 512]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


def zone_records(server_ip: str) -> Records:
    """(owner name, type) -> rdata texts. Answers other than the server's own address use the
    documentation ranges (192.0.2.0/24, 2001:db8::/32): they are data, never contacted."""
    return {
        ("shop.demo.internal.", "A"): [server_ip],
        ("api.demo.internal.", "A"): [server_ip],
        ("api.demo.internal.", "AAAA"): ["2001:db8::1"],
        ("www.demo.internal.", "CNAME"): ["shop.demo.internal."],
        ("db.demo.internal.", "A"): ["192.0.2.20", "192.0.2.21"],
        ("cache.demo.internal.", "AAAA"): ["2001:db8::6379"],
    }


def answer_dns(wire: bytes, records: Records) -> bytes:
    """Answer one query as the authoritative server of demo.internal."""
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    if not question.name.is_subdomain(ZONE):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    response.flags |= dns.flags.AA
    name = question.name.to_text()
    rtype = dns.rdatatype.to_text(question.rdtype)
    cname = records.get((name, "CNAME"))
    if cname and rtype != "CNAME":
        response.answer.append(dns.rrset.from_text_list(name, TTL, "IN", "CNAME", cname))
        name = cname[0]
    if rtype == "CNAME" and cname:
        response.answer.append(dns.rrset.from_text_list(name, TTL, "IN", "CNAME", cname))
    elif (name, rtype) in records:
        response.answer.append(dns.rrset.from_text_list(name, TTL, "IN", rtype, records[(name, rtype)]))
    if not response.answer:
        if not any(owner == name for owner, _ in records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        soa = "ns.demo.internal. admin.demo.internal. 2024010101 3600 600 86400 30"
        response.authority.append(dns.rrset.from_text_list(ZONE, TTL, "IN", "SOA", [soa]))
    return response.to_wire()


def serve_dns(addr: str, port: int, records: Records) -> list[socketserver.BaseServer]:
    """Start the UDP and TCP DNS servers on (addr, port) in daemon threads; returns both servers."""

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(answer_dns(data, records), self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                reply = answer_dns(self.rfile.read(struct.unpack("!H", head)[0]), records)
                self.wfile.write(struct.pack("!H", len(reply)) + reply)

    class ThreadingTCP(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    servers: list[socketserver.BaseServer] = [
        socketserver.ThreadingUDPServer((addr, port), Udp),
        ThreadingTCP((addr, port), Tcp),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


def serve_http(addr: str, port: int) -> ThreadingHTTPServer:
    """Start the shop on (addr, port) in a daemon thread."""
    server = ThreadingHTTPServer((addr, port), ShopHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the demo shop (HTTP) and demo.internal (DNS).")
    parser.add_argument("--addr", required=True, help="address to listen on")
    parser.add_argument("--http-port", type=int, action="append", default=[], help="repeatable")
    parser.add_argument("--dns-port", type=int, default=53)
    parser.add_argument("--protocols", action="store_true",
                        help="also HTTP/2, gRPC, TLS and Redis (runtime.demo.protocol_servers)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers: list[socketserver.BaseServer] = [serve_http(args.addr, p) for p in args.http_port or [80]]
    servers += serve_dns(args.addr, args.dns_port, zone_records(args.addr))
    others = None
    if args.protocols:
        from runtime.demo.protocol_servers import ProtocolServers

        others = ProtocolServers(args.addr)
    print("ready", flush=True)
    stop.wait()
    if others:
        others.close()
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
