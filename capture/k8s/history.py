"""A time-indexed, bounded history of who owned an address: `IP` or `IP:port` -> intervals.

Each interval says "from `start` (ns, inclusive) until `end` (ns, exclusive; None while open) this
key resolved to `identity`". Lookups are as of an item's capture time, so an IP that a new pod takes
over later does not rename the traffic of the pod that had it before. Writers (the resolver's watch
thread, a snapshot file) and readers (the capture thread) may run on different threads.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Identity = Mapping[str, Any]
FOREVER = 1 << 63
MAX_INTERVALS = 16  # per key: the oldest closed interval is dropped beyond this (the resolver also
# forgets intervals that ended a day ago, see capture.k8s.resolver.KEEP_NS)
LINGER_NS = 30 * 1_000_000_000  # a closed interval still answers this long after its end if nothing follows


@dataclass(slots=True)
class Interval:
    start: int
    end: int | None
    identity: Identity


def key_of(ip: str, port: int | None) -> str:
    """`10.0.0.1`, `10.0.0.1:80`, `[fd00::1]:80`."""
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


_ALL: weakref.WeakSet[History] = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child (`kflpcap items --jobs`) has no writer threads: a lock one of them held at the
    fork would never be released there."""
    for history in list(_ALL):
        history._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


class History:
    """The intervals of every key. `version` changes whenever they do."""

    def __init__(self, max_intervals: int = MAX_INTERVALS) -> None:
        self._keys: dict[str, list[Interval]] = {}
        self._lock = threading.Lock()
        self._max = max_intervals
        self.version = 0
        _ALL.add(self)

    def __len__(self) -> int:
        return len(self._keys)

    def set(self, key: str, identity: Identity | None, at_ns: int, amend: bool = False) -> bool:
        """From `at_ns` on, `key` resolves to `identity` (None: to nothing). True when that changed.

        A start earlier than the end of the key's last interval is moved to that end (history is
        never rewritten). `amend`: a new identity replaces the open interval's instead (the same
        object, seen more completely)."""
        with self._lock:
            intervals = self._keys.get(key)
            last = intervals[-1] if intervals else None
            if last is not None and last.end is None:
                if identity is not None and last.identity == identity:
                    return False
                if identity is not None and amend:
                    last.identity = identity
                    self.version += 1
                    return True
                last.end = max(at_ns, last.start + 1)
                at_ns = last.end
            elif identity is None:
                return False
            elif last is not None and last.end is not None:
                at_ns = max(at_ns, last.end)
            if identity is not None:
                if intervals is None:
                    intervals = self._keys[key] = []
                intervals.append(Interval(at_ns, None, identity))
                if len(intervals) > self._max:
                    del intervals[0]
            self.version += 1
            return True

    def current(self, key: str) -> Identity | None:
        intervals = self._keys.get(key)
        if intervals and intervals[-1].end is None:
            return intervals[-1].identity
        return None

    def lookup(self, key: str, ts_ns: int) -> tuple[Identity | None, int, int]:
        """(identity as of `ts_ns` or None, lo, hi): the answer holds for every time in [lo, hi)."""
        with self._lock:
            intervals = self._keys.get(key)
            if not intervals:
                return None, 0, FOREVER
            lo = 0
            for i, iv in enumerate(intervals):
                if ts_ns < iv.start:
                    return None, lo, iv.start
                end = FOREVER if iv.end is None else iv.end
                if ts_ns < end:
                    return iv.identity, iv.start, end
                nxt = intervals[i + 1].start if i + 1 < len(intervals) else FOREVER
                linger = min(end + LINGER_NS, nxt)
                if ts_ns < linger:
                    return iv.identity, end, linger
                lo = linger
            return None, lo, FOREVER

    def open_keys(self) -> Iterator[tuple[str, Identity]]:
        """Every key with an open interval and its identity (a copy: safe while writers run)."""
        with self._lock:
            items = [(k, v[-1].identity) for k, v in self._keys.items() if v[-1].end is None]
        yield from items

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every key's intervals: {key: [{since, until, **identity}]} (ns times; until None while open)."""
        with self._lock:
            return {k: [{"since": iv.start, "until": iv.end, **iv.identity} for iv in v]
                    for k, v in self._keys.items()}

    def prune(self, before_ns: int) -> int:
        """Forget intervals that ended before `before_ns`; the number dropped."""
        dropped = 0
        with self._lock:
            for key in list(self._keys):
                intervals = self._keys[key]
                keep = [iv for iv in intervals if iv.end is None or iv.end >= before_ns]
                dropped += len(intervals) - len(keep)
                if keep:
                    self._keys[key] = keep
                else:
                    del self._keys[key]
            if dropped:
                self.version += 1
        return dropped
