"""The live test network: real servers, real clients, a dumpcap capture that tshark agrees with."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from runtime.demo.clients import ClientPlan
from runtime.demo.livenet import LiveNet, expected_flows, record_reference
from tests.product.tshark_oracle import dns_flows, http500_streams, l4_flows, tshark_fields

pytestmark = pytest.mark.live


def test_capture_holds_exactly_what_the_clients_did(livenet: LiveNet, tmp_path: Path) -> None:
    pcap = tmp_path / "reference.pcap"
    log, want = record_reference(livenet, pcap, ClientPlan.quick())
    assert want == expected_flows(log, livenet)
    assert want["http500_streams"] and want["dns_flows"]
    assert http500_streams(pcap) == set(want["http500_streams"])
    assert dns_flows(pcap) == set(want["dns_flows"])
    assert l4_flows(pcap) == set(want["http_streams"]) | set(want["dns_flows"])


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
