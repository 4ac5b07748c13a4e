"""The packet loop's garbage collection: cycles still die, on the timer, and thresholds come back."""

from __future__ import annotations

import gc
import weakref

from runtime.engine.gc_policy import THRESHOLDS, LoopGC


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_cycles_are_collected_when_the_timer_is_due_and_thresholds_restored() -> None:
    before = gc.get_threshold()
    with LoopGC(full_every_s=3600) as policy:
        assert gc.get_threshold() == THRESHOLDS
        gc.collect()
        gc.freeze()  # what is there already stays out of the way; the cycle below is young
        try:
            ref = _cycle()
            policy.due()  # not due yet: nothing collects it (no automatic full collection)
            assert ref() is not None
            policy.full_every_s = 0
            policy.due()
            assert ref() is None
        finally:
            gc.unfreeze()
    assert gc.get_threshold() == before
