"""The demo's clients of `runtime.demo.protocol_servers`: HTTP/2 connections with several concurrent
requests (the shop's mix), gRPC calls to the order service (some fail: grpc-status 5 and 9), TLS 1.2
and 1.3 handshakes with different server names and ALPN offers, and Redis sessions (RESP2 and RESP3,
pipelined batches, MULTI/EXEC, some with error replies). HTTP/2 and gRPC are spoken with `h2` over a
plain socket, Redis with `hiredis`'s reader, so every connection's local port is known.

`protocol_worker` runs a seeded mix of these connections, spread over the plan's duration, and logs
per connection what it saw (local port, statuses, codes, server name, errors).
"""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.demo.protocol_servers import GRPC_PORT, GRPC_SERVICE, H2_PORT, REDIS_PORT, TLS_PORT, pb_field

if TYPE_CHECKING:
    from runtime.demo.clients import ClientPlan

# (weight, server name, highest version, ALPN offer): .internal names and outside ones
TLS_MIX: list[tuple[int, str, str, list[str] | None]] = [
    (3, "orders.payments.internal", "1.3", ["h2", "http/1.1"]),
    (2, "ledger.payments.internal", "1.2", ["http/1.1"]),
    (2, "api.partner.example.com", "1.3", ["http/1.1"]),
    (1, "cdn.example.net", "1.2", None),
]
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
GRPC_METHODS = ["GetOrder", "CreateOrder", "ListOrders"]


def h2_exchange(server: str, port: int, requests: list[tuple[list[tuple[str, str]], bytes]]
                ) -> tuple[int, list[dict[str, Any]]]:
    """Send every request at once on one HTTP/2 connection (prior knowledge; concurrent streams),
    read every answer. Returns (local port, per request: headers, body, trailers)."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    with socket.create_connection((server, port), timeout=10) as sock:
        local_port = sock.getsockname()[1]
        ids = []
        for headers, body in requests:
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers, end_stream=not body)
            if body:
                conn.send_data(stream_id, body, end_stream=True)
            ids.append(stream_id)
        sock.sendall(conn.data_to_send())
        answers: dict[int, dict[str, Any]] = {
            i: {"headers": {}, "body": bytearray(), "trailers": {}} for i in ids}
        waiting = set(ids)
        while waiting:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"HTTP/2 server closed with streams {sorted(waiting)} open")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answers[event.stream_id]["headers"] = dict(event.headers)
                elif isinstance(event, h2.events.TrailersReceived):
                    answers[event.stream_id]["trailers"] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    answers[event.stream_id]["body"].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    waiting.discard(event.stream_id)
            sock.sendall(conn.data_to_send())
        conn.close_connection()
        sock.sendall(conn.data_to_send())
    return local_port, [answers[i] for i in ids]


def h2_connection(server: str, requests: list[tuple[str, str]]) -> list[dict]:
    """The shop's (method, path) requests on one HTTP/2 connection; one log entry per request."""
    out = []
    for method, path in requests:
        headers = [(":method", method), (":scheme", "http"), (":path", path),
                   (":authority", f"shop.demo.internal:{H2_PORT}"), ("user-agent", "kflpcap-demo-h2/1.0"),
                   ("accept", "*/*")]
        body = b'{"cart": "%s"}' % path.encode() if method == "POST" else b""
        if body:
            headers.append(("content-type", "application/json"))
        out.append((headers, body))
    local_port, answers = h2_exchange(server, H2_PORT, out)
    return [{"local_port": local_port, "server_port": H2_PORT, "method": method, "path": path,
             "status": int(answer["headers"].get(":status", 0))}
            for (method, path), answer in zip(requests, answers, strict=True)]


def grpc_connection(server: str, calls: list[tuple[str, int]]) -> list[dict]:
    """(method, order) calls to the order service on one connection; one log entry per call."""
    requests = []
    for method, order in calls:
        message = pb_field(1, order) + pb_field(2, "web-checkout")
        headers = [(":method", "POST"), (":scheme", "http"), (":path", f"/{GRPC_SERVICE}/{method}"),
                   (":authority", f"orders.demo.internal:{GRPC_PORT}"), ("content-type", "application/grpc"),
                   ("te", "trailers"), ("user-agent", "kflpcap-demo-grpc/1.0")]
        requests.append((headers, b"\x00" + struct.pack("!I", len(message)) + message))
    local_port, answers = h2_exchange(server, GRPC_PORT, requests)
    out = []
    for (method, order), answer in zip(calls, answers, strict=True):
        status = answer["trailers"].get("grpc-status", answer["headers"].get("grpc-status", "-1"))
        out.append({"local_port": local_port, "method": method, "order": order, "code": int(status)})
    return out


