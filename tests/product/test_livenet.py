"""The live test network: real servers, real clients, a dumpcap capture that tshark agrees with."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from runtime.demo.clients import ClientPlan
from runtime.demo.livenet import LiveNet, expected_flows, protocol_streams, record_reference
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

pytestmark = pytest.mark.live


def test_capture_holds_exactly_what_the_clients_did(livenet: LiveNet, tmp_path: Path) -> None:
    pcap = tmp_path / "reference.pcap"
    log, want = record_reference(livenet, pcap, ClientPlan.quick())
    assert want == expected_flows(log, livenet)
    assert want["http500_streams"] and want["dns_flows"]
    assert http500_streams(pcap) == set(want["http500_streams"])
    assert dns_flows(pcap) == set(want["dns_flows"])
    assert l4_flows(pcap) == set(want["http_streams"]) | set(want["dns_flows"])


def test_http2_grpc_tls_and_redis_traffic_is_what_the_clients_saw(tmp_path: Path) -> None:
    """The generator's part for the demo's other protocols (make_demo's plan, fewer connections)."""
    if os.geteuid() != 0 or not shutil.which("dumpcap"):
        pytest.skip("needs root and dumpcap")
    pcap = tmp_path / "protocols.pcap"
    plan = ClientPlan(keepalive_connections=1, oneshot_connections=1, udp_queries=1, tcp_queries=0,
                      h2_connections=4, grpc_connections=6, tls_connections=5, redis_connections=5)
    with LiveNet() as net:
        net.start_servers(protocols=True)
        log, want = record_reference(net, pcap, plan)
    assert l4_flows(pcap) == set(want["http_streams"]) | set(want["dns_flows"]) | protocol_streams(want)
    statuses, failing = http2_statuses(pcap)
    assert dict(statuses) == want["h2_by_status"] and failing == set(want["h2_500_streams"])
    codes, failing = grpc_statuses(pcap)
    assert dict(codes) == want["grpc_by_status"] and failing == set(want["grpc_error_streams"])
    names = tls_server_names(pcap)
    assert names == {flow: e["sni"] for flow, e in zip(want["tls_streams"], sorted(
        log["tls"], key=lambda e: e["local_port"]), strict=True)}
    assert {e["version"] for e in log["tls"]} == {"TLSv1.2", "TLSv1.3"}
    assert redis_error_streams(pcap) == set(want["redis_error_streams"]) and want["redis_errors"] >= 2


def test_client_mix_covers_keepalive_statuses_and_dns_answers(livenet: LiveNet) -> None:
    log = livenet.run_clients(ClientPlan(keepalive_connections=3, oneshot_connections=4, udp_queries=9,
                                         tcp_queries=2))
    per_connection = defaultdict(list)
    for request in log["http"]:
        per_connection[(request["server_port"], request["local_port"])].append(request)
    assert any(len(reqs) > 1 for reqs in per_connection.values()), "keep-alive reuses connections"
    assert all(len(reqs) == 1 for reqs in per_connection.values() if not reqs[0]["keepalive"])
    assert {r["server_port"] for r in log["http"]} == {80, 8080}
    assert {q["rcode"] for q in log["dns"]} == {"NOERROR", "NXDOMAIN", "REFUSED"}
    answers = {(q["name"], q["type"]): q["answers"] for q in log["dns"]}
    assert answers[("shop.demo.internal.", "A")] == [livenet.server_ip]
    assert answers[("www.demo.internal.", "A")] == [livenet.server_ip]  # through the CNAME
    assert answers[("api.demo.internal.", "AAAA")] == ["2001:db8::1"]
    assert {q["transport"] for q in log["dns"]} == {"udp", "tcp"}


def test_probe_is_captured_and_is_neither_http_nor_dns(livenet: LiveNet, tmp_path: Path) -> None:
    pcap = tmp_path / "probe.pcap"
    with livenet.capture(pcap):
        livenet.send_probe(3)
    rows = tshark_fields(pcap, "udp.dstport == 9 and not icmp", ["ip.src", "ip.dst"])
    assert rows == [[livenet.client_ip, livenet.server_ip]] * 3
    assert not dns_flows(pcap) and not http500_streams(pcap)


def test_network_is_gone_after_exit() -> None:
    with LiveNet() as net:
        names = (net.client_ns, net.server_ns)
        links = (net.capture_iface, net.bridge)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in netns for name in names)
    for link in links:
        assert subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0
