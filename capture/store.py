"""Every packet of every stream, bounded by retention, a per-stream cap and a global budget
(docs/architecture.md, "capture").

Packets are held column-wise per stream (a list of bytes, an array of timestamps, an array of
lengths; the link type once unless it changes) so holding millions of packets creates no objects
the garbage collector has to walk, and costs little beyond the bytes themselves. `packets()`
builds the `(ts_ns, linktype, data, orig_len)` tuples on demand.

Accounting is of real memory: each held packet costs its captured bytes plus `PACKET_OVERHEAD`
(bytes object header and allocator rounding, list slot, timestamp and length array items, measured
with tracemalloc on CPython 3.11: tests/capture/test_store.py checks it), each stream
`RECORD_OVERHEAD`.

Over the budget, unpinned streams go in this order, each from a queue (O(1) amortised per packet
whatever the mix of streams, never a scan of the store):
  1. streams that never carried payload nor completed a TCP handshake (a SYN, a SYN answered by a
     SYN-ACK or a RST, an empty datagram), oldest first: the whole stream leaves the store (a SYN
     flood is thousands of those; they hold nothing a query can match, and a real client's
     connection leaves this class with its handshake's ACK). The first time, a warning;
  2. closed streams holding packets, by close time: their packets are dropped (the stream is
     `evicted`; its record stays until its retention ends, so late packets still find it);
  3. live streams holding packets, by first packet: the same;
  4. records of evicted streams, by eviction time, when the records alone exceed the budget (a flood
     of one-packet flows with payload): they leave the store before their retention ends.
Pinned streams are skipped (and queued again when unpinned); `over_budget_all_pinned` counts the
evictions that could not get under the budget because everything left is pinned.
"""

from __future__ import annotations

import socket
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capture.model import NS, CaptureConfig, Packet, StreamMeta

PACKET_OVERHEAD = 64
RECORD_OVERHEAD = 960  # flow object, arrays, list, keys, flow-table entries (tracemalloc)
# a stream's dissector while it has one (reassembly state of both directions, parser, its StreamMeta);
# measured with tracemalloc over floods of streams that just opened (tests/capture/test_store.py)
HANDLER_OVERHEAD = {"tcp": 1650, "udp": 1050}
# the eviction queues a record is in (bits of `Record.queued`)
BARE, CLOSED, LIVE, DROP = 1, 2, 4, 8
COMPACT_SLACK = 1024  # a queue is compacted when it holds this many entries more than twice the streams


@dataclass(frozen=True, slots=True)
class StreamInfo(StreamMeta):
    """A snapshot of one stream as the store knows it: its `StreamMeta` and what it holds now."""

    last_ts_ns: int
    packets: int
    bytes: int
    wire_bytes: int
    closed: bool
    truncated_packets: int
    evicted: bool
    ip_fragments: int = 0
    reassembled_datagrams: int = 0


DEFAULT_SNAPLEN = 262144  # for a link type no source announced a snaplen for


def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


