"""The demo's clients: a known, seeded mix of HTTP requests (keep-alive and one request per
connection, on two ports) and DNS lookups with dnspython's resolver (UDP and TCP, every query from
its own source port) and, when the plan asks, HTTP/2, gRPC, TLS and Redis connections
(`runtime.demo.protocol_clients`), run from inside the client namespace by `runtime.demo.livenet`.

`python3 -m runtime.demo.clients --server 10.213.0.1 --plan '{"seed": 7}'` prints a JSON log of
what the clients actually did (local ports, statuses, DNS codes) on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import http.client
import json
import random
import sys
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.resolver

from runtime.demo.protocol_clients import protocol_worker

DNS_UDP_PORT_BASE = 20000
DNS_TCP_PORT_BASE = 21000

# (weight, method, path template); {n} is replaced by a number drawn for each request.
HTTP_MIX: list[tuple[int, str, str]] = [
    (10, "GET", "/api/orders/{n}"),
    (5, "GET", "/static/app-{n}.js"),
    (3, "GET", "/static/site-{n}.css"),
    (3, "GET", "/health"),
    (1, "GET", "/api/inventory"),
    (1, "POST", "/api/checkout"),
    (1, "GET", "/api/reports"),
    (1, "GET", "/missing/{n}"),
]

# (weight, name, type): answers are A, AAAA, CNAME chains, NODATA, NXDOMAIN and REFUSED.
DNS_MIX: list[tuple[int, str, str]] = [
    (4, "shop.demo.internal.", "A"),
    (3, "api.demo.internal.", "A"),
    (2, "api.demo.internal.", "AAAA"),
    (2, "www.demo.internal.", "A"),
    (2, "db.demo.internal.", "A"),
    (1, "cache.demo.internal.", "AAAA"),
    (1, "cache.demo.internal.", "A"),
    (2, "nosuch-{n}.demo.internal.", "A"),
    (1, "shop.example.invalid.", "A"),
]


@dataclass(frozen=True)
class ClientPlan:
    """How much traffic, and over how long. The same plan and seed make the same requests."""

    seed: int = 7
    keepalive_connections: int = 8
    keepalive_requests: tuple[int, int] = (2, 6)
    oneshot_connections: int = 24
    alt_port_every: int = 4
    udp_queries: int = 20
    tcp_queries: int = 4
    duration_s: float = 0.0
    h2_connections: int = 0
    grpc_connections: int = 0
    tls_connections: int = 0
    redis_connections: int = 0

    @property
    def protocols(self) -> bool:
        """Whether the plan has HTTP/2, gRPC, TLS or Redis traffic (`runtime.demo.protocol_servers`)."""
        return bool(self.h2_connections or self.grpc_connections or self.tls_connections
                    or self.redis_connections)

    @classmethod
    def quick(cls) -> ClientPlan:
        """A few seconds of traffic for tests."""
        return cls()

    @classmethod
    def demo(cls) -> ClientPlan:
        """The bundled demo: spread over 70 s so every per-minute job fires at least once."""
        return cls(keepalive_connections=14, oneshot_connections=50, udp_queries=40, tcp_queries=6,
                   duration_s=70.0, h2_connections=8, grpc_connections=8, tls_connections=12,
                   redis_connections=10)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClientPlan:
        fields = json.loads(text)
        if "keepalive_requests" in fields:
            fields["keepalive_requests"] = tuple(fields["keepalive_requests"])
        return cls(**fields)


def _pick(rng: random.Random, mix: list[tuple[int, str, str]]) -> tuple[str, str]:
    _, a, b = rng.choices(mix, weights=[w for w, _, _ in mix])[0]
    n = rng.randint(1, 400)
    return a.replace("{n}", str(n)), b.replace("{n}", str(n))


def _pace(plan: ClientPlan, steps: int) -> float:
    return plan.duration_s / steps if steps else 0.0


def _request(conn: http.client.HTTPConnection, method: str, path: str, host: str, close: bool) -> dict:
    headers = {"Host": host, "User-Agent": "kflpcap-demo-client/1.0", "Accept": "*/*"}
    body = None
    if method == "POST":
        body = json.dumps({"cart": path, "card": "4111-xxxx-xxxx-1111"}).encode()
        headers["Content-Type"] = "application/json"
    if close:
        headers["Connection"] = "close"
    conn.request(method, path, body=body, headers=headers)
    local_port = conn.sock.getsockname()[1]
    response = conn.getresponse()
    data = response.read()
    return {"local_port": local_port, "method": method, "path": path, "status": response.status,
            "bytes": len(data)}


def _http_worker(server: str, plan: ClientPlan, keepalive: bool, log: list[dict]) -> None:
    rng = random.Random(f"{plan.seed}-{'keepalive' if keepalive else 'oneshot'}")
    count = plan.keepalive_connections if keepalive else plan.oneshot_connections
    connections = []
    for i in range(count):
        port = 8080 if plan.alt_port_every and i % plan.alt_port_every == plan.alt_port_every - 1 else 80
        n = rng.randint(*plan.keepalive_requests) if keepalive else 1
        connections.append((port, [_pick(rng, HTTP_MIX) for _ in range(n)]))
    pause = _pace(plan, sum(len(reqs) for _, reqs in connections))
    for port, requests in connections:
        host = "shop.demo.internal" if port == 80 else f"api.demo.internal:{port}"
        conn = http.client.HTTPConnection(server, port, timeout=10)
        try:
            for method, path in requests:
                entry = _request(conn, method, path, host, close=not keepalive)
                entry.update(server_port=port, keepalive=keepalive)
                log.append(entry)
                time.sleep(pause)
        finally:
            conn.close()


def _dns_worker(server: str, plan: ClientPlan, log: list[dict]) -> None:
    rng = random.Random(f"{plan.seed}-dns")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.cache = None
    queries = [(False, i) for i in range(plan.udp_queries)] + [(True, i) for i in range(plan.tcp_queries)]
    rng.shuffle(queries)
    pause = _pace(plan, len(queries))
    # Every kind of answer at least once (in the mix's order), then a random draw.
    picks = [(name.replace("{n}", "0"), rtype) for _, name, rtype in DNS_MIX][: len(queries)]
    picks += [_pick(rng, DNS_MIX) for _ in range(len(queries) - len(picks))]
    for (tcp, i), (name, rtype) in zip(queries, picks, strict=True):
        local_port = (DNS_TCP_PORT_BASE if tcp else DNS_UDP_PORT_BASE) + i
        entry = {"transport": "tcp" if tcp else "udp", "local_port": local_port, "name": name, "type": rtype}
        try:
            answer = resolver.resolve(name, rtype, tcp=tcp, source_port=local_port, lifetime=5, search=False)
            entry.update(rcode="NOERROR", answers=sorted(str(r) for r in answer))
        except dns.resolver.NXDOMAIN:
            entry.update(rcode="NXDOMAIN", answers=[])
        except dns.resolver.NoAnswer:
            entry.update(rcode="NOERROR", answers=[])
        except dns.resolver.NoNameservers:
            entry.update(rcode="REFUSED", answers=[])
        except dns.exception.Timeout:
            entry.update(rcode="TIMEOUT", answers=[])
        log.append(entry)
        time.sleep(pause)


def run_clients(server: str, plan: ClientPlan) -> dict:
    """Run the plan against `server` (three concurrent workers, four with HTTP/2, gRPC, TLS and Redis)
    and return what happened."""
    http_log: list[dict] = []
    others: dict[str, list[dict]] = {"h2": [], "grpc": [], "tls": [], "redis": []}
    dns_log: list[dict] = []
    errors: list[str] = []

    def guarded(fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a failed client must show in the log, not vanish in a thread
            errors.append(f"{fn.__name__}: {exc!r}")

    workers = [
        threading.Thread(target=guarded, args=(_http_worker, server, plan, True, http_log)),
        threading.Thread(target=guarded, args=(_http_worker, server, plan, False, http_log)),
        threading.Thread(target=guarded, args=(_dns_worker, server, plan, dns_log)),
    ]
    if plan.protocols:
        pick = functools.partial(_pick, mix=HTTP_MIX)
        workers.append(threading.Thread(target=guarded, args=(protocol_worker, server, plan, pick, others)))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"server": server, "plan": dataclasses.asdict(plan), "http": http_log, "dns": dns_log,
            **others, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the demo client mix; print a JSON log.")
    parser.add_argument("--server", required=True)
    parser.add_argument("--plan", default="{}", help="ClientPlan fields as JSON")
    args = parser.parse_args(argv)
    log = run_clients(args.server, ClientPlan.from_json(args.plan))
    json.dump(log, sys.stdout)
    return 1 if log["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
