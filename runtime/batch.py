"""A batch of events (items, and packets for scripts that define onPacketCaptured) on its way to V8.

The batch travels as one JavaScript string literal: a JSON header, then one line per event,
separated by `\\x01` (orjson never writes a raw control character, so the separator cannot occur
inside an item). Item lines are the item's JSON, produced once and shared by every script; packet
lines are `ts_ns,captureLength,length,truncated,fragmented,stream`. Scripts without
onPacketCaptured get the items-only variant, so event indices are per variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

ITEM = "i"
PACKET = "p"


def _dumps(item: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(item)
    except TypeError:
        return orjson.dumps(item, default=str, option=orjson.OPT_NON_STR_KEYS)


def escape(data: bytes) -> bytes:
    """`data` as the body of a single-quoted JavaScript string literal."""
    return data.replace(b"\\", b"\\\\").replace(b"'", b"\\'")


class Batch:
    """Events in arrival order; `time_ns` is the runtime clock when the batch was closed."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.events: list[Any] = []  # item dicts, or packet lines (bytes)
        self.items: list[dict[str, Any]] = []
        self.time_ns = 0
        self._lines: list[bytes] | None = None
        self._bodies: dict[bool, tuple[bytes, str, list[dict[str, Any] | None]]] = {}
        self._bits: dict[tuple[bool, str], str] = {}

    def __len__(self) -> int:
        return len(self.events)

    def add_item(self, item: dict[str, Any]) -> None:
        self.kinds.append(ITEM)
        self.events.append(item)
        self.items.append(item)

    def add_packet(
        self, ts_ns: int, caplen: int, length: int, truncated: bool, fragmented: bool, stream: str
    ) -> None:
        self.kinds.append(PACKET)
        self.events.append(
            b"%d,%d,%d,%d,%d,%s" % (ts_ns, caplen, length, truncated, fragmented, stream.encode())
        )

    def has_packets(self) -> bool:
        return len(self.items) != len(self.events)

    def _item_lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = [escape(_dumps(item)) for item in self.items]
        return self._lines

    def variant(self, with_packets: bool) -> tuple[bytes, str, list[dict[str, Any] | None]]:
        """(escaped body, kinds, objects by event index) for scripts with or without packets."""
        with_packets = with_packets and self.has_packets()
        cached = self._bodies.get(with_packets)
        if cached is not None:
            return cached
        item_lines = iter(self._item_lines())
        if with_packets:
            objs = [e if k == ITEM else None for k, e in zip(self.kinds, self.events, strict=True)]
            lines = [
                next(item_lines) if k == ITEM else e for k, e in zip(self.kinds, self.events, strict=True)
            ]
            cached = (b"\x01".join(lines), "".join(self.kinds), objs)
        else:
            cached = (b"\x01".join(item_lines), ITEM * len(self.items), list(self.items))
        self._bodies[with_packets] = cached
        return cached

    def bits(self, with_packets: bool, query: str, match: Callable[[dict[str, Any]], bool]) -> str:
        """'1'/'0' per event of a variant: does `query` match that event's item."""
        with_packets = with_packets and self.has_packets()
        key = (with_packets, query)
        cached = self._bits.get(key)
        if cached is None:
            _, _, objs = self.variant(with_packets)
            cached = "".join("1" if o is not None and _safe(match, o) else "0" for o in objs)
            self._bits[key] = cached
        return cached


def _safe(match: Callable[[dict[str, Any]], bool], item: dict[str, Any]) -> bool:
    try:
        return bool(match(item))
    except Exception:
        return False


def payload(function: str, header: dict[str, Any], body: bytes) -> bytes:
    """The JavaScript call `__kflpcap.<function>('<header>\\x01<body>')`."""
    head = escape(orjson.dumps(header))
    if body:
        return b"__kflpcap." + function.encode() + b"('" + head + b"\x01" + body + b"')"
    return b"__kflpcap." + function.encode() + b"('" + head + b"')"
