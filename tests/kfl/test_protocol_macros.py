"""The protocol macros on real items: over the bundled demo capture (`kflpcap items`), `http`, `http2`,
`grpc`, `tls`, `redis` and `dns` each select exactly the items of their protocol, as many as the demo
clients made (demo.json: requests, calls, handshakes, commands, queries)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import kfl
from runtime.demo import DEMO_JSON, DEMO_PCAP

ROOT = Path(__file__).resolve().parents[2]
KIND = {"http": ("http", "HTTP"), "http2": ("http", "HTTP/2"), "grpc": ("http", "gRPC"),
        "tls": ("tls", "TLS"), "redis": ("redis", "REDIS"), "dns": ("dns", "DNS")}


@pytest.fixture(scope="module")
def items() -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "runtime", "items", "--pcap", str(DEMO_PCAP)],
                          capture_output=True, text=True, cwd=ROOT, timeout=240, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_each_protocol_macro_selects_exactly_its_items(items: list[dict]) -> None:
    want = json.loads(DEMO_JSON.read_text())
    counts = {"http": want["http_requests"], "http2": want["h2_requests"], "grpc": want["grpc_calls"],
              "tls": len(want["tls_streams"]), "redis": want["redis_commands"], "dns": want["dns_queries"]}
    kinds = Counter((i["protocol"]["name"], i["protocol"]["abbr"]) for i in items)
    assert set(kinds) == set(KIND.values()), kinds
    for macro, kind in KIND.items():
        selected = [i for i in items if kfl.match(macro, i)]
        assert len(selected) == counts[macro] == kinds[kind], macro
        assert all((i["protocol"]["name"], i["protocol"]["abbr"]) == kind for i in selected), macro


def test_the_demo_queries_select_what_the_clients_saw(items: list[dict]) -> None:
    want = json.loads(DEMO_JSON.read_text())

    def connections(query: str) -> set[str]:
        return {f"tcp {i['src']['ip']}:{i['src']['port']} > {i['dst']['ip']}:{i['dst']['port']}"
                for i in items if kfl.match(query, i)}

    assert connections("http2 and response.status >= 500") == set(want["h2_500_streams"])
    assert connections("grpc and response.grpc.status != 0") == set(want["grpc_error_streams"])
    assert connections('tls and request.sni.endsWith(".internal")') == set(want["tls_internal_streams"])
    assert connections("redis and response.error") == set(want["redis_error_streams"])
