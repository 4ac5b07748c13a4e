"""What tshark says a capture holds, as `flow_id` texts (`tcp 10.213.0.2:41234 > 10.213.0.1:80`),
to compare with what the demo clients did (`runtime.demo.livenet.expected_flows`) and with what
kflpcap kept (a repository's .pcap.gz can be given directly: tshark reads gzip)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from runtime.demo.livenet import flow_id
from runtime.demo.protocol_servers import GRPC_PORT, H2_PORT, REDIS_PORT, TLS_PORT

SERVER_PORTS = frozenset({53, 80, 8080, H2_PORT, GRPC_PORT, TLS_PORT, REDIS_PORT})
# tshark decodes HTTP/2 with prior knowledge only on the ports it is told
AS_HTTP2 = ["-d", f"tcp.port=={H2_PORT},http2", "-d", f"tcp.port=={GRPC_PORT},http2"]
FLOW = ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"]


def tshark_fields(pcap: Path, display_filter: str, fields: list[str], options: Sequence[str] = ()
                  ) -> list[list[str]]:
    """One list of field values per packet matching `display_filter` (several occurrences of a field
    joined by `|`); `options` go before the filter (e.g. `AS_HTTP2`)."""
    argv = ["tshark", "-n", "-r", str(pcap), *options, "-Y", display_filter, "-T", "fields",
            "-E", "separator=\t", "-E", "aggregator=|"]
    for field in fields:
        argv += ["-e", field]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def _flow(l4: str, src: str, sport: str, dst: str, dport: str, client_is_src: bool) -> str:
    if client_is_src:
        return flow_id(l4, src, int(sport), dst, int(dport))
    return flow_id(l4, dst, int(dport), src, int(sport))


def http500_streams(pcap: Path) -> set[str]:
    """TCP connections carrying an HTTP response with status 500."""
    fields = ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"]
    rows = tshark_fields(pcap, "http.response.code == 500", fields)
    return {_flow("tcp", *row, client_is_src=False) for row in rows}


def dns_flows(pcap: Path) -> set[str]:
    """UDP flows and TCP connections carrying DNS queries or answers."""
    fields = ["ip.src", "ip.dst", "udp.srcport", "udp.dstport", "tcp.srcport", "tcp.dstport",
              "dns.flags.response"]
    flows = set()
    for src, dst, usport, udport, tsport, tdport, response in tshark_fields(pcap, "dns and not icmp", fields):
        l4, sport, dport = ("udp", usport, udport) if usport else ("tcp", tsport, tdport)
        flows.add(_flow(l4, src, sport, dst, dport, client_is_src=response in ("0", "False")))
    return flows


def l4_flows(pcap: Path) -> set[str]:
    """Every TCP and UDP flow over IPv4 (not the copies inside ICMP errors); the client is the side
    whose port is not a server port."""
    fields = ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"]
    flows = set()
    rows = tshark_fields(pcap, "ip and (tcp or udp) and not icmp", fields)
    for src, dst, tsport, tdport, usport, udport in rows:
        l4, sport, dport = ("tcp", tsport, tdport) if tsport else ("udp", usport, udport)
        flows.add(_flow(l4, src, sport, dst, dport, client_is_src=int(sport) not in SERVER_PORTS))
    return flows


def http2_statuses(pcap: Path) -> tuple[Counter, set[str]]:
    """HTTP/2 (not gRPC) answers by `:status`, and the connections with one of 500 or more."""
    statuses: Counter = Counter()
    failing = set()
    rows = tshark_fields(pcap, f"tcp.srcport == {H2_PORT} and http2.headers.status",
                         [*FLOW, "http2.headers.status"], AS_HTTP2)
    for *flow, codes in rows:
        statuses.update(codes.split("|"))
        if any(int(code) >= 500 for code in codes.split("|")):
            failing.add(_flow("tcp", *flow, client_is_src=False))
    return statuses, failing


def grpc_statuses(pcap: Path) -> tuple[Counter, set[str]]:
    """gRPC calls by `grpc-status` (from trailers, or the headers of a trailers-only answer), and the
    connections with a call whose status is not 0."""
    statuses: Counter = Counter()
    failing = set()
    rows = tshark_fields(pcap, 'http2.header.name == "grpc-status"', [*FLOW, "http2.header.name",
                                                                      "http2.header.value"], AS_HTTP2)
    for *flow, names, values in rows:
        for name, value in zip(names.split("|"), values.split("|"), strict=True):
            if name == "grpc-status":
                statuses[value] += 1
                if value != "0":
                    failing.add(_flow("tcp", *flow, client_is_src=False))
    return statuses, failing


def tls_server_names(pcap: Path) -> dict[str, str]:
    """Connection -> the server name of its ClientHello."""
    rows = tshark_fields(pcap, "tls.handshake.type == 1", [*FLOW, "tls.handshake.extensions_server_name"])
    return {_flow("tcp", *flow, client_is_src=True): name for *flow, name in rows}


def redis_error_streams(pcap: Path) -> set[str]:
    """Connections where redis-server sent an error reply."""
    return {_flow("tcp", *row, client_is_src=False) for row in tshark_fields(pcap, "resp.error", FLOW)}
