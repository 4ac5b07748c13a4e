"""Garbage never raises: random events (data fragments of real messages mixed with noise, gaps,
close) into every dissector; whatever items come out are well formed."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.dissect import NodeInfo, make_handler_factory
from capture.dissect.dnswire import parse
from capture.model import NS, StreamMeta
from capture.names import NameTable
from tests.items.schema import check_item

PIECES = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"Content-Length: 5\r\n", b"\r\n", b"hello",
          b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"HEAD /x HTTP/1.0\r\n",
          b"HTTP/1.1 100 Continue\r\n\r\n", b"Content-Encoding: gzip\r\n", b"\x1f\x8b\x08\x00garbage",
          b"CONNECT a:1 HTTP/1.1\r\n", b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", b"\x00\xff\n\n",
          b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03", b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00",
          b"\x15\x03\x03\x00\x02\x02\x28", b"\x14\x03\x03\x00\x01\x01", b"\x17\x03\x03\x00\x05hello",
          b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"+OK\r\n", b"-ERR x\r\n", b"$-1\r\n",
          b"*3\r\n$7\r\nmessage\r\n", b">3\r\n", b">0\r\n", b"%1\r\n+a\r\n:1\r\n", b"$5\r\nhel",
          b"!3\r\nERR\r\n", b"_\r\n"]
EVENT = st.one_of(
    st.tuples(st.just("data"), st.integers(0, 1), st.lists(st.sampled_from(PIECES) | st.binary(max_size=20),
                                                             max_size=6)),
    st.tuples(st.just("gap"), st.integers(0, 1), st.integers(1, 5000)),
)


def _run(meta: StreamMeta, events: list) -> list[dict]:
    items: list[dict] = []
    handler = make_handler_factory(items.append, NodeInfo("n", "10.0.0.9"), NameTable())(meta)
    ts = meta.first_ts_ns
    for kind, direction, arg in events:
        ts += 1000
        if kind == "data":
            data = b"".join(arg)
            if data:
                handler.on_data(direction, data, ts)
        else:
            handler.on_gap(direction, arg, ts)
    handler.on_close(ts + 1, "fin")
    return items


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, max_size=12), st.sampled_from([80, 8002, 53, 22, 443, 6379]))
def test_tcp_dissectors_never_raise(events: list, port: int) -> None:
    meta = StreamMeta("000000000001.pcap", "tcp", "10.0.0.1", 40000, "10.0.0.2", port, 1_700_000_000 * NS)
    for item in _run(meta, events):
        check_item(item)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_dns_over_udp_never_raises(datagrams: list[bytes]) -> None:
    meta = StreamMeta("000000000002_udp.pcap", "udp", "10.0.0.1", 40000, "10.0.0.2", 53, 1_700_000_000 * NS)
    events = [("data", i % 2, [d]) for i, d in enumerate(datagrams)]
    for item in _run(meta, events):
        check_item(item)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=12, max_size=120), st.integers(0, 0xFFFF))
def test_wire_parser_never_raises_on_mutated_headers(body: bytes, counts: int) -> None:
    wire = body[:4] + struct.pack("!4H", counts & 3, counts >> 14, 1, counts & 1) + body[12:]
    msg = parse(wire)
    assert msg.error is None or isinstance(msg.error, str)