def tls_connection(server: str, sni: str, version: str, alpn: list[str] | None) -> dict:
    """One TLS handshake (highest version `version`) and one HTTP/1.1 request inside it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a self-signed demo certificate
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = TLS_VERSIONS[version]
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection((server, TLS_PORT), timeout=10) as raw:
        local_port = raw.getsockname()[1]
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            done = {"local_port": local_port, "sni": sni, "version": tls.version(),
                    "alpn": tls.selected_alpn_protocol()}
            tls.sendall(b"GET /v1/balance HTTP/1.1\r\nHost: %s\r\n\r\n" % sni.encode())
            while tls.recv(4096):
                pass
    return done


def redis_batches(n: int) -> list[list[list[str]]]:
    """Session `n`'s commands, in batches sent pipelined: every 4th speaks RESP3 (HELLO 3), every 3rd
    runs a MULTI/EXEC, sessions 1, 4, 7 … get WRONGTYPE and not-an-integer errors, 4, 9, 14 … an
    unknown command."""
    batches: list[list[list[str]]] = [[["HELLO", "3"]]] if n % 4 == 3 else []
    batches.append([["SET", f"session:{n}", f"user-{n}", "EX", "300"], ["GET", f"session:{n}"]])
    batches.append([["HSET", f"cart:{n}", "sku-1", "2", "sku-7", "1"], ["HGETALL", f"cart:{n}"],
                    ["INCR", "visits"], ["LPUSH", f"events:{n}", "login", "view"],
                    ["LRANGE", f"events:{n}", "0", "-1"]])
    if n % 3 == 0:
        batches.append([["MULTI"], ["INCRBY", "stock:sku-1", "-1"], ["EXPIRE", f"cart:{n}", "600"], ["EXEC"]])
    if n % 3 == 1:
        batches.append([["HGET", f"session:{n}", "name"], ["INCR", f"session:{n}"]])
    if n % 5 == 4:
        batches.append([["GETT", f"session:{n}"]])
    batches.append([["DEL", f"cart:{n}"]])
    return batches


def _resp(command: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def redis_session(server: str, n: int) -> dict:
    """Session `n` (`redis_batches`) on one connection; counts commands and error replies."""
    import hiredis

    reader = hiredis.Reader()
    commands = errors = 0
    with socket.create_connection((server, REDIS_PORT), timeout=10) as sock:
        local_port = sock.getsockname()[1]
        for batch in redis_batches(n):
            sock.sendall(b"".join(_resp(c) for c in batch))
            for _ in batch:
                reply = reader.gets()
                while reply is False:
                    data = sock.recv(65536)
                    if not data:
                        raise RuntimeError("redis-server closed the connection")
                    reader.feed(data)
                    reply = reader.gets()
                errors += isinstance(reply, hiredis.ReplyError)
            commands += len(batch)
    return {"local_port": local_port, "commands": commands, "errors": errors}


def protocol_worker(server: str, plan: ClientPlan, pick_request: Callable[[random.Random], tuple[str, str]],
                    log: dict[str, list[dict]]) -> None:
    """The plan's HTTP/2, gRPC, TLS and Redis connections in a seeded order, spread over its duration;
    `pick_request` draws one of the shop's (method, path) requests."""
    rng = random.Random(f"{plan.seed}-protocols")
    counts = {"h2": plan.h2_connections, "grpc": plan.grpc_connections, "tls": plan.tls_connections,
              "redis": plan.redis_connections}
    sessions = [(kind, i) for kind, n in counts.items() for i in range(n)]
    rng.shuffle(sessions)
    pause = plan.duration_s / len(sessions) if sessions else 0.0
    for kind, i in sessions:
        if kind == "h2":
            log["h2"] += h2_connection(server, [pick_request(rng) for _ in range(rng.randint(3, 6))])
        elif kind == "grpc":
            calls = [(GRPC_METHODS[k % 3] if k < 3 else rng.choice(GRPC_METHODS), rng.randint(1, 1000))
                     for k in range(rng.randint(3, 5))]
            log["grpc"] += grpc_connection(server, calls)
        elif kind == "tls":
            _, sni, version, alpn = TLS_MIX[i] if i < len(TLS_MIX) else rng.choices(
                TLS_MIX, weights=[w for w, *_ in TLS_MIX])[0]
            log["tls"].append(tls_connection(server, sni, version, alpn))
        else:
            log["redis"].append(redis_session(server, i))
        time.sleep(pause)
