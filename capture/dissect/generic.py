"""The `tcp`/`udp` item of a stream no dissector claims (docs/items.md).

One item per stream: `data = {payload, bytes, packets}` where `payload` is the first
`generic_payload` bytes of the conversation in arrival order (latin-1 text). It is emitted when
each direction has sent `generic_payload` bytes, or when the stream closes, whichever is first.
"""

from __future__ import annotations

from typing import ClassVar

from capture.dissect.base import REJECT, DissectConfig, Dissector, ItemFactory, error, protocol

TCP = protocol("tcp", "", "TCP", "Transmission Control Protocol", "tcp", "tcp", [], 5,
               "https://datatracker.ietf.org/doc/html/rfc9293")
UDP = protocol("udp", "", "UDP", "User Datagram Protocol", "udp", "udp", [], 5,
               "https://datatracker.ietf.org/doc/html/rfc768")


class Generic(Dissector):
    """Counts a stream's payload and keeps its first bytes; never claims by itself."""

    name: ClassVar[str] = "generic"
    layer4: ClassVar[tuple[str, ...]] = ("tcp", "udp")

    __slots__ = ("_cap", "_done", "_gaps", "_payload", "_sent", "items", "packets")

    @classmethod
    def probe(cls, meta: object, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        return REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self._cap = config.generic_payload
        self._payload = bytearray()
        self._sent = [0, 0]
        self._gaps = 0
        self.packets = 0
        self._done = False

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if self._done:
            return
        self.packets += 1
        self._sent[direction] += len(data)
        room = self._cap - len(self._payload)
        if room > 0:
            self._payload += data[:room]
        if self._sent[0] >= self._cap and self._sent[1] >= self._cap:
            self._emit()

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if not self._done:
            self._gaps += length

    def on_close(self, ts_ns: int, reason: str) -> None:
        if not self._done:
            self._emit()

    def _emit(self) -> None:
        self._done = True
        items = self.items
        meta = items.meta
        data = {
            "payload": self._payload.decode("latin-1"),
            "bytes": self._sent[0] + self._sent[1],
            "packets": self.packets,
        }
        err = None
        if self._gaps:
            err = error("dissection", f"{self._gaps} payload bytes missing from the capture")
        proto = TCP if meta.l4 == "tcp" else UDP
        items.emit(proto, meta.first_ts_ns, False, {"data": data}, self._sent[0], self._sent[1], 0, err)
