"""The bundled demo capture holds what its sidecar (made from the clients' own log) says, per tshark."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import resources

import pytest

from runtime.demo import DEMO_JSON, DEMO_PCAP
from runtime.demo.livenet import protocol_streams
from runtime.demo.make_demo import count_packets
from tests.product.tshark_oracle import (
    dns_flows,
    grpc_statuses,
    http2_statuses,
    http500_streams,
    l4_flows,
    redis_error_streams,
    tls_server_names,
    tshark_fields,
)

RCODES = {"0": "NOERROR", "3": "NXDOMAIN", "5": "REFUSED"}
TLS_VERSIONS = {"0x0303": "TLSv1.2", "0x0304": "TLSv1.3"}


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
    assert l4_flows(DEMO_PCAP) == set(sidecar["http_streams"]) | set(sidecar["dns_flows"]) | protocol_streams(
        sidecar)


def test_tshark_finds_the_http2_answers_and_the_failing_grpc_calls_the_clients_saw(sidecar: dict) -> None:
    statuses, failing = http2_statuses(DEMO_PCAP)
    assert dict(statuses) == sidecar["h2_by_status"] and "500" in statuses
    assert failing == set(sidecar["h2_500_streams"]) and 0 < len(failing) < len(sidecar["h2_streams"])
    codes, failing = grpc_statuses(DEMO_PCAP)
    assert dict(codes) == sidecar["grpc_by_status"] and "0" in codes and len(codes) > 1
    assert failing == set(sidecar["grpc_error_streams"]) and 0 < len(failing) < len(sidecar["grpc_streams"])


def test_tshark_finds_the_tls_server_names_and_the_redis_errors_the_clients_saw(sidecar: dict) -> None:
    names = tls_server_names(DEMO_PCAP)
    assert set(names) == set(sidecar["tls_streams"])
    internal = {flow for flow, name in names.items() if name.endswith(".internal")}
    assert internal == set(sidecar["tls_internal_streams"]) and 0 < len(internal) < len(names)
    chosen = tshark_fields(DEMO_PCAP, "tls.handshake.type == 2",
                           ["tls.handshake.version", "tls.handshake.extensions.supported_version"])
    versions = Counter(TLS_VERSIONS[(row + [""])[1] or row[0]] for row in chosen)
    assert dict(versions) == sidecar["tls_by_version"] and len(versions) == 2
    errors = redis_error_streams(DEMO_PCAP)
    assert errors == set(sidecar["redis_error_streams"]) and 0 < len(errors) < len(sidecar["redis_streams"])


def test_statuses_and_rcodes_match_the_clients_log(sidecar: dict) -> None:
    statuses = Counter(row[0] for row in tshark_fields(DEMO_PCAP, "http.response", ["http.response.code"]))
    assert dict(statuses) == sidecar["http_by_status"]
    assert {"200", "404", "500"} <= set(statuses)
    rcodes = Counter(RCODES[row[0]] for row in tshark_fields(DEMO_PCAP, "dns.flags.response == 1",
                                                              ["dns.flags.rcode"]))
    assert dict(rcodes) == sidecar["dns_by_rcode"]
    keepalive = Counter(row[0] for row in tshark_fields(DEMO_PCAP, "http.request", ["tcp.stream"]))
    assert max(keepalive.values()) > 1, "some connections carry several requests (keep-alive)"
