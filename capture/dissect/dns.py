"""DNS over UDP and TCP (port 53): queries and answers paired by id within the flow.

UDP: one message per datagram. TCP: messages prefixed by their 2-byte length, any number per
connection, split across or packed into segments. A query waits for the answer with its id; an
answer without a waiting query becomes an item of its own (`pair-not-found`, request taken from
its question section). A malformed message becomes an item with a `dissection` error. Queries
still unanswered when the flow closes (idle timeout, end of input) are emitted with `timeout`.
A/AAAA answers teach the name table (`NameTable.learn`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from capture.dissect.base import CLAIM, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol
from capture.dissect.dnswire import Parsed, parse

_REF = "https://www.iana.org/assignments/dns-parameters/dns-parameters.xhtml"
DNS_UDP = protocol("dns", "0", "DNS", "Domain Name System", "dns", "udp", [], 4, _REF)
DNS_TCP = protocol("dns", "0", "DNS", "Domain Name System", "dns", "tcp", [], 4, _REF)
MAX_PENDING = 1024  # unanswered queries kept per flow; beyond, the oldest is given up (bounded memory)


class _Query:
    __slots__ = ("direction", "msg", "size", "ts")

    def __init__(self, msg: Parsed, ts: int, size: int, direction: int) -> None:
        self.msg = msg
        self.ts = ts
        self.size = size
        self.direction = direction


class Dns(Dissector):
    """The DNS dissector of one UDP flow or TCP connection (claimed by port alone)."""

    name: ClassVar[str] = "dns"
    layer4: ClassVar[tuple[str, ...]] = ("udp", "tcp")
    ports: ClassVar[frozenset[int]] = frozenset({53})

    __slots__ = ("bufs", "items", "pending", "proto", "tcp")

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        ports = config.ports_of(cls)
        return CLAIM if meta.server_port in ports or meta.client_port in ports else REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.tcp = items.meta.l4 == "tcp"
        self.proto = DNS_TCP if self.tcp else DNS_UDP
        self.pending: dict[int, _Query] = {}
        self.bufs = (bytearray(), bytearray())

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if not self.tcp:
            self._message(direction, data, ts_ns)
            return
        buf = self.bufs[direction]
        buf += data
        while len(buf) >= 2:
            end = 2 + ((buf[0] << 8) | buf[1])
            if len(buf) < end:
                break
            wire = bytes(buf[2:end])
            del buf[:end]
            self._message(direction, wire, ts_ns)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if self.tcp:
            self.bufs[direction].clear()  # the next segment is taken to start a message

    def on_close(self, ts_ns: int, reason: str) -> None:
        for direction, buf in enumerate(self.bufs):
            if len(buf) > 2:
                self._message(direction, bytes(buf[2:]), ts_ns, "message cut by the end of the stream")
            buf.clear()
        pending = self.pending
        self.pending = {}
        for q in pending.values():
            self._emit(q, None, 0, 0, error("timeout", f"no answer before the flow ended ({reason})"))

    def _message(self, direction: int, wire: bytes, ts: int, cut: str | None = None) -> None:
        msg = parse(wire)
        problem = cut or msg.error
        if not msg.qr:
            q = _Query(msg, ts, len(wire), direction)
            if problem is not None:
                self._emit(q, None, 0, 0, error("dissection", f"malformed DNS query: {problem}"))
                return
            pending = self.pending
            old = pending.pop(msg.id, None)
            if old is not None:
                self._emit(old, None, 0, 0, error("timeout", "query repeated before an answer came"))
            elif len(pending) >= MAX_PENDING:
                oldest = pending.pop(next(iter(pending)))
                msg_text = f"no answer while {MAX_PENDING} later queries waited"
                self._emit(oldest, None, 0, 0, error("timeout", msg_text))
            pending[msg.id] = q
            return
        self._learn(msg)
        q = self.pending.pop(msg.id, None)
        if q is None:
            note = f"; malformed: {problem}" if problem is not None else ""
            orphan = _Query(msg, ts, 0, direction ^ 1)
            self._emit(orphan, msg, len(wire), 0, error("pair-not-found", f"answer without a query{note}"))
            return
        err = error("dissection", f"malformed DNS answer: {problem}") if problem is not None else None
        self._emit(q, msg, len(wire), ts - q.ts, err)

    def _emit(self, q: _Query, answer: Parsed | None, answer_size: int, elapsed: int,
              err: dict[str, str] | None) -> None:
        body: dict[str, Any] = {"request": q.msg.request()}
        body["response"] = answer.response() if answer is not None else {
            "code": "", "answers": [], "authorities": [], "additionals": []}
        self.items.emit(self.proto, q.ts, q.direction == 1, body, q.size, answer_size, elapsed, err)

    def _learn(self, msg: Parsed) -> None:
        answers = msg.answers
        if not answers:
            return
        names = self.items.names
        qname = msg.questions[0]["name"] if msg.questions else ""
        aliases = {qname.lower()}
        for rr in answers:
            if rr["type"] == "CNAME" and rr["name"].lower() in aliases:
                aliases.add(rr["cname"].lower())
        for rr in answers:
            if rr["type"] in ("A", "AAAA"):
                names.learn(rr["ip"], qname if rr["name"].lower() in aliases else rr["name"])


class DnsNames(Dns):
    """DNS of a stream whose items another process makes: its answers only teach the name table
    (the same answers at the same packet as in that process); queries are not even parsed."""

    __slots__ = ()

    def _message(self, direction: int, wire: bytes, ts: int, cut: str | None = None) -> None:
        if len(wire) >= 12 and wire[2] & 0x80 and (wire[6] or wire[7]):  # an answer with answers
            self._learn(parse(wire))


Dns.other_shares = DnsNames
