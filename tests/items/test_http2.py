"""HTTP/2 (h2c) and gRPC items from real traffic: hypercorn and grpcio servers, httpx / grpcio / h2
clients in network namespaces, recorded by dumpcap. Each stream's method, path and status — and each
call's gRPC method and grpc-status — must equal what tshark decodes from the same capture.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.all import rdpcap, wrpcap

import kfl
from capture import Capture, CaptureConfig, open_sources
from capture.dissect import DissectConfig, ItemFactory
from capture.dissect.http2 import Http2
from capture.dissect.httpitem import Message, canonical
from capture.names import NameTable
from tests.items.h2live import GRPC_PORT, H2_PORT, Recording, record
from tests.items.schema import check_item
from tests.items.util import NODE, answered, items_of
from tests.netns import netns_available

pytestmark = pytest.mark.live

Streams = dict[tuple[int, int], dict[str, Any]]  # (client port, stream id) -> method, path, status, grpc


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    if not netns_available() or not shutil.which("dumpcap"):
        pytest.skip("needs root, network namespaces and dumpcap")
    return record(tmp_path_factory.mktemp("h2") / "h2grpc.pcap")


@pytest.fixture(scope="module")
def items(rec: Recording) -> list[dict]:
    return items_of(rec.pcap)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def tshark_streams(pcap: Path) -> Streams:
    """Per HTTP/2 stream, what tshark decodes from its HEADERS frames."""
    out = subprocess.run(["tshark", "-n", "-r", str(pcap), "-d", f"tcp.port=={GRPC_PORT},http2",
                          "-Y", "http2.type == 1", "-T", "json", "--no-duplicate-keys", "-J", "tcp http2"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    streams: Streams = defaultdict(dict)
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        sport, dport = int(layers["tcp"]["tcp.srcport"]), int(layers["tcp"]["tcp.dstport"])
        client = dport if sport in (H2_PORT, GRPC_PORT) else sport
        for http2 in _list(layers.get("http2", [])):
            for frame in _list(http2.get("http2.stream", [])):
                if frame.get("http2.type") != "1":
                    continue
                st = streams[(client, int(frame["http2.streamid"]))]
                for header in _list(frame.get("http2.header", [])):
                    name, value = header["http2.header.name"], header["http2.header.value"]
                    if name == ":method":
                        st["method"] = value
                    elif name == ":path":
                        st["path"] = value
                    elif name == ":status" and not 100 <= int(value) < 200:
                        st["status"] = int(value)
                    elif name == "grpc-status":
                        st["grpc"] = int(value)
    return streams


def ours(items: list[dict], abbr: tuple[str, ...] = ("HTTP/2", "gRPC")) -> Counter:
    """(client port, method, raw :path, status, grpc-status) of each HTTP/2 item."""
    return Counter((int(it["src"]["port"]), it["request"]["method"], it["request"]["url"],
                    it.get("response", {}).get("status"),
                    it.get("response", {}).get("grpc", {}).get("status"))
                   for it in items if it["protocol"]["abbr"] in abbr)


def oracle(streams: Streams, skip_ports: set[int]) -> Counter:
    return Counter((port, st.get("method", ""), st.get("path", ""), st.get("status"), st.get("grpc"))
                   for (port, _sid), st in streams.items() if port not in skip_ports and "method" in st)


def test_items_equal_tshark_per_stream(rec: Recording, items: list[dict]) -> None:
    streams = tshark_streams(rec.pcap)
    # The Upgrade: h2c connection has its own test (the HTTP/1.1 -> HTTP/2 hand-off's entry point);
    # /slow was reset before its answer: tshark has no status for it, the item has an error instead.
    upgraded = {port for port, *_ in ours(items, ("HTTP",))}
    reset = {k for k, st in streams.items() if st.get("path") == "/slow"}
    expected = oracle({k: v for k, v in streams.items() if k not in reset}, upgraded)
    got = Counter({k: n for k, n in ours(items).items() if k[0] not in upgraded and k[2] != "/slow"})
    assert got == expected
    assert sum(got.values()) == len(rec.done["h2-client"]) + len(rec.done["grpc-client"]) + 1
    for item in items:
        check_item(item)


def test_grpc_method_and_status_equal_tshark_and_the_client(rec: Recording, items: list[dict]) -> None:
    streams = tshark_streams(rec.pcap)
    tshark = sorted((st["path"].rsplit("/", 1)[1], st["grpc"]) for st in streams.values() if "grpc" in st
                    and "path" in st)
    calls = [it for it in items if it["protocol"]["abbr"] == "gRPC"]
    got = sorted((it["request"]["grpc"]["method"], it["response"]["grpc"]["status"]) for it in calls)
    assert got == tshark == sorted((c["method"], c["code"]) for c in rec.done["grpc-client"])
    for it in calls:
        assert it["request"]["grpc"]["service"] == "kfl.test.Inventory"
        assert it["response"]["headers"]["Grpc-Status"] == str(it["response"]["grpc"]["status"])
    failed = kfl.compile("grpc and response.grpc.status != 0")
    assert [it["request"]["grpc"]["method"] for it in calls if failed.match(it)] == ["Create"]
    create = kfl.compile('grpc and request.grpc.method == "Create"')
    [it] = [it for it in calls if create.match(it)]
    assert it["response"]["grpc"]["statusName"] == "NOT_FOUND"
    assert it["response"]["grpc"]["message"] == "no such shelf: 42"
    assert it["request"]["grpc"]["messages"][0]["fields"] == {"1": "shelf-42"}
    assert kfl.compile('grpc and request.grpc.messages[0].fields["2"] == 42').match(
        next(c for c in calls if c["request"]["grpc"]["method"] == "GetItem"))


def test_grpc_messages_decode_as_field_trees(items: list[dict]) -> None:
    [call] = [it for it in items if it["protocol"]["abbr"] == "gRPC"
              and it["request"]["grpc"]["method"] == "ListItems"]
    grpc = call["response"]["grpc"]
    assert (grpc["requestMessages"], grpc["responseMessages"]) == (1, 3)
    assert [m["fields"] for m in grpc["messages"]] == [
        {"1": f"item-{n}", "2": n, "3": {"1": "warehouse-7", "2": 3}} for n in range(3)]
    assert all(not m["compressed"] and m["length"] == 27 for m in grpc["messages"])


def test_concurrent_streams_pair_by_stream_id(rec: Recording, items: list[dict]) -> None:
    """Eight requests in flight on one connection, answered out of order: each item pairs its own."""
    concurrent = [it for it in items if it["request"]["path"].startswith("/items/")]
    assert len(concurrent) == 8 and len({it["src"]["port"] for it in concurrent}) == 1
    for it in concurrent:
        n = it["request"]["path"].rsplit("/", 1)[1]
        assert it["request"]["queryString"] == {"page": n}
        assert it["response"]["status"] == 200 and "error" not in it
        assert it["request"]["httpVersion"] == it["response"]["httpVersion"] == "HTTP/2.0"
        assert it["request"]["headers"][":authority"] == f"{rec.server_ip}:{H2_PORT}"


def test_large_body_over_many_data_frames(items: list[dict]) -> None:
    [big] = [it for it in items if it["request"]["path"] == "/big"]
    assert big["response"]["bodySize"] == 200_000
    assert big["response"]["content"]["truncated"] is True
    assert big["responseSize"] > 200_000 + 9 * (200_000 // 16384)  # frame headers counted
    assert "error" not in big
    [gz] = [it for it in items if it["request"]["path"] == "/gzip"]
    assert gz["response"]["content"]["size"] == 900  # Content-Encoding: gzip decoded


def test_hpack_dynamic_table_reuse(rec: Recording, items: list[dict]) -> None:
    """Later requests refer to the custom headers by dynamic-table index (tshark shows the indexes);
    they still decode."""
    dynamic = 'http2.headers.path matches "^/again/" and http2.header.index >= 62'
    reuse = subprocess.run(["tshark", "-n", "-r", str(rec.pcap), "-Y", dynamic, "-T", "fields",
                            "-e", "frame.number"],
                           capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert len(reuse) == 4
    [first] = [it for it in items if it["request"]["path"] == "/first"]
    again = [it for it in items if it["request"]["path"].startswith("/again/")]
    assert len(again) == 4
    for it in again:
        assert it["request"]["headers"]["X-Tenant"] == "acme-corporation"
        assert it["request"]["headers"]["Authorization"] == "Bearer " + "t0ken" * 8
        assert it["response"]["headers"]["X-Served-By"] == "hypercorn-h2"
        assert it["requestSize"] < first["requestSize"] - len("acme-corporation")  # sent by index


def test_rst_stream_is_an_item_error(items: list[dict]) -> None:
    [slow] = [it for it in items if it["request"]["path"] == "/slow"]
    assert slow["error"]["type"] == "connection" and "CANCEL" in slow["error"]["msg"]
    assert slow["response"]["status"] == 0 and slow["response"]["headers"] == {}
    [after] = [it for it in items if it["request"]["path"] == "/after-reset"]
    assert after["response"]["status"] == 200 and "error" not in after


def _events(pcap: Path, port: int) -> Iterator[tuple[Any, list[tuple[int, bytes | int, int]]]]:
    """Each TCP stream's (meta, [(direction, data or gap length, ts)]) as the Capture hands them."""
    streams: list = []

    class Recorder:
        def __init__(self, meta: Any) -> None:
            self.meta, self.events = meta, []
            streams.append(self)

        def on_data(self, d: int, data: bytes, ts: int) -> None:
            self.events.append((d, bytes(data), ts))

        def on_gap(self, d: int, length: int, ts: int) -> None:
            self.events.append((d, length, ts))

        def on_close(self, ts: int, reason: str) -> None:
            pass

    cap = Capture(CaptureConfig(), Recorder)
    cap.consume(open_sources([str(pcap)], on_error=lambda _t: None))
    cap.finish()
    for s in streams:
        if port in (s.meta.server_port, s.meta.client_port):
            yield s.meta, s.events


