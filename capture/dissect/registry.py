"""Which dissector gets a stream: port hints order the candidates, the first bytes decide.

A new protocol is one module with a `Dissector` class and one line in `DISSECTORS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from capture.dissect.base import CLAIM, MORE, DissectConfig, Dissector, ItemFactory, NodeInfo, OnItem
from capture.dissect.dns import Dns, DnsNames
from capture.dissect.generic import Generic
from capture.dissect.http1 import Http1
from capture.dissect.redis import Redis
from capture.dissect.tls import Tls
from capture.names import NameTable

if TYPE_CHECKING:
    from capture.model import StreamHandler, StreamMeta

DISSECTORS: list[type[Dissector]] = [
    Http1,
    Dns,
    Tls,
    Redis,
]


class _Chooser:
    """Holds a new stream's first events until a dissector claims it, then hands them over.

    After the choice its `on_data`/`on_gap`/`on_close` are the dissector's own bound methods."""

    def __init__(self, meta: StreamMeta, items: ItemFactory, candidates: list[type[Dissector]],
                 config: DissectConfig) -> None:
        self.meta = meta
        self.items = items
        self.candidates = candidates
        self.config = config
        self.first = [b"", b""]
        self.gapped = [False, False]
        self.buffered = 0
        self.leader = -1  # the direction that sent data first
        self.events: list[tuple[int, bytes | None, int, int]] = []

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        self.buffered += len(data)
        if self.leader < 0:
            self.leader = direction
        if not self.gapped[direction]:
            self.first[direction] += data
        cls = self._decide(self.buffered > self.config.probe_limit)
        if cls is None:
            self.events.append((direction, data, ts_ns, 0))
        else:  # the data that decided goes straight to the dissector
            self._choose(cls).on_data(direction, data, ts_ns)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        self.events.append((direction, None, ts_ns, length))
        self.gapped[direction] = True

    def on_close(self, ts_ns: int, reason: str) -> None:
        self._choose(self._decide(True) or Generic).on_close(ts_ns, reason)

    def _decide(self, final: bool) -> type[Dissector] | None:
        """The dissector that claims the stream, Generic when none can, None while some wait."""
        first = (self.first[0], self.first[1])
        candidates = self.candidates
        for cls in tuple(candidates):
            verdict = cls.probe(self.meta, first, self.leader, final, self.config)
            if verdict == CLAIM:
                return cls
            if verdict != MORE or final:
                candidates.remove(cls)
        return None if candidates else Generic

    def _choose(self, cls: type[Dissector]) -> Dissector:
        handler = cls(self.items, self.config)
        self.on_data = handler.on_data  # type: ignore[method-assign]
        self.on_gap = handler.on_gap  # type: ignore[method-assign]
        self.on_close = handler.on_close  # type: ignore[method-assign]
        events = self.events
        self.events = []
        self.first = [b"", b""]
        for direction, data, ts, length in events:
            if data is None:
                handler.on_gap(direction, length, ts)
            else:
                handler.on_data(direction, data, ts)
        return handler


def make_handler_factory(
    on_item: OnItem,
    node: NodeInfo | None = None,
    names: NameTable | None = None,
    config: DissectConfig | None = None,
    shard: tuple[int, int] | None = None,
) -> Any:
    """A `handler_factory` for `capture.Capture`: one handler per stream, items to `on_item`.

    With `shard=(k, n)` only streams whose number is k modulo n are dissected (n processes reading
    the same input each take one share); DNS streams of the other shares are still parsed, without
    items, so that every process learns the same names at the same packet.
    """
    node = node or NodeInfo.local()
    names = names if names is not None else NameTable()
    config = config or DissectConfig()
    by_l4 = {l4: [cls for cls in DISSECTORS if l4 in cls.layer4] for l4 in ("tcp", "udp")}

    def factory(meta: StreamMeta) -> StreamHandler:
        items = ItemFactory(meta, node, names, on_item)
        cport, sport = meta.client_port, meta.server_port
        hinted = []  # port hints first, then the others (each in DISSECTORS order)
        others = []
        for cls in by_l4[meta.l4]:
            (hinted if cport in cls.ports or sport in cls.ports else others).append(cls)
        empty = (b"", b"")
        undecided = []
        for cls in hinted + others:
            verdict = cls.probe(meta, empty, -1, False, config)
            if verdict == CLAIM:
                return cls(items, config)
            if verdict == MORE:
                undecided.append(cls)
        if not undecided:
            return Generic(items, config)
        return _Chooser(meta, items, undecided, config)

    if shard is None:
        return factory
    mine, shares = shard

    def sharded(meta: StreamMeta) -> StreamHandler | None:
        if int(meta.stream_id[:12]) % shares == mine:
            return factory(meta)
        if meta.server_port in Dns.ports or meta.client_port in Dns.ports:
            return DnsNames(ItemFactory(meta, node, names, _no_items), config)
        return None

    return sharded


def _no_items(_item: dict[str, Any]) -> None:
    raise AssertionError("DnsNames makes no items")