class Record:
    """The store's state of one stream (the capture appends to it directly on the hot path).

    `meta` is built on first use from the raw addresses (most streams of a big capture never need
    the text form before they are listed).
    """

    __slots__ = (
        "_meta",
        "cip",
        "cport",
        "close_ts",
        "closed",
        "closed_at",
        "closed_seq",
        "count",
        "data_bytes",
        "datagrams",
        "datas",
        "established",
        "evicted",
        "first_seq",
        "first_ts",
        "fragments",
        "handler_cost",
        "inline",
        "l4",
        "last_ts",
        "lens",
        "linktype",
        "lts",
        "pins",
        "queued",
        "released",
        "seqs",
        "sid",
        "sip",
        "sport",
        "truncated",
        "tss",
        "wire",
    )

    def __init__(self, sid: str, l4: str, first_ts: int, linktype: int, cip: bytes, cport: int,
                 sip: bytes, sport: int) -> None:
        self.sid = sid
        self.l4 = l4
        self.first_ts = self.last_ts = first_ts
        self.linktype = linktype
        self.cip = cip  # raw addresses and ports, client and server
        self.cport = cport
        self.sip = sip
        self.sport = sport
        self._meta: StreamMeta | None = None
        self.datas: list[bytes] = []
        self.tss = array("q")
        # per held packet, the capture's count of packets read when it arrived (`StreamStore.seq`):
        # a view of the store "as of" an item or a tick cuts by it
        self.seqs = array("q")
        # lengths on the wire, once one differs from the captured length (snaplen): until then len(data)
        self.lens: array | None = None
        self.lts: array | None = None  # per-packet link types once a second one shows up
        # packets (and their wire bytes) of the stream that are not held: over the cap, evicted
        self.count = self.wire = 0
        self.data_bytes = self.close_ts = self.closed_at = self.pins = self.truncated = 0
        self.closed_seq = 0
        self.first_seq = 0  # the capture's count of packets read when the stream was added
        self.fragments = self.datagrams = 0
        self.handler_cost = 0  # held bytes the capture accounts for the stream's dissector
        self.closed = ""  # the close reason once closed
        self.evicted = self.released = False
        # set by the capture once a packet carried L4 payload or was a TCP ACK without SYN or RST (a
        # completed handshake): until then the stream is the first to go over the budget
        self.established = False
        self.queued = 0  # the store's eviction queues this record is in
        # the capture may append to this stream on its inline path (one link type, not evicted, ...)
        self.inline = self.can_inline()

    @property
    def meta(self) -> StreamMeta:
        if self._meta is None:
            self._meta = StreamMeta(self.sid, self.l4, ip_text(self.cip), self.cport, ip_text(self.sip),
                                    self.sport, self.first_ts)
        return self._meta

    def append(self, ts: int, lt: int, data: bytes, orig_len: int, seq: int) -> None:
        """Hold one packet, the capture's `seq`-th (the caller did the accounting)."""
        if lt != self.linktype and self.lts is None:
            self.lts = array("H", [self.linktype]) * len(self.datas)
            self.inline = False
        if self.lts is not None:
            self.lts.append(lt)
        if orig_len != len(data) and self.lens is None:
            self.lens = array("L", map(len, self.datas))
            self.inline = False
        if self.lens is not None:
            self.lens.append(orig_len)
        self.datas.append(data)
        self.tss.append(ts)
        self.seqs.append(seq)

    def can_inline(self) -> bool:
        """Packets may be appended by the capture's inline path: Ethernet only, every length captured
        in full so far, not evicted."""
        return self.linktype == 1 and self.lts is None and self.lens is None and not self.evicted

    def held_upto(self, seq: int | None) -> int:
        """How many of the held packets had arrived when the capture had read `seq` packets."""
        seqs = self.seqs
        if seq is None or not seqs or seqs[-1] <= seq:
            return len(seqs)
        return bisect_right(seqs, seq)

    def data_upto(self, k: int) -> int:
        """Captured bytes of the first `k` held packets."""
        return self.data_bytes if k == len(self.datas) else self.data_bytes - sum(map(len, self.datas[k:]))

    def closed_by(self, seq: int | None) -> bool:
        """Closed by the time the capture had read `seq` packets (None: now)."""
        return bool(self.closed) and (seq is None or self.closed_seq <= seq)

    def packets(self, start: int = 0, end: int | None = None) -> list[Packet]:
        datas = self.datas[start:end]
        lts = self.lts[start:end] if self.lts is not None else [self.linktype] * len(datas)
        lens = self.lens[start:end] if self.lens is not None else map(len, datas)
        return list(zip(self.tss[start:end], lts, datas, lens, strict=True))

    def held_wire(self) -> int:
        """Wire bytes of the packets held."""
        return sum(self.lens) if self.lens is not None else self.data_bytes

    def cost(self) -> int:
        return RECORD_OVERHEAD + self.data_bytes + PACKET_OVERHEAD * len(self.datas)

    def drop_packets(self) -> None:
        self.datas = []
        self.tss = array("q")
        self.seqs = array("q")
        self.lens = None
        self.lts = None
        self.data_bytes = 0