def _upgrade_request(raw: bytes, ts: int) -> Message:
    head = raw.split(b"\r\n")
    msg = Message(ts)
    msg.method, msg.url, _ = head[0].split(b" ")
    for line in head[1:]:
        if line:
            name, _, value = line.partition(b":")
            msg.headers[canonical(name)] = value.strip().decode()
    msg.done = msg.head_done = True
    return msg


def test_upgrade_h2c_through_the_hand_off_entry_point(rec: Recording) -> None:
    """HTTP/1.1 `Upgrade: h2c` + 101: `Http2.upgraded` takes the bytes after both heads."""
    [(meta, events)] = [(m, e) for m, e in _events(rec.pcap, H2_PORT)
                        if any(isinstance(d, bytes) and d.startswith(b"GET /upgraded") for _, d, _ in e)]
    got: list[dict] = []
    h2 = None
    heads = [b"", b""]
    for d, data, ts in events:
        if h2 is None:
            heads[d] += data
            if b"\r\n\r\n" not in heads[1]:
                continue
            client_head, _, client_rest = heads[0].partition(b"\r\n\r\n")
            server_head, _, server_rest = heads[1].partition(b"\r\n\r\n")
            assert server_head.startswith(b"HTTP/1.1 101")
            h2 = Http2(ItemFactory(meta, NODE, NameTable(), got.append), DissectConfig())
            h2.upgraded("h2c", _upgrade_request(client_head, ts), 0)
            for direction, rest in ((0, client_rest), (1, server_rest)):
                if rest:
                    h2.on_data(direction, rest, ts)
        elif isinstance(data, bytes):
            h2.on_data(d, data, ts)
    h2.on_close(events[-1][2], "fin")
    assert [(it["request"]["method"], it["request"]["url"], it["response"]["status"]) for it in got] == [
        (c["method"], c["path"], c["status"]) for c in rec.done["upgrade-client"]]
    first = got[0]
    assert first["request"]["httpVersion"] == "HTTP/1.1" and first["response"]["httpVersion"] == "HTTP/2.0"
    assert first["request"]["queryString"] == {"via": "h2c"}
    assert all(it["protocol"]["abbr"] == "HTTP/2" and "error" not in it for it in got)


