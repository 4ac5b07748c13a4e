"""What tshark says a capture holds, as `flow_id` texts (`tcp 10.213.0.2:41234 > 10.213.0.1:80`),
to compare with what the demo clients did (`runtime.demo.livenet.expected_flows`) and with what
kflpcap kept (a repository's .pcap.gz can be given directly: tshark reads gzip)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runtime.demo.livenet import flow_id

SERVER_PORTS = frozenset({53, 80, 8080})


def tshark_fields(pcap: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    """One list of field values per packet matching `display_filter`."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-E", "separator=\t"]
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
