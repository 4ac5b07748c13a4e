"""Which dissector gets a stream: port hints order the candidates, the first bytes decide.

A new protocol is one module with a `Dissector` subclass and one line in `REGISTERED`; what the
rest of kflpcap needs to know of it (port hints, body fields, upgrade tokens, ...) is read from the
class (see `capture.dissect.base.Dissector`).
"""

from __future__ import annotations

import weakref
from importlib import import_module
from typing import TYPE_CHECKING, Any

from capture.dissect.base import CLAIM, MORE, DissectConfig, Dissector, ItemFactory, NodeInfo, OnItem
from capture.dissect.generic import Generic
from capture.names import NameTable

if TYPE_CHECKING:
    from capture.dissect.httpitem import Message
    from capture.model import StreamHandler, StreamMeta

# "module.Class" of each dissector, in the order they are asked (after port hints)
REGISTERED = (
    "capture.dissect.http1.Http1",
    "capture.dissect.dns.Dns",
    "capture.dissect.http2.Http2",
    "capture.dissect.tls.Tls",
    "capture.dissect.redis.Redis",
)


def _load(path: str) -> type[Dissector]:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


DISSECTORS: list[type[Dissector]] = [_load(path) for path in REGISTERED]

# (message, field) of the item objects whose `text` is a message body, over every dissector
BODY_FIELDS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(p for cls in DISSECTORS for p in cls.bodies))


class _Stream:
    """The handler `Capture` holds for a stream: its `on_data`/`on_gap`/`on_close` are the bound
    methods of the stream's dissector, rebound when that dissector hands the stream to another."""

    def __init__(self, items: ItemFactory, config: DissectConfig,
                 upgrades: dict[str, type[Dissector]]) -> None:
        self.items = items
        self.config = config
        self.upgrades = upgrades
        items.stream = weakref.ref(self)

    def start(self, cls: type[Dissector]) -> Dissector:
        items = self.items
        items.tls = cls.tls
        handler = cls(items, self.config)
        self.on_data = handler.on_data
        self.on_gap = handler.on_gap
        self.on_close = handler.on_close
        return handler

    def hand_off(self, token: str, pending: list[tuple[int, bytes]], ts_ns: int, request: Message,
                 client_dir: int) -> bool:
        cls = self.upgrades.get(token)
        if cls is None:
            return False
        handler = self.start(cls)
        handler.upgraded(token, request, client_dir)
        for direction, data in pending:
            handler.on_data(direction, data, ts_ns)
        return True


class _Chooser(_Stream):
    """Holds a new stream's first events until a dissector claims it, then hands them over."""

    def __init__(self, meta: StreamMeta, items: ItemFactory, candidates: list[type[Dissector]],
                 config: DissectConfig, upgrades: dict[str, type[Dissector]]) -> None:
        _Stream.__init__(self, items, config, upgrades)
        self.meta = meta
        self.candidates = candidates
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
        handler = self.start(cls)
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
    the same input each take one share); streams of the other shares get the `other_shares` handler
    of the dissector whose port hints they match (DNS: answers parsed without items, so that every
    process learns the same names at the same packet), or none.
    """
    node = node or NodeInfo.local()
    names = names if names is not None else NameTable()
    config = config or DissectConfig()
    by_l4 = {l4: [(cls, config.ports_of(cls)) for cls in DISSECTORS if l4 in cls.layer4]
             for l4 in ("tcp", "udp")}
    upgrades = {token: cls for cls in DISSECTORS for token in cls.upgrades}

    def factory(meta: StreamMeta) -> StreamHandler:
        items = ItemFactory(meta, node, names, on_item)
        cport, sport = meta.client_port, meta.server_port
        hinted = []  # port hints first, then the others (each in DISSECTORS order)
        others = []
        for cls, ports in by_l4[meta.l4]:
            (hinted if cport in ports or sport in ports else others).append(cls)
        empty = (b"", b"")
        undecided = []
        for cls in hinted + others:
            verdict = cls.probe(meta, empty, -1, False, config)
            if verdict == CLAIM:
                stream = _Stream(items, config, upgrades)
                stream.start(cls)
                return stream
            if verdict == MORE:
                undecided.append(cls)
        if not undecided:
            return Generic(items, config)
        return _Chooser(meta, items, undecided, config, upgrades)

    if shard is None:
        return factory
    mine, shares = shard
    shadows = {l4: [(cls.other_shares, ports) for cls, ports in by_l4[l4] if cls.other_shares is not None]
               for l4 in by_l4}

    def sharded(meta: StreamMeta) -> StreamHandler | None:
        if int(meta.stream_id[:12]) % shares == mine:
            return factory(meta)
        cport, sport = meta.client_port, meta.server_port
        for cls, ports in shadows[meta.l4]:
            if cport in ports or sport in ports:
                return cls(ItemFactory(meta, node, names, _no_items), config)
        return None

    return sharded


def _no_items(_item: dict[str, Any]) -> None:
    raise AssertionError("other_shares handlers make no items")