def _cut_before(pcap: Path, out: Path, port: int, path: str) -> None:
    """A copy of `pcap` whose connection to `port` starts at the packet carrying the `path` request."""
    frame = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", f'http2.headers.path == "{path}"',
                            "-T", "fields", "-e", "frame.number"], capture_output=True, text=True,
                           timeout=120, check=True).stdout.split()[0]
    packets = rdpcap(str(pcap))
    client_port = packets[int(frame) - 1]["TCP"].sport
    wrpcap(str(out), [p for n, p in enumerate(packets, 1) if n >= int(frame) or "TCP" not in p
                      or client_port not in (p["TCP"].sport, p["TCP"].dport)])


def test_upgrade_h2c_through_the_registry(rec: Recording, items: list[dict]) -> None:
    """The whole capture through `kflpcap items`' dissectors: HTTP/1.1's 101 hands the connection to
    HTTP/2 (its `upgrades`), whose items answer the upgrade request (stream 1) and every request after
    it; the 101 exchange itself stays an HTTP/1.1 item, as tshark shows it."""
    upgraded = [it for it in items if it["request"].get("url") in ("/upgraded?via=h2c", "/after-upgrade")
                and it["protocol"]["abbr"] == "HTTP/2"]
    assert [(it["request"]["method"], it["request"]["url"], it["response"]["status"]) for it in upgraded] == [
        (c["method"], c["path"], c["status"]) for c in rec.done["upgrade-client"]]
    assert all(it["protocol"]["abbr"] == "HTTP/2" and "error" not in it for it in upgraded)
    assert len({it["stream"] for it in upgraded}) == 1
    stream = upgraded[0]["stream"]
    [switch] = [it for it in items if it["stream"] == stream and it["protocol"]["abbr"] == "HTTP"]
    assert (switch["response"]["status"], switch["index"], upgraded[0]["index"]) == (101, 0, 1)
    check_item(upgraded[0])


