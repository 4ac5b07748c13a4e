"""A batch of events (items, and packets for scripts that define onPacketCaptured) on its way to V8.

The batch travels as two strings (a call argument crosses into V8 as is): a JSON header and the
body, one line per event separated by `\\x01` (orjson never writes a raw control character, so the
separator cannot occur inside an item). Item lines are the item's JSON, produced once and shared by
every script; packet lines are `ts_ns,captureLength,length,truncated,fragmented,stream`. Scripts without
onPacketCaptured get the items-only variant, so event indices are per variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from capture.dissect import BODY_FIELDS

ITEM = "i"
PACKET = "p"


def _dumps(item: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(item)
    except TypeError:
        return orjson.dumps(item, default=str, option=orjson.OPT_NON_STR_KEYS)


class Batch:
    """Events in arrival order; `time_ns` is the runtime clock when the batch was closed."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.events: list[Any] = []  # item dicts, or packet lines (bytes)
        self.items: list[dict[str, Any]] = []
        self.cuts: list[int | None] = []  # per event: the capture clock when it was made
        self.seqs: list[int | None] = []  # per event: the packets the capture had read then
        # wrapper ticks due between events: (items before it, events before it, clock, packets read)
        self.ticks: list[tuple[int, int, int, int]] = []
        # jobs that run at a tick, in their script: (tick number, owner, [tag, cron, limit])
        self.jobs: list[tuple[int, Any, list[Any]]] = []
        self.time_ns = 0
        self._lines: dict[tuple[bool, frozenset[str] | None], list[bytes]] = {}
        self._bodies: dict[tuple[bool, bool, frozenset[str] | None], bytes] = {}
        self._skeletons: dict[bool, tuple[str, list[dict[str, Any] | None]]] = {}
        self._bits: dict[tuple[bool, str], str] = {}

    def __len__(self) -> int:
        return len(self.events)

    def add_item(self, item: dict[str, Any], cut_ns: int | None = None, seq: int | None = None) -> None:
        """Add `item`, made when the capture clock read `cut_ns` and the capture had read `seq`
        packets (None: unknown)."""
        self.kinds.append(ITEM)
        self.events.append(item)
        self.items.append(item)
        self.cuts.append(cut_ns)
        self.seqs.append(seq)

    def add_packet(
        self, ts_ns: int, caplen: int, length: int, truncated: bool, fragmented: bool, stream: str,
        seq: int | None = None,
    ) -> None:
        self.kinds.append(PACKET)
        self.events.append(
            b"%d,%d,%d,%d,%d,%s" % (ts_ns, caplen, length, truncated, fragmented, stream.encode())
        )
        self.cuts.append(ts_ns)
        self.seqs.append(seq)

    def add_tick(self, now_ns: int, seq: int, jobs: Sequence[tuple[Any, list[Any]]] = ()) -> None:
        """The wrappers' clock tick at `now_ns`, after the events so far (the capture had read `seq`
        packets): it runs between their commands and the next events'. `jobs`: (owner, [tag, cron,
        limit]) of the jobs due then, which their scripts run at the tick."""
        for owner, job in jobs:
            self.jobs.append((len(self.ticks), owner, job))
        self.ticks.append((len(self.items), len(self.events), now_ns, seq))

    def has_packets(self) -> bool:
        return len(self.items) != len(self.events)

    def _item_lines(self, bodies: bool, fields: frozenset[str] | None) -> list[bytes]:
        key = (bodies, fields)
        lines = self._lines.get(key)
        if lines is None:
            items = self.items
            if fields is not None:
                names = tuple(fields)
                items = [_project(item, names) for item in items]
                # a cut that leaves out every body field has no bodies left to remove
                bodies = bodies or not any(f in fields for _, f in BODY_FIELDS)
            if bodies:
                lines = [_dumps(item) for item in items]
            else:
                lines = [_dumps(_without_bodies(item)) for item in items]
            self._lines[key] = lines
        return lines

    def skeleton(self, with_packets: bool) -> tuple[str, list[dict[str, Any] | None]]:
        """(event kinds, item by event index) of the variant with or without packets."""
        with_packets = with_packets and self.has_packets()
        cached = self._skeletons.get(with_packets)
        if cached is None:
            if with_packets:
                objs = [e if k == ITEM else None for k, e in zip(self.kinds, self.events, strict=True)]
                cached = ("".join(self.kinds), objs)
            else:
                cached = (ITEM * len(self.items), list(self.items))
            self._skeletons[with_packets] = cached
        return cached

    def body(self, with_packets: bool, bodies: bool = True, fields: frozenset[str] | None = None) -> bytes:
        """The lines of a variant; item JSON is produced once per variant and shared by every script.
        Without `bodies`, message body texts are left out (a marker stands in their place)."""
        with_packets = with_packets and self.has_packets()
        key = (with_packets, bodies, fields)
        cached = self._bodies.get(key)
        if cached is None:
            item_lines = iter(self._item_lines(bodies, fields))
            if with_packets:
                cached = b"\x01".join(
                    next(item_lines) if k == ITEM else e for k, e in zip(self.kinds, self.events, strict=True)
                )
            else:
                cached = b"\x01".join(item_lines)
            self._bodies[key] = cached
        return cached

    def cuts_of(self, with_packets: bool) -> list[tuple[int | None, int | None]]:
        """(capture clock, packets read) per event of a variant (`add_item`'s `cut_ns` and `seq`)."""
        cuts = list(zip(self.cuts, self.seqs, strict=True))
        if with_packets and self.has_packets():
            return cuts
        return [c for k, c in zip(self.kinds, cuts, strict=True) if k == ITEM]

    def ticks_of(self, with_packets: bool) -> list[tuple[int, int, int]]:
        """(index of the first event after it, clock, packets read) per tick, in a variant's indices."""
        whole = with_packets and self.has_packets()
        return [(events if whole else items, now, seq) for items, events, now, seq in self.ticks]

    def clock_ms(self, with_packets: bool, owner: Any = None) -> tuple[list[int | None], list[list[Any]]]:
        """(the runtime clock in ms per event, [[index of the next event, clock ms(, jobs)]] per tick)
        of a variant: the script's clock at each event and tick, whatever the batch's size (its
        timers fall due at those, not at the batch's sending); a tick lists the jobs of `owner` due
        at it, [tag, cron, limit] each."""
        times = [None if ns is None else ns // 1_000_000 for ns, _ in self.cuts_of(with_packets)]
        ticks: list[list[Any]] = [[index, now // 1_000_000] for index, now, _ in self.ticks_of(with_packets)]
        for k, job_owner, job in self.jobs:
            if job_owner is owner:
                if len(ticks[k]) == 2:
                    ticks[k].append([])
                ticks[k][2].append(job)
        return times, ticks

    def bits(self, with_packets: bool, query: str, match: Callable[[dict[str, Any]], bool]) -> str:
        """'1'/'0' per event of a variant: does `query` match that event's item."""
        with_packets = with_packets and self.has_packets()
        key = (with_packets, query)
        cached = self._bits.get(key)
        if cached is None:
            _, objs = self.skeleton(with_packets)
            cached = "".join("1" if o is not None and _safe(match, o) else "0" for o in objs)
            self._bits[key] = cached
        return cached


def _project(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`item` with only the named top-level fields, and in its objects only the named fields."""
    out: dict[str, Any] = {}
    for k in names:
        if k in item:
            v = item[k]
            out[k] = {n: v[n] for n in names if n in v} if isinstance(v, dict) else v
    return out


NO_BODY = "\u0000kflpcap:body"


def _without_bodies(item: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of `item` with the text of each body field (`BODY_FIELDS`, e.g.
    response.content.text) replaced."""
    out = item
    for message, field in BODY_FIELDS:
        msg = item.get(message)
        holder = msg.get(field) if isinstance(msg, dict) else None
        if isinstance(holder, dict) and holder.get("text"):
            if out is item:
                out = dict(item)
            out[message] = {**msg, field: {**holder, "text": NO_BODY}}
    return out


def _safe(match: Callable[[dict[str, Any]], bool], item: dict[str, Any]) -> bool:
    try:
        return bool(match(item))
    except Exception:
        return False
