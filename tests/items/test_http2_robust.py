"""HTTP/2 garbage never raises: real frames (from the `h2` library) cut, reordered and mixed with noise
and gaps, through the registry (probe + dissector); whatever items come out are well formed. Also
without network namespaces: the frames are made in memory."""

from __future__ import annotations

from functools import cache

from h2.config import H2Configuration
from h2.connection import H2Connection
from hyperframe.frame import DataFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.dissect import NodeInfo, make_handler_factory
from capture.model import NS, StreamMeta
from capture.names import NameTable
from tests.items.schema import check_item


@cache
def pieces() -> list[bytes]:
    """Client and server bytes of a real exchange, frame by frame (preface and SETTINGS first)."""
    client = H2Connection(H2Configuration(client_side=True))
    server = H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    out = [client.data_to_send(), server.data_to_send()]
    server.receive_data(out[0])
    client.receive_data(out[1])
    out += [client.data_to_send(), server.data_to_send()]
    for sid, path in ((1, "/a"), (3, "/b?x=1"), (5, "/kfl.test.Svc/Call")):
        grpc = path.startswith("/kfl")
        headers = [(":method", "POST" if grpc else "GET"), (":scheme", "http"), (":path", path),
                   (":authority", "svc:8080"), ("x-tenant", "acme")]
        client.send_headers(sid, headers + ([("content-type", "application/grpc")] if grpc else []),
                            end_stream=not grpc)
        if grpc:
            client.send_data(sid, b"\x00\x00\x00\x00\x03\x08\x96\x01", end_stream=True)
        out.append(client.data_to_send())
        server.receive_data(out[-1])
        kind = "application/grpc" if grpc else "text/plain"
        server.send_headers(sid, [(":status", "200"), ("content-type", kind)])
        server.send_data(sid, b"\x00\x00\x00\x00\x02\x08\x01" if grpc else b"hello")
        if grpc:
            server.send_headers(sid, [("grpc-status", "5"), ("grpc-message", "not%20found")], end_stream=True)
        else:
            server.end_stream(sid)
        out.append(server.data_to_send())
    client.send_headers(7, [(":method", "GET"), (":scheme", "http"), (":path", "/reset"),
                            (":authority", "svc:8080")])
    client.reset_stream(7, error_code=8)
    client.close_connection()
    out.append(client.data_to_send())
    late = DataFrame(7, b"sent before the reset arrived", flags=["END_STREAM"]).serialize()
    out += [late, late]  # from the server, then from the client
    return out


def _meta(port: int) -> StreamMeta:
    return StreamMeta("000000000001.pcap", "tcp", "10.0.0.1", 40000, "10.0.0.2", port, 5 * NS)


def test_in_order_exchange_on_any_port() -> None:
    """The same bytes in order (client pieces at even, server at odd positions): one item per stream;
    DATA on a stream already reset opens nothing."""
    for port in (8080, 50051, 7000):
        items: list[dict] = []
        handler = make_handler_factory(items.append, NodeInfo("n", "10.0.0.9"), NameTable())(_meta(port))
        for n, data in enumerate(pieces()):
            handler.on_data(n % 2, data, 5 * NS + n)
        handler.on_close(6 * NS, "fin")
        got = [(it["protocol"]["abbr"], it["request"]["url"], it["response"]["status"],
                it.get("error", {}).get("type")) for it in items]
        assert got == [("HTTP/2", "/a", 200, None), ("HTTP/2", "/b?x=1", 200, None),
                       ("gRPC", "/kfl.test.Svc/Call", 200, None), ("HTTP/2", "/reset", 0, "connection")]
        grpc = items[2]["response"]["grpc"]
        assert (grpc["status"], grpc["statusName"], grpc["message"]) == (5, "NOT_FOUND", "not found")
        assert items[2]["request"]["grpc"]["messages"] == [{"compressed": False, "length": 3,
                                                            "fields": {"1": 150}}]
        for item in items:
            check_item(item)


EVENT = st.one_of(
    st.tuples(st.just("data"), st.integers(0, 1),
              st.lists(st.integers(0, 40).map(lambda i: pieces()[i % len(pieces())]) | st.binary(max_size=30),
                       max_size=4)),
    st.tuples(st.just("cut"), st.integers(0, 1), st.integers(0, 12)),
    st.tuples(st.just("gap"), st.integers(0, 1), st.integers(1, 5000)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(EVENT, max_size=25), port=st.sampled_from([8080, 50051, 7000]))
def test_http2_through_the_registry_never_raises(events: list, port: int) -> None:
    meta = _meta(port)
    items: list[dict] = []
    handler = make_handler_factory(items.append, NodeInfo("n", "10.0.0.9"), NameTable())(meta)
    ts = meta.first_ts_ns
    handler.on_data(0, pieces()[0], ts)  # the client preface: the stream is HTTP/2
    tail = b""
    for kind, direction, arg in events:
        ts += 1000
        if kind == "data":
            data = tail + b"".join(arg)
            tail = b""
            if data:
                handler.on_data(direction, data, ts)
        elif kind == "cut":
            tail = pieces()[arg % len(pieces())][: arg * 3]
        else:
            handler.on_gap(direction, arg, ts)
    handler.on_close(ts + 1, "fin")
    for item in items:
        check_item(item)


def test_goaway_refuses_the_streams_above_its_last() -> None:
    client = H2Connection(H2Configuration(client_side=True))
    server = H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    for sid in (1, 3):
        client.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", f"/s{sid}"),
                                  (":authority", "svc")], end_stream=True)
    wire = [(0, client.data_to_send())]
    server.receive_data(wire[0][1])
    server.send_headers(1, [(":status", "200")], end_stream=True)
    server.close_connection(error_code=0, last_stream_id=1)
    wire.append((1, server.data_to_send()))
    items: list[dict] = []
    handler = make_handler_factory(items.append, NodeInfo("n", "10.0.0.9"), NameTable())(_meta(7000))
    for n, (direction, data) in enumerate(wire):
        handler.on_data(direction, data, 5 * NS + n)
    handler.on_close(6 * NS, "fin")
    got = [(it["request"]["path"], it["response"]["status"], it.get("error", {}).get("msg"))
           for it in items]
    refused = "stream 3 refused by the server's GOAWAY NO_ERROR (0x0)"
    assert got == [("/s1", 200, None), ("/s3", 0, refused)]
    assert items[1]["error"]["type"] == "connection"