def test_mid_stream_pickup_degrades_gracefully(rec: Recording, items: list[dict], tmp_path: Path) -> None:
    """Picked up at the /big request: the HPACK tables hold entries from before; fields that use them
    are reported lost, everything else decodes, nothing is invented."""
    cut = tmp_path / "cut.pcap"
    _cut_before(rec.pcap, cut, H2_PORT, "/big")
    full = {(it["request"]["url"], it["response"]["status"]) for it in items
            if it["protocol"]["abbr"] == "HTTP/2" and answered(it)}
    later = [it for it in items_of(cut) if it["protocol"]["abbr"] == "HTTP/2"
             and it["request"]["url"] not in ("/slow", "/after-reset", "/after-upgrade", "/upgraded?via=h2c")]
    assert [it["request"]["url"] for it in later] == ["/big", "/gzip", "/missing", "/echo",
                                                     *(f"/again/{n}" for n in range(4))]
    for it in later:
        assert (it["request"]["url"], it["response"]["status"]) in full
        check_item(it)
    lost = [it for it in later if "not decodable" in it.get("error", {}).get("msg", "")]
    assert lost, "fields indexed before the pickup are reported"
    assert all("X-Tenant" not in it["request"]["headers"] for it in lost if it["request"]["path"] == "/big")


def _feed(meta: Any, events: list, limit: int | None = None) -> list[dict]:
    got: list[dict] = []
    h2 = Http2(ItemFactory(meta, NODE, NameTable(), got.append), DissectConfig())
    for d, data, ts in events[:limit]:
        if isinstance(data, bytes):
            h2.on_data(d, data, ts)
        else:
            h2.on_gap(d, data, ts)
    h2.on_close(events[-1][2], "timeout")
    return got


