"""Acceptance 2 with real peers: Python's http.server and http.client on loopback, their bytes
recorded by a relay between them, replayed as a scapy-built capture through Capture + dissectors."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.items.schema import check_item
from tests.items.util import Talk, run_frames

PAGE = b"<html>" + b"hello " * 300 + b"</html>"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/gzip":
            body = gzip.compress(PAGE)
            self._send(200, body, ("Content-Encoding", "gzip"), ("Content-Type", "text/html"))
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first,", b"second,", b"third"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
        elif self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
        else:
            self._send(404 if self.path == "/missing" else 200, PAGE, ("Content-Type", "text/html"))

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self._send(500, b'{"error": "' + data + b'"}', ("Content-Type", "application/json"))

    def _send(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Relay:
    """Accepts one client, connects it to the server, records every chunk in arrival order."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.chunks: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.server, timeout=10)
        pumps = [threading.Thread(target=self._pump, args=(client, upstream, 0)),
                 threading.Thread(target=self._pump, args=(upstream, client, 1))]
        for p in pumps:
            p.start()
        for p in pumps:
            p.join(timeout=30)
        client.close()
        upstream.close()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: int) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            with self.lock:
                self.chunks.append((direction, data))
            dst.sendall(data)


def test_real_http_server_and_client_over_one_keep_alive_connection() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay = Relay(server.server_address[:2])
    seen = []
    try:
        conn = http.client.HTTPConnection(*relay.address, timeout=10)
        for method, path, headers, body in [
            ("GET", "/", {}, None), ("GET", "/gzip", {"Accept-Encoding": "gzip"}, None),
            ("HEAD", "/", {}, None), ("GET", "/chunked", {}, None),
            ("GET", "/cached", {"If-None-Match": '"v1"'}, None),
            ("POST", "/api", {"Content-Type": "text/plain"}, b"boom"), ("GET", "/missing", {}, None),
        ]:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            seen.append((method, path, resp.status, resp.read()))
        conn.close()
        relay.thread.join(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        relay.listener.close()
    talk = Talk(client=("10.0.0.1", 45000), server=("10.0.0.2", 80))
    for direction, data in relay.chunks:
        talk.send(direction, data)
    items = run_frames(talk.close())
    for item in items:
        check_item(item)
    got = [(it["request"]["method"], it["request"]["path"], it["response"]["status"]) for it in items]
    assert got == [(m, p, s) for m, p, s, _ in seen]
    decoded = [base64.b64decode(it["response"]["content"].get("text", "")) for it in items]
    assert decoded[0] == PAGE and decoded[1] == PAGE  # gzip decoded for content.text
    assert decoded[2] == b"" and decoded[4] == b""  # HEAD and 304: no body
    assert decoded[3] == b"first,second,third" and items[3]["response"]["headers"]["X-Trailer"] == "done"
    assert decoded[5] == b'{"error": "boom"}' and items[5]["request"]["postData"]["text"] == "boom"
    assert all("error" not in it for it in items)