class StreamStore:
    """Packets per stream id with pinning, retention, per-stream cap and eviction."""

    def __init__(self, config: CaptureConfig | None = None) -> None:
        cfg = config or CaptureConfig()
        self.cap = cfg.stream_cap_bytes
        self.budget = cfg.budget_bytes
        self.retention_ns = int(cfg.retention_s * NS)
        self.held = 0
        self.now_ns = 0
        self.seq = 0  # packets the capture has read so far (it keeps this current)
        # retention runs no further than this capture time (None: the clock): while scripts still work
        # on items made at `hold_ns`, what they may snapshot stays as it was then
        self.hold_ns: int | None = None
        self._recs: dict[str, Record] = {}
        self._closed: deque[Record] = deque()  # by close time, for retention
        # eviction queues (module docstring); an entry whose record changed state is skipped when popped
        self._bare: deque[Record] = deque()
        self._live: deque[Record] = deque()
        self._queues = ((self._bare, BARE), (deque(), CLOSED), (self._live, LIVE), (deque(), DROP))
        self.snaplens: dict[int, int] = {}  # a PacketSource's, shared by Capture.consume
        # set by Capture: a stream's packets were evicted ("evicted") or it left the store ("released")
        self.on_drop: Callable[[Record, str], None] | None = None
        # set by whoever wants the last word on every stream before it leaves the store
        self.on_release: Callable[[StreamInfo], None] | None = None
        self.warn: Callable[[str], None] | None = None  # set by Capture: a one-line warning
        self.on_closed: Callable[[Record], None] | None = None  # told of every stream that closes
        self._c = {
            "streams_evicted": 0,
            "packets_evicted": 0,
            "streams_truncated": 0,
            "packets_truncated": 0,
            "streams_released": 0,
            "bare_streams_dropped": 0,
            "evicted_streams_dropped": 0,
            "over_budget_all_pinned": 0,
        }

    # -- public surface -------------------------------------------------------------------------

    def info(self, stream_id: str, upto: int | None = None) -> StreamInfo | None:
        """The stream now, or as it was when the capture had read `upto` packets (its held packets
        and its close cut there; counts of packets not held, over the cap or evicted, are today's)."""
        rec = self._rec_at(stream_id, upto)
        if rec is None:
            return None
        m = rec.meta
        k = rec.held_upto(upto)
        data = rec.data_upto(k)
        if k == len(rec.datas):
            last, wire = rec.last_ts, rec.held_wire()
        else:
            last = rec.tss[k - 1] if k else rec.first_ts
            wire = sum(rec.lens[:k]) if rec.lens is not None else data
        return StreamInfo(
            m.stream_id, m.l4, m.client_ip, m.client_port, m.server_ip, m.server_port, m.first_ts_ns,
            last, rec.count + k, data, rec.wire + wire, rec.closed_by(upto), rec.truncated, rec.evicted,
            rec.fragments, rec.datagrams,
        )

    def held_bytes(self, stream_id: str, upto: int | None = None) -> tuple[int, bool] | None:
        """(captured bytes held, closed or evicted) as `info` has them, cheaply; None: not in the store."""
        rec = self._rec_at(stream_id, upto)
        if rec is None:
            return None
        return rec.data_upto(rec.held_upto(upto)), rec.evicted or rec.closed_by(upto)

    def _rec_at(self, stream_id: str, upto: int | None) -> Record | None:
        """The stream's record, if the store had it when the capture had read `upto` packets."""
        rec = self._recs.get(stream_id)
        return None if rec is None or (upto is not None and upto < rec.first_seq) else rec

    def retained_at(self, stream_id: str, ts_ns: int) -> bool:
        """The stream is held and its retention had not run out at capture time `ts_ns` (pins aside:
        who pins a stream depends on how items were batched)."""
        rec = self._recs.get(stream_id)
        return rec is not None and not (
            rec.closed and max(rec.closed_at, rec.close_ts + self.retention_ns) <= ts_ns)

    def packets(self, stream_id: str, start: int = 0, upto: int | None = None) -> list[Packet]:
        """The held packets from the `start`-th, up to those read when the capture had read `upto`."""
        rec = self._recs.get(stream_id)
        if rec is None:
            return []
        return rec.packets(start, rec.held_upto(upto))

    def pin(self, stream_id: str) -> bool:
        """Hold a stream (reference counted). False when the stream is no longer in the store."""
        rec = self._recs.get(stream_id)
        if rec is None:
            return False
        rec.pins += 1
        return True

    def unpin(self, stream_id: str) -> None:
        rec = self._recs.get(stream_id)
        if rec is None or rec.pins == 0:
            return
        rec.pins -= 1
        if rec.pins == 0:
            now = self.now_ns if self.hold_ns is None else min(self.now_ns, self.hold_ns)
            if rec.closed and rec.close_ts + self.retention_ns <= now:
                self._release(rec)
                return
            self._requeue(rec)
            if self.held > self.budget:
                self.evict()

    def snaplen(self, linktype: int) -> int:
        return self.snaplens.get(linktype, DEFAULT_SNAPLEN)

    def stream_ids(self) -> list[str]:
        """Ids of every stream still in the store, in order of first packet."""
        return list(self._recs)

    @property
    def counters(self) -> dict[str, int]:
        c = dict(self._c)
        c["bytes_held"] = self.held
        c["streams_held"] = len(self._recs)
        c["budget_bytes"] = self.budget
        return c

    # -- used by Capture ------------------------------------------------------------------------

    def add(self, rec: Record) -> None:
        """A new stream (a `Record`, or the capture's subclass of it)."""
        rec.first_seq = self.seq
        self._recs[rec.sid] = rec
        self.held += RECORD_OVERHEAD
        rec.queued = BARE | LIVE
        self._bare.append(rec)
        self._live.append(rec)

    def over_cap(self, rec: Record, wirelen: int) -> None:
        """A packet did not fit under the per-stream cap: count it."""
        if rec.truncated == 0:
            self._c["streams_truncated"] += 1
        rec.truncated += 1
        rec.count += 1
        rec.wire += wirelen
        self._c["packets_truncated"] += 1

    def lost_to_eviction(self, rec: Record, wirelen: int) -> None:
        """A packet of an evicted stream arrived: count it."""
        rec.count += 1
        rec.wire += wirelen
        self._c["packets_evicted"] += 1

    def closed(self, rec: Record, ts_ns: int, seen_ns: int = 0) -> None:
        """`rec` was just closed (its `closed` reason is set): its retention starts at `ts_ns`; the
        capture clock read `seen_ns` when the close was seen (an idle stream's close is seen later)."""
        if rec.released:
            return
        rec.close_ts = ts_ns
        rec.closed_at = max(ts_ns, seen_ns)
        rec.closed_seq = self.seq
        if self.on_closed is not None:
            self.on_closed(rec)
        self._closed.append(rec)
        if not rec.evicted:
            self._push(rec, 1)

    def advance(self, now_ns: int) -> None:
        """Release closed streams whose retention ran out on the capture clock.

        An expired stream that is pinned leaves the queue; `unpin` releases it later.
        """
        self.now_ns = now_ns
        limit = (now_ns if self.hold_ns is None else min(now_ns, self.hold_ns)) - self.retention_ns
        closed = self._closed
        while closed and closed[0].close_ts <= limit:
            rec = closed.popleft()
            if not rec.released and not rec.pins:
                self._release(rec)
        self._compact()

    def evict(self) -> None:
        """Free the held bytes down to 15/16 of the budget (so eviction runs in batches), in the
        order of the module docstring."""
        target = self.budget - (self.budget >> 4)
        for tier, (queue, bit) in enumerate(self._queues):
            while queue and self.held > target:
                rec = queue.popleft()
                rec.queued &= ~bit
                if rec.released or rec.pins:
                    continue
                if tier == 0:
                    if not rec.established:
                        self._drop_record(rec, "bare_streams_dropped")
                elif tier == 3:
                    self._drop_record(rec, "evicted_streams_dropped")
                elif not rec.evicted:
                    self._drop_packets(rec)
                    self._push(rec, 3)
                    if self.on_drop is not None and not rec.closed:
                        self.on_drop(rec, "evicted")
            if self.held <= target:
                return
        if self.held > self.budget:
            self._c["over_budget_all_pinned"] += 1

    # -- internals ------------------------------------------------------------------------------

    def _push(self, rec: Record, tier: int) -> None:
        """Queue `rec` for eviction tier `tier` (unless it is queued there already)."""
        queue, bit = self._queues[tier]
        if not rec.queued & bit:
            rec.queued |= bit
            queue.append(rec)

    def _compact(self) -> None:
        """Drop the entries of streams that left the store from a queue that holds mostly those (each
        stream is at most once in a queue, so a compaction at least halves it: O(1) amortised)."""
        limit = 2 * len(self._recs) + COMPACT_SLACK
        if len(self._closed) > limit:
            self._closed = deque(r for r in self._closed if not r.released)
        for queue, _bit in self._queues:
            if len(queue) > limit:
                kept = [r for r in queue if not r.released]
                queue.clear()
                queue.extend(kept)

    def _requeue(self, rec: Record) -> None:
        """An unpinned stream goes back in the queues of its state (entries skipped while it was pinned
        were dropped)."""
        if not rec.established:
            self._push(rec, 0)
        if rec.evicted:
            self._push(rec, 3)
        else:
            self._push(rec, 1 if rec.closed else 2)

    def _drop_record(self, rec: Record, counter: str) -> None:
        """Over the budget: a whole stream leaves the store before its retention ends."""
        n = self._c[counter]
        self._c[counter] = n + 1
        if n == 0 and self.warn is not None:
            if counter == "bare_streams_dropped":
                self.warn("stream store over its budget with many streams that never carried payload nor "
                          "completed a handshake "
                          "(a SYN or UDP flood?): dropping those first, oldest first "
                          f"(counted as {counter})")
            else:
                self.warn("stream store over its budget on stream records alone (a flood of short flows?): "
                          f"dropping evicted streams before their retention ends (counted as {counter})")
        self._release(rec)

    def _drop_packets(self, rec: Record) -> None:
        rec.inline = False
        if not rec.evicted:
            rec.evicted = True
            self._c["streams_evicted"] += 1
            self._c["packets_evicted"] += len(rec.datas)
        rec.count += len(rec.datas)
        rec.wire += rec.held_wire()
        self.held -= rec.cost() - RECORD_OVERHEAD
        rec.drop_packets()

    def _release(self, rec: Record) -> None:
        if self.on_release is not None:
            self.on_release(self.info(rec.sid))
        rec.released = True
        rec.inline = False
        self.held -= rec.cost()
        rec.drop_packets()
        del self._recs[rec.sid]
        self._c["streams_released"] += 1
        if self.on_drop is not None:
            self.on_drop(rec, "released")


class StoreAt:
    """A `StreamStore` seen as of a cut: `info` and `packets` as they were when the capture had read
    `cut()` packets (None: now). What scripts' helpers and wrappers read while the commands of an item
    or a deferred tick run, so that what they take does not depend on how items were batched."""

    def __init__(self, store: StreamStore, cut: Callable[[], int | None]) -> None:
        self.store = store
        self._cut = cut

    def info(self, stream_id: str) -> StreamInfo | None:
        return self.store.info(stream_id, self._cut())

    def packets(self, stream_id: str, start: int = 0) -> list[Packet]:
        return self.store.packets(stream_id, start, self._cut())

    def held_bytes(self, stream_id: str) -> tuple[int, bool] | None:
        return self.store.held_bytes(stream_id, self._cut())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
