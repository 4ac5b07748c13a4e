"""Real HTTP/2 and gRPC peers for the live tests, run inside network namespaces:

    python3 -m hypercorn tests.items.h2peers:app -b IP:PORT       # h2c server (prior knowledge, Upgrade)
    python3 -m tests.items.h2peers grpc-server IP PORT            # grpcio server, generic handlers
    python3 -m tests.items.h2peers h2-client IP PORT              # httpx, HTTP/2 prior knowledge
    python3 -m tests.items.h2peers grpc-client IP PORT
    python3 -m tests.items.h2peers upgrade-client IP PORT         # h2: Upgrade: h2c, then stream 3
    python3 -m tests.items.h2peers reset-client IP PORT           # h2: a request, then RST_STREAM

Each client prints a JSON list of what it did (method, path, status / gRPC code) for the tests.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import sys
import time
from typing import Any

BIG = 200_000  # bytes of /big: many DATA frames (16 KiB each at most)
PAGE = b"hello h2 " * 100


def pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(number: int, value: int | bytes | str) -> bytes:
    """One protobuf field: an int as a varint, bytes/str length-delimited."""
    if isinstance(value, int):
        return pb_varint(number << 3) + pb_varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return pb_varint(number << 3 | 2) + pb_varint(len(raw)) + raw


def item_message(name: str, count: int) -> bytes:
    """{1: name, 2: count, 3: {1: "warehouse-7", 2: 3}}"""
    return pb_field(1, name) + pb_field(2, count) + pb_field(3, pb_field(1, "warehouse-7") + pb_field(2, 3))


# -- the h2c server (ASGI, run by hypercorn) ---------------------------------------------------------

async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    headers = [(b"content-type", b"text/plain"), (b"x-served-by", b"hypercorn-h2")]
    status = 200
    if path == "/big":
        payload = bytes(range(256)) * (BIG // 256) + bytes(BIG % 256)
    elif path == "/gzip":
        payload = gzip.compress(PAGE)
        headers.append((b"content-encoding", b"gzip"))
    elif path == "/missing":
        status, payload = 404, b"not here"
    elif path == "/echo":
        status, payload = 201, body
    elif path == "/slow":
        await asyncio.sleep(5)
        payload = b"late"
    else:
        payload = PAGE
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# -- clients ----------------------------------------------------------------------------------------

def h2_client(ip: str, port: int) -> list[dict]:
    import httpx

    done: list[dict] = []
    base = f"http://{ip}:{port}"
    headers = {"x-tenant": "acme-corporation", "authorization": "Bearer " + "t0ken" * 8}

    async def run() -> None:
        async with httpx.AsyncClient(http1=False, http2=True, headers=headers, timeout=20) as client:
            async def get(path: str) -> None:
                r = await client.get(base + path)
                assert r.http_version == "HTTP/2"
                done.append({"method": "GET", "path": path, "status": r.status_code, "size": len(r.content)})
            await get("/first")
            await asyncio.gather(*(get(f"/items/{n}?page={n}") for n in range(8)))  # concurrent streams
            await get("/big")
            await get("/gzip")
            await get("/missing")
            r = await client.post(base + "/echo", content=b'{"name": "widget"}',
                                  headers={"content-type": "application/json"})
            done.append({"method": "POST", "path": "/echo", "status": r.status_code})
            for n in range(4):  # same headers again: the encoder refers to its dynamic table
                await get(f"/again/{n}")

    asyncio.run(run())
    return done


SERVICE = "kfl.test.Inventory"


def grpc_server(ip: str, port: int) -> None:
    from concurrent import futures

    import grpc

    def get_item(request: bytes, context: Any) -> bytes:
        return item_message("widget", 7)

    def create(request: bytes, context: Any) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "no such shelf: 42")

    def list_items(request: bytes, context: Any) -> Any:
        for n in range(3):
            yield item_message(f"item-{n}", n)

    handlers = {
        "GetItem": grpc.unary_unary_rpc_method_handler(get_item),
        "Create": grpc.unary_unary_rpc_method_handler(create),
        "ListItems": grpc.unary_stream_rpc_method_handler(list_items),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{ip}:{port}")
    server.start()
    server.wait_for_termination()


def grpc_client(ip: str, port: int) -> list[dict]:
    import grpc

    done: list[dict] = []
    with grpc.insecure_channel(f"{ip}:{port}") as channel:
        request = pb_field(1, "widget") + pb_field(2, 42)
        reply = channel.unary_unary(f"/{SERVICE}/GetItem")(request, timeout=10)
        assert reply == item_message("widget", 7)
        done.append({"method": "GetItem", "code": 0})
        try:
            channel.unary_unary(f"/{SERVICE}/Create")(pb_field(1, "shelf-42"), timeout=10)
        except grpc.RpcError as exc:
            done.append({"method": "Create", "code": exc.code().value[0]})
        replies = list(channel.unary_stream(f"/{SERVICE}/ListItems")(b"", timeout=10))
        assert len(replies) == 3
        done.append({"method": "ListItems", "code": 0})
    return done


def _h2_socket(ip: str, port: int) -> socket.socket:
    return socket.create_connection((ip, port), timeout=10)


def _h2_response(conn: Any, sock: socket.socket, stream_id: int) -> int:
    import h2.events

    status = 0
    while True:
        data = sock.recv(65536)
        if not data:
            return status
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                sock.sendall(conn.data_to_send())
                return status
        sock.sendall(conn.data_to_send())


def upgrade_client(ip: str, port: int) -> list[dict]:
    """HTTP/1.1 GET with `Upgrade: h2c`; after the 101 the answer comes on HTTP/2 stream 1."""
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = conn.initiate_upgrade_connection()  # base64 already
    sock = _h2_socket(ip, port)
    sock.sendall(b"GET /upgraded?via=h2c HTTP/1.1\r\nHost: " + ip.encode() + b"\r\nConnection: Upgrade, "
                 b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(conn.data_to_send())
    done = [{"method": "GET", "path": "/upgraded?via=h2c", "status": _h2_response(conn, sock, 1)}]
    conn.send_headers(3, [(":method", "GET"), (":path", "/after-upgrade"), (":scheme", "http"),
                          (":authority", ip)], end_stream=True)
    sock.sendall(conn.data_to_send())
    done.append({"method": "GET", "path": "/after-upgrade", "status": _h2_response(conn, sock, 3)})
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return done


def reset_client(ip: str, port: int) -> list[dict]:
    """A request to /slow, cancelled with RST_STREAM before the answer; then one that completes."""
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock = _h2_socket(ip, port)
    request = [(":method", "GET"), (":scheme", "http"), (":authority", ip)]
    conn.send_headers(1, [*request, (":path", "/slow")], end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(0.3)
    conn.reset_stream(1, error_code=8)  # CANCEL
    sock.sendall(conn.data_to_send())
    conn.send_headers(3, [*request, (":path", "/after-reset")], end_stream=True)
    sock.sendall(conn.data_to_send())
    done = [{"method": "GET", "path": "/slow", "status": 0},
            {"method": "GET", "path": "/after-reset", "status": _h2_response(conn, sock, 3)}]
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return done


CLIENTS = {"h2-client": h2_client, "grpc-client": grpc_client, "upgrade-client": upgrade_client,
           "reset-client": reset_client}

if __name__ == "__main__":
    role, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if role == "grpc-server":
        grpc_server(ip, port)
    else:
        print(json.dumps(CLIENTS[role](ip, port)))
