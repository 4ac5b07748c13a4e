"""The demo's other services, beside the shop's HTTP/1.1 and DNS: the shop's API over HTTP/2 cleartext
(`h2`, prior knowledge), a gRPC order service (`grpcio`), a TLS endpoint (Python `ssl`, a self-signed
certificate made at start for `orders.payments.internal`) and a cache (`redis-server` from Debian).

Started by `runtime.demo.servers` with `--protocols`; the libraries are the test extras (`h2`,
`grpcio`), imported only here. Every answer is a pure function of the request, so the clients
(`runtime.demo.protocol_clients`) know what they will see.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.demo.servers import route

H2_PORT = 8081
GRPC_PORT = 50051
TLS_PORT = 443
REDIS_PORT = 6379
GRPC_SERVICE = "payments.Orders"
TLS_NAMES = ["orders.payments.internal", "ledger.payments.internal"]


def pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(number: int, value: int | str | bytes) -> bytes:
    """One protobuf field: an int as a varint, text or bytes length-delimited."""
    if isinstance(value, int):
        return pb_varint(number << 3) + pb_varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return pb_varint(number << 3 | 2) + pb_varint(len(raw)) + raw


def pb_first_varint(message: bytes) -> int:
    """The value of field 1 when the message starts with it as a varint (0 otherwise)."""
    if not message or message[0] != 0x08:
        return 0
    value, shift = 0, 0
    for byte in message[1:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


def order_message(order: int) -> bytes:
    """{1: order, 2: "paid", 3: {1: total in cents, 2: "EUR"}}"""
    total = pb_field(1, order * 317) + pb_field(2, "EUR")
    return pb_field(1, order) + pb_field(2, "paid") + pb_field(3, total)


_CODE_NAMES = {5: "NOT_FOUND", 9: "FAILED_PRECONDITION"}


def grpc_outcome(method: str, order: int) -> tuple[int, str]:
    """(grpc-status, grpc-message) the order service answers: CreateOrder declines every 5th order,
    GetOrder does not know orders above 900."""
    if method == "CreateOrder" and order % 5 == 0:
        return 9, f"card declined for order {order}"  # FAILED_PRECONDITION
    if method == "GetOrder" and order > 900:
        return 5, f"no such order: {order}"  # NOT_FOUND
    return 0, ""


# -- HTTP/2 cleartext ---------------------------------------------------------------------------------

class _H2Shop(socketserver.BaseRequestHandler):
    """The shop's `route` over HTTP/2 with prior knowledge; streams answered as they end."""

    def handle(self) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        sock: socket.socket = self.request
        sock.sendall(conn.data_to_send())
        requests: dict[int, tuple[dict, bytearray]] = {}
        while data := sock.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    requests[event.stream_id] = (dict(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    requests[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, body = requests.pop(event.stream_id)
                    answer = route(headers[":method"], headers[":path"], bytes(body))
                    conn.send_headers(event.stream_id, [
                        (":status", str(answer.status)), ("content-type", answer.content_type),
                        ("content-length", str(len(answer.body))), ("server", "demo-shop-h2/1.0")])
                    for start in range(0, len(answer.body), 8192):
                        conn.send_data(event.stream_id, answer.body[start : start + 8192])
                    conn.end_stream(event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _serve_tcp(addr: str, port: int, handler: type[socketserver.BaseRequestHandler]) -> _ThreadingTCP:
    server = _ThreadingTCP((addr, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- gRPC -----------------------------------------------------------------------------------------------

def serve_grpc(addr: str, port: int) -> Any:
    """The order service on grpcio with generic handlers (no generated code): GetOrder, CreateOrder
    (unary) and ListOrders (server streaming, three orders)."""
    from concurrent import futures

    import grpc

    def unary(method: str) -> Callable[[bytes, Any], bytes]:
        def handler(request: bytes, context: Any) -> bytes:
            order = pb_first_varint(request)
            code, message = grpc_outcome(method, order)
            if code:
                context.abort(grpc.StatusCode[_CODE_NAMES[code]], message)
            return order_message(order)
        return handler

    def list_orders(request: bytes, context: Any) -> Any:
        first = pb_first_varint(request)
        for order in range(first, first + 3):
            yield order_message(order)

    handlers = {
        "GetOrder": grpc.unary_unary_rpc_method_handler(unary("GetOrder")),
        "CreateOrder": grpc.unary_unary_rpc_method_handler(unary("CreateOrder")),
        "ListOrders": grpc.unary_stream_rpc_method_handler(list_orders),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(GRPC_SERVICE, handlers),))
    server.add_insecure_port(f"{addr}:{port}")
    server.start()
    return server


# -- TLS ------------------------------------------------------------------------------------------------

def self_signed(folder: Path, names: list[str]) -> tuple[Path, Path]:
    """A fresh EC key and a self-signed certificate for `names` (first one the subject CN)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Payments"),
                         x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + 90 * day)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "demo-tls.crt", folder / "demo-tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def serve_tls(addr: str, port: int, folder: Path) -> _ThreadingTCP:
    """TLS 1.2 and 1.3 (ALPN h2 or http/1.1): reads one HTTP/1.1 request, answers 200, closes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    ctx.load_cert_chain(*self_signed(folder, [*TLS_NAMES, "*.payments.internal"]))

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with ctx.wrap_socket(self.request, server_side=True) as tls:
                    request = b""
                    while b"\r\n\r\n" not in request and (chunk := tls.recv(4096)):
                        request += chunk
                    body = b'{"balance": 1200, "currency": "EUR"}'
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                b"Connection: close\r\n\r\n%s" % (len(body), body))
            except (ssl.SSLError, OSError):
                return

    return _serve_tcp(addr, port, Handler)


# -- Redis ------------------------------------------------------------------------------------------------

def start_redis(addr: str, port: int) -> subprocess.Popen:
    """redis-server (Debian's) on (addr, port), no persistence; returns once it accepts connections."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("the demo's cache needs redis-server (apt-get install redis-server)")
    proc = subprocess.Popen([binary, "--bind", addr, "--port", str(port), "--save", "", "--appendonly", "no",
                             "--protected-mode", "no", "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not start listening")


class ProtocolServers:
    """The four services, started together; `close()` stops them."""

    def __init__(self, addr: str) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="kflpcap-demo-tls-")
        self._tcp = [_serve_tcp(addr, H2_PORT, _H2Shop), serve_tls(addr, TLS_PORT, Path(self._folder.name))]
        self._grpc = serve_grpc(addr, GRPC_PORT)
        self._redis = start_redis(addr, REDIS_PORT)

    def close(self) -> None:
        for server in self._tcp:
            server.shutdown()
            server.server_close()
        self._grpc.stop(grace=1).wait()
        self._redis.terminate()
        self._redis.wait(timeout=10)
        self._folder.cleanup()


__all__ = ["GRPC_PORT", "GRPC_SERVICE", "H2_PORT", "REDIS_PORT", "TLS_NAMES", "TLS_PORT", "ProtocolServers",
           "grpc_outcome", "order_message", "pb_field"]
