"""Record real HTTP/2 and gRPC traffic: servers and clients of `h2peers` in two network namespaces,
dumpcap on the client's veth end. `record(path)` returns what each client reported it did."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from runtime.demo.livenet import dumpcap
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
        rec = Recording(pcap, link.b_ip)
        with dumpcap(link.a_if, pcap, f"tcp port {H2_PORT} or tcp port {GRPC_PORT}", prefix=link.a.cmd([]),
                     settle_s=0.5):  # the last FINs reach the capture
            for role in roles:
                rec.done[role] = _client(link, role, GRPC_PORT if role.startswith("grpc") else H2_PORT)
    return rec