def test_truncated_and_fuzzed_connections_never_crash(rec: Recording) -> None:
    rng = random.Random(12)
    conns = [(m, e) for port in (H2_PORT, GRPC_PORT) for m, e in _events(rec.pcap, port)
             if e and isinstance(e[0][1], bytes) and not e[0][1].startswith(b"GET ")]
    assert len(conns) >= 3
    errors = 0
    for meta, events in conns:
        whole = {(it["request"]["url"], it.get("response", {}).get("status")) for it in _feed(meta, events)}
        for limit in sorted(rng.sample(range(1, len(events)), min(12, len(events) - 1))):
            for it in _feed(meta, events, limit):
                check_item(it)
                if "error" in it:
                    errors += 1
                else:
                    assert (it["request"]["url"], it["response"]["status"]) in whole
        for _ in range(30):
            fuzzed = []
            for d, data, ts in events:
                data = bytearray(data)
                for _ in range(rng.randrange(4)):
                    if data:
                        data[rng.randrange(len(data))] = rng.randrange(256)
                fuzzed.append((d, bytes(data), ts))
            if rng.random() < 0.3:
                k = rng.randrange(len(fuzzed))
                fuzzed[k] = (fuzzed[k][0], rng.randrange(1, 5000), fuzzed[k][2])  # a gap instead
            for it in _feed(meta, fuzzed):
                check_item(it)
                errors += "error" in it
    assert errors > 0


@pytest.mark.parametrize(("query", "paths"), [
    ("http2 and response.status >= 400", ["/missing"]),
    ('http2 and request.path.startsWith("/again/")', [f"/again/{n}" for n in range(4)]),
    ('http2 and error.msg.contains("CANCEL")', ["/slow"]),
    ('protocol.name == "http" and request.httpVersion == "HTTP/2.0" and request.path == r"^/kfl"',
     ["/kfl.test.Inventory/Create", "/kfl.test.Inventory/GetItem", "/kfl.test.Inventory/ListItems"]),
    ('grpc and response.headers["Grpc-Status"] == "5"', ["/kfl.test.Inventory/Create"]),
    ('grpc and response.trailers["Grpc-Status"] == "0"',
     ["/kfl.test.Inventory/GetItem", "/kfl.test.Inventory/ListItems"]),
    ("grpc and response.grpc.responseMessages > 1", ["/kfl.test.Inventory/ListItems"]),
    ('grpc and request.grpc.messages[0].fields["1"] == "widget"', ["/kfl.test.Inventory/GetItem"]),
])
def test_documented_queries(items: list[dict], query: str, paths: list[str]) -> None:
    """The examples of docs/kfl.md select what they say."""
    q = kfl.compile(query)
    assert sorted(it["request"]["path"] for it in items if q.match(it)) == paths


def test_lost_segment_inside_a_body(rec: Recording, items: list[dict], tmp_path: Path) -> None:
    """One server segment of /big not captured: that item says bytes are missing; the connection's
    later items still come out with the method, path and status they had."""
    frames = subprocess.run(["tshark", "-n", "-r", str(rec.pcap), "-Y", f"tcp.srcport == {H2_PORT} and "
                             "tcp.len > 4000", "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, timeout=120, check=True).stdout.split()
    lost = int(frames[1])
    cut = tmp_path / "lost.pcap"
    wrpcap(str(cut), [p for n, p in enumerate(rdpcap(str(rec.pcap)), 1) if n != lost])
    full = {(it["request"]["url"], it["response"]["status"]) for it in items if answered(it)}
    got = [it for it in items_of(cut) if it["protocol"]["abbr"] == "HTTP/2" and answered(it)]
    [big] = [it for it in got if it["request"]["path"] == "/big"]
    assert "missing from the capture" in big["error"]["msg"]
    after = [it for it in got if it["request"]["path"].startswith(("/gzip", "/missing", "/echo", "/again/"))]
    assert len(after) == 7
    assert all((it["request"]["url"], it["response"]["status"]) in full for it in after)
