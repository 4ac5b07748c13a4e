"""Record real HTTP/2 and gRPC traffic: servers and clients of `h2peers` in two network namespaces,
dumpcap on the client's veth end. `record(path)` returns what each client reported it did."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.netns import Link, linked_pair

ROOT = Path(__file__).resolve().parents[2]
H2_PORT = 8080
GRPC_PORT = 50051
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@dataclass
class Recording:
    pcap: Path
    server_ip: str
    done: dict[str, list[dict]] = field(default_factory=dict)  # client role -> what it did


def _client(link: Link, role: str, port: int) -> list[dict]:
    out = link.a.run([sys.executable, "-m", "tests.items.h2peers", role, link.b_ip, str(port)],
                     check=False, timeout=60, cwd=ROOT, env=ENV)
    if out.returncode:
        raise RuntimeError(f"{role} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def record(pcap: Path, roles: tuple[str, ...] = ("h2-client", "grpc-client", "upgrade-client",
                                                  "reset-client")) -> Recording:
    """Run the servers and the given clients (one after the other) while dumpcap records."""
    with linked_pair("h2grpc", subnet="10.231.12") as link:
        link.b.popen([sys.executable, "-m", "hypercorn", "tests.items.h2peers:app", "-b",
                      f"{link.b_ip}:{H2_PORT}"], cwd=ROOT, env=ENV)
        link.b.popen([sys.executable, "-m", "tests.items.h2peers", "grpc-server", link.b_ip, str(GRPC_PORT)],
                     cwd=ROOT, env=ENV)
        link.b.wait_tcp(link.b_ip, H2_PORT, timeout=30)
        link.b.wait_tcp(link.b_ip, GRPC_PORT, timeout=30)
        dumpcap = link.a.popen(["dumpcap", "-q", "-P", "-i", link.a_if, "-w", str(pcap),
                                "-f", f"tcp port {H2_PORT} or tcp port {GRPC_PORT}"],
                               stderr=subprocess.PIPE, text=True)
        for line in dumpcap.stderr:
            if line.startswith("Capturing on"):
                break
        else:
            raise RuntimeError("dumpcap did not start")
        time.sleep(0.5)  # "Capturing on" comes before dumpcap reads its socket
        rec = Recording(pcap, link.b_ip)
        try:
            for role in roles:
                rec.done[role] = _client(link, role, GRPC_PORT if role.startswith("grpc") else H2_PORT)
            time.sleep(0.5)  # the last FINs reach the capture
            _wait_until_stable(pcap)
        finally:
            os.killpg(dumpcap.pid, signal.SIGINT)
            try:
                dumpcap.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(dumpcap.pid, signal.SIGKILL)
                dumpcap.communicate(timeout=10)
    return rec


def _wait_until_stable(path: Path, quiet_s: float = 0.6, limit_s: float = 10.0) -> None:
    """Until dumpcap stopped adding to `path` for `quiet_s` (packets wait in a kernel ring block and
    dumpcap's buffer before they reach the file; a SIGINT before that loses them)."""
    deadline = time.monotonic() + limit_s
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)
