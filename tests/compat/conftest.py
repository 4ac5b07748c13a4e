"""The compatibility suite: Kubeshark-style scripts (ES5, `var`, string concatenation, guards and
unguarded reads) run by `kflpcap run` on real captures against real local services; each test
asserts what the service received, with counts from tshark on the same capture."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.seaweed import seaweed  # noqa: F401  (the session S3 server fixture)

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "tests" / "pcaps"
# 2 × HTTP 500, 2 × 502, 1 × 404 among 118 answered requests
MIXED = PCAPS / "ndpi_mixed_http500-502-keepalive_1kxun_2.5MB.pcap"


def tshark_count(pcap: Path, display_filter: str) -> int:
    done = subprocess.run(["tshark", "-r", str(pcap), "-Y", display_filter], capture_output=True,
                          text=True, timeout=120, check=True)
    return len(done.stdout.splitlines())


def kflpcap_run(tmp: Path, script: str, pcap: Path, env: dict[str, str] | None = None,
                args: list[str] | None = None, name: str = "compat.js") -> subprocess.CompletedProcess:
    """`python -m runtime run --pcap <pcap> --scripts <dir with the script>`; the run must succeed."""
    scripts = tmp / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / name).write_text(script)
    cmd = [sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(scripts),
           "--data-dir", str(tmp / "data"), "--no-progress", *(args or [])]
    for key, value in (env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert ":ERROR]" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def tshark_fields(pcap: Path, display_filter: str, name: str) -> list[str]:
    done = subprocess.run(["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-e", name],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Service:
    """A local HTTP service: records every request; `answer(request)` gives (status, headers, body)."""

    answer: Callable[[Request], Answer]
    got: list[Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def http_service() -> Iterator[Callable[[Callable[[Request], Answer]], Service]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[Request], Answer]) -> Service:
        service = Service(answer)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(size) if size else b"")
                service.got.append(req)
                try:
                    status, headers, body = service.answer(req)
                except AssertionError as exc:  # a request the service refuses: the helper sees a 400
                    service.refused.append(f"{req.method} {req.path}: {exc}")
                    status, headers, body = 400, {}, f"refused: {exc}".encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        service.url = f"http://127.0.0.1:{server.server_address[1]}"
        return service

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
