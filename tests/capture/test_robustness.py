"""`Capture.feed` never raises on bad packets: real packets with bytes flipped and cut short, under
every link type, through both the per-packet path and `consume`, with reassembling handlers."""

from __future__ import annotations

import random

from capture import Capture, CaptureConfig, open_sources
from tests.capture.tcpbuild import Recorder
from tests.conftest import PCAPS

SOURCES = ["sv_http_vlan_keepalive-11req.pcap", "zeek_dns_udp-tcp_ipv4-ipv6.pcap",
           "sv_http_ipv6_null-linktype.pcap", "sv_http_linux-sll_rst-injection.pcap"]
LINKTYPES = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147]


def _mutants(seed: int, count: int) -> list[tuple[int, int, bytes, int]]:
    rng = random.Random(seed)
    originals = [pkt for name in SOURCES for pkt in open_sources([str(PCAPS / name)])]
    out = []
    for i in range(count):
        ts, lt, data, wirelen = rng.choice(originals)
        buf = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            if buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        if rng.random() < 0.3:
            buf = buf[: rng.randrange(len(buf) + 1)]
        if rng.random() < 0.2:
            lt = rng.choice(LINKTYPES)
        out.append((ts + i * 1000 - rng.randrange(10**9), lt, bytes(buf), max(len(buf), wirelen)))
    return out


def _capture() -> Capture:
    cap = Capture(CaptureConfig(ooo_max_bytes=4096), handler_factory=lambda meta: Recorder(meta))
    cap.warn = lambda _t: None
    return cap


def test_mutated_packets_never_raise() -> None:
    packets = _mutants(seed=2024, count=6000)
    one = _capture()
    for pkt in packets:
        one.feed(*pkt)
    one.finish()
    bulk = _capture()
    bulk.consume(packets)
    bulk.finish()
    c1, c2 = one.counters, bulk.counters
    assert c1["packets_read"] == c2["packets_read"] == len(packets)
    assert c1 == c2
    assert c1["packets_skipped"] > 0 and c1["packets_streamed"] > 0
    assert c1["handler_errors"] == 0
