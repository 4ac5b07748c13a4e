"""Garbage collection for the packet loop: rare young collections, full ones on a timer.

The loop keeps many long-lived objects (streams in the store with their reassembly and dissector
state) and makes few reference cycles. CPython's default thresholds then walk the whole store
again every time it grows by a quarter: on bench_wrapper's 250 k-packet capture, 11 full
collections took 1.3 s of a 10 s run, each longer than the one before. While `LoopGC` is active,
young collections run every 100,000 allocations instead of 700 (a young collection walks what is
still alive of the last allocations: most of a batch's items at 10,000, few at 100,000 — 0.07 s
less of a 100 k-packet run), automatic full collections are off,
and `due()` runs a full one once `FULL_EVERY_S` of wall time have passed, which still bounds how
long cyclic garbage can live in a run of days.
"""

from __future__ import annotations

import gc
import time
from types import TracebackType

FULL_EVERY_S = 60.0
THRESHOLDS = (100_000, 50, 1 << 30)


class LoopGC:
    """Context manager around the packet loop; call `due()` from its periodic tick."""

    def __init__(self, full_every_s: float = FULL_EVERY_S) -> None:
        self.full_every_s = full_every_s
        self._saved: tuple[int, int, int] | None = None
        self._last_full = time.monotonic()

    def __enter__(self) -> LoopGC:
        self._saved = gc.get_threshold()
        gc.set_threshold(*THRESHOLDS)
        self._last_full = time.monotonic()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def due(self) -> None:
        """A full collection when the last one is `full_every_s` old."""
        now = time.monotonic()
        if self._saved is not None and now - self._last_full >= self.full_every_s:
            gc.collect()
            self._last_full = time.monotonic()
