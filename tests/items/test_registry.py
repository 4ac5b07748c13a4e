"""The registry: one dissector per stream chosen by port hints and first bytes, generic items for
the rest, and a new protocol as one class plus one registry line."""

from __future__ import annotations

from typing import ClassVar

import pytest

from capture.dissect import registry
from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, protocol
from capture.dissect.httpitem import Message
from tests.capture.tcpbuild import T0
from tests.items.schema import problems
from tests.items.util import Talk, run_frames, udp


def test_generic_tcp_item_at_close_with_payload_and_counts() -> None:
    t = Talk(server=("10.0.0.2", 5432)).send(0, b"\x00\x00\x00\x08\x04\xd2\x16\x2f").send(1, b"N")
    [item] = run_frames(t.close())
    assert item["protocol"]["name"] == "tcp" and item["protocol"]["abbr"] == "TCP"
    assert item["data"] == {"payload": "\x00\x00\x00\x08\x04\xd2\x16\x2fN", "bytes": 9, "packets": 2}
    assert (item["requestSize"], item["responseSize"]) == (8, 1) and "request" not in item
    assert item["startTime"].startswith("2023-11-14T22:13:20.001")  # the stream's first packet (SYN)


def test_generic_item_is_emitted_after_1kib_each_way_before_the_close() -> None:
    t = Talk(server=("10.0.0.2", 6379)).send(0, b"a" * 1500).send(1, b"b" * 1500)
    t.send(0, b"c" * 100)
    [item] = run_frames(t.close())
    # emitted when the server's first segment (1448 bytes) passed 1 KiB: later bytes are not counted
    assert item["data"] == {"payload": "a" * 1024, "bytes": 1500 + 1448, "packets": 3}


def test_generic_udp_item_and_empty_tcp_stream() -> None:
    frames = [udp(("10.0.0.1", 5000), ("10.0.0.2", 123), b"\x1b" + b"\x00" * 47, T0)]
    frames += Talk(t0=T0 + 10**6).close()  # handshake and FIN, no payload
    items = run_frames(frames)
    assert sorted(it["protocol"]["name"] for it in items) == ["tcp", "udp"]
    tcp = next(it for it in items if it["protocol"]["name"] == "tcp")
    assert tcp["data"] == {"payload": "", "bytes": 0, "packets": 0}
    assert all(problems(it) == [] for it in items)


def test_mdns_is_not_dns() -> None:
    from tests.items.test_dns import answer, query

    q = query("printer.local")
    items = run_frames([udp(("10.0.0.1", 5353), ("224.0.0.251", 5353), q.to_wire(), T0),
                        udp(("10.0.0.5", 5353), ("224.0.0.251", 5353), answer(q).to_wire(), T0 + 1)])
    assert {it["protocol"]["name"] for it in items} == {"udp"}


class Echo(Dissector):
    """A toy protocol for the test: streams whose client says ECHO."""

    name: ClassVar[str] = "echo"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    ports: ClassVar[frozenset[int]] = frozenset({7})
    PROTO = protocol("echo", "1", "ECHO", "Echo", "echo", "tcp", ["7"], 9)

    @classmethod
    def probe(cls, meta, first, leader, final, config) -> int:
        if not first[0]:
            return REJECT if final else MORE
        return CLAIM if first[0].startswith(b"ECHO ") else REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if direction == 0:
            self.items.emit(self.PROTO, ts_ns, False, {"request": {"text": data.decode()}}, len(data), 0, 0)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        pass

    def on_close(self, ts_ns: int, reason: str) -> None:
        pass


def test_a_new_protocol_is_one_class_and_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "DISSECTORS", [Echo, *registry.DISSECTORS])
    t = Talk(server=("10.0.0.2", 7)).send(0, b"ECHO hi").send(1, b"hi")
    t2 = Talk(client=("10.0.0.1", 40001), server=("10.0.0.2", 7)).send(0, b"GET / HTTP/1.1\r\n\r\n")
    t2.send(1, b"HTTP/1.1 204 No Content\r\n\r\n")
    items = run_frames(t.close() + t2.close())
    assert (items[0]["protocol"]["name"], items[0]["request"]["text"]) == ("echo", "ECHO hi")
    assert {it["protocol"]["name"] for it in items} == {"echo", "http"}  # content still decides on port 7


class Upgraded(Dissector):
    """A toy protocol reached only by upgrade token: one item at the close listing what it got."""

    name: ClassVar[str] = "toy"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    upgrades: ClassVar[tuple[str, ...]] = ("h2c",)
    tls: ClassVar[bool] = True
    PROTO = protocol("toy", "2", "TOY", "Toy", "toy", "tcp", [], 9)

    @classmethod
    def probe(cls, meta, first, leader, final, config) -> int:
        return REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.got: list[str] = []

    def upgraded(self, token: str, request: Message, client_dir: int) -> None:
        self.got.append(f"{token} {request.method.decode()} {request.url.decode()} from {client_dir}")

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        self.got.append(f"{direction}:{data.decode()}")

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        self.got.append(f"{direction}:gap")

    def on_close(self, ts_ns: int, reason: str) -> None:
        self.got.append(reason)
        self.items.emit(self.PROTO, ts_ns, False, {"data": {"got": self.got}}, 0, 0, 0)


H2C_REQUEST = (b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


def _h2c_talk(client: tuple[str, int] = ("10.0.0.1", 40000),
              token: bytes = b"h2c") -> list[tuple[int, bytes]]:
    t = Talk(client=client).send(0, H2C_REQUEST.replace(b"h2c", token) + b"early")  # did not wait for the 101
    t.send(1, SWITCHING.replace(b"h2c", token) + b"frames").send(0, b"PRI * HTTP/2.0").send(1, b"more")
    return t.close()


def test_a_101_hands_the_stream_to_the_dissector_of_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "DISSECTORS", [*registry.DISSECTORS, Upgraded])
    http, toy = run_frames(_h2c_talk())
    assert (http["protocol"]["name"], http["response"]["status"], http["tls"]) == ("http", 101, False)
    assert "error" not in http and http["request"]["path"] == "/up"
    assert (toy["protocol"]["name"], toy["index"], toy["tls"]) == ("toy", 1, True)
    # what came after the switch, in capture order: the client's early bytes, then the server's
    assert toy["data"]["got"] == ["h2c GET /up from 0", "0:early", "1:frames", "0:PRI * HTTP/2.0", "1:more",
                                  "fin"]


def test_a_101_for_a_token_no_dissector_takes_ends_the_http_items() -> None:
    [http] = run_frames(_h2c_talk(token=b"websocket"))
    assert (http["protocol"]["name"], http["response"]["status"]) == ("http", 101) and "error" not in http


def test_port_hints_come_from_the_dissector_unless_the_config_names_others() -> None:
    # on an HTTP port a request line claims the stream at once; elsewhere the answer decides
    t = Talk(server=("10.0.0.2", 9000)).send(0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    t.send(1, b"SSH-2.0-x\r\n")
    assert [it["protocol"]["name"] for it in run_frames(t.close())] == ["tcp"]
    config = DissectConfig(ports={"http": frozenset({9000})})
    assert [it["protocol"]["name"] for it in run_frames(t.close(), config=config)] == ["http"]
