"""The items of the dissection workers (`capture.shares`) merged into this process's, in the order
one process makes them: by the packet being read, then stream, then emission."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import orjson

from capture.shares import Share, stream_number

NEVER = 1 << 62


class SharedItems:
    """`deliver(n, mine)` after packet n was read hands `take` every item made while it was read.

    A stream closed while a packet is read stays in the store until that packet's items were taken
    (the worker that dissects it may have made items as it closed, which pin it)."""

    def __init__(self, shares: list[Share], take: Callable[[dict[str, Any]], None], capture: Any) -> None:
        self._shares = shares
        self._take = take
        self._capture = capture
        self._store = store = capture.store
        count = len(shares) + 1
        capture.rst_elsewhere = lambda sid: int(sid[:12]) % count != 0
        self._merged = heapq.merge(*(share.records() for share in shares))
        self._head = next(self._merged, None)
        self.next_packet = NEVER if self._head is None else self._head[0]
        self._closing: list[str] = []
        self._stopped = False
        store.on_closed = self._closed

    def _closed(self, rec: Any) -> None:
        if self._store.pin(rec.sid):
            self._closing.append(rec.sid)

    def deliver(self, packet: int, mine: list[dict[str, Any]]) -> None:
        """Take the items made while packet `packet` was read: ours (`mine`, emptied) and the workers'."""
        theirs = []
        resets = []
        head = self._head
        merged = self._merged
        while head is not None and head[0] <= packet:
            line = head[3]
            if line[:1] == b"!":
                ts, sid = line[1:].split(b" ", 1)
                resets.append((sid.decode(), int(ts)))
            else:
                theirs.append((head[1], orjson.loads(line)))
            head = next(merged, None)
        self._head = head
        self.next_packet = NEVER if head is None else head[0]
        if theirs:
            both = [(stream_number(item), item) for item in mine] + theirs
            both.sort(key=itemgetter(0))  # stable: each stream's items keep their order
            items = [item for _, item in both]
        else:
            items = list(mine)
        mine.clear()
        take = self._take
        for item in items:
            take(item)
        for sid, ts in resets:
            self._capture.close_reset(sid, ts)
        if self._closing:
            closing, self._closing = self._closing, []
            unpin = self._store.unpin
            for sid in closing:
                unpin(sid)

    def finish(self, mine: list[dict[str, Any]], read: int, error: Callable[[str], None]) -> None:
        """End of input (`read` packets were read): the items made as the streams closed, then the
        workers' exit. After `stop`, the workers' items of packets this process did not read are
        left out."""
        self.deliver(read if self._stopped else NEVER, mine)
        for share in self._shares:
            if self._stopped:
                share.kill()
                continue
            code = share.wait()
            if code not in (0, 2):
                error(f"dissection worker {share.index} failed (exit {code}): items of its streams "
                      "may be missing")

    def stop(self) -> None:
        """Reading stops early (a signal handler calls this): `finish` takes the workers' items of
        the packets this process read, then stops them."""
        self._stopped = True
