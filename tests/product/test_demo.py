"""The bundled demo capture holds what its sidecar (made from the clients' own log) says, per tshark."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import resources

import pytest

from runtime.demo import DEMO_JSON, DEMO_PCAP
from runtime.demo.make_demo import count_packets
from tests.product.tshark_oracle import dns_flows, http500_streams, l4_flows, tshark_fields

RCODES = {"0": "NOERROR", "3": "NXDOMAIN", "5": "REFUSED"}


@pytest.fixture(scope="module")
def sidecar() -> dict:
    return json.loads(DEMO_JSON.read_text())


def test_demo_is_package_data_of_a_few_hundred_kb(sidecar: dict) -> None:
    shipped = resources.files("runtime.demo") / "demo.pcap"
    data = shipped.read_bytes()
    assert 100_000 < len(data) < 1_000_000
    assert hashlib.sha256(data).hexdigest() == sidecar["sha256"]
    assert count_packets(DEMO_PCAP) == sidecar["packets"]


def test_tshark_finds_the_http_500_connections_the_clients_saw(sidecar: dict) -> None:
    found = http500_streams(DEMO_PCAP)
    assert found, "the demo must contain HTTP 500 answers"
    assert found == set(sidecar["http500_streams"])
    assert len(found) < len(sidecar["http_streams"]), "only some connections answered 500"


def test_tshark_finds_the_dns_flows_the_clients_made(sidecar: dict) -> None:
    found = dns_flows(DEMO_PCAP)
    assert found == set(sidecar["dns_flows"])
    assert {flow.split()[0] for flow in found} == {"udp", "tcp"}


def test_every_flow_in_the_capture_is_one_the_clients_made(sidecar: dict) -> None:
    assert l4_flows(DEMO_PCAP) == set(sidecar["http_streams"]) | set(sidecar["dns_flows"])


def test_statuses_and_rcodes_match_the_clients_log(sidecar: dict) -> None:
    statuses = Counter(row[0] for row in tshark_fields(DEMO_PCAP, "http.response", ["http.response.code"]))
    assert dict(statuses) == sidecar["http_by_status"]
    assert {"200", "404", "500"} <= set(statuses)
    rcodes = Counter(RCODES[row[0]] for row in tshark_fields(DEMO_PCAP, "dns.flags.response == 1",
                                                              ["dns.flags.rcode"]))
    assert dict(rcodes) == sidecar["dns_by_rcode"]
    keepalive = Counter(row[0] for row in tshark_fields(DEMO_PCAP, "http.request", ["tcp.stream"]))
    assert max(keepalive.values()) > 1, "some connections carry several requests (keep-alive)"
