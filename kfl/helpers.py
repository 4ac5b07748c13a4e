"""Helper implementations: names, time, text tests. The compiler wires them into closures."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .values import texts

METHODS = frozenset({"startsWith", "endsWith", "contains", "json", "xml"})
TIME_UNITS_MS = {
    "seconds": 1_000,
    "minutes": 60_000,
    "hours": 3_600_000,
    "days": 86_400_000,
    "weeks": 7 * 86_400_000,
    "months": 30 * 86_400_000,
    "years": 365 * 86_400_000,
}
FUNCTIONS = frozenset({"datetime", "now", "limit", "redact", *TIME_UNITS_MS})
KNOWN = METHODS | FUNCTIONS
TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "startsWith": str.startswith,
    "endsWith": str.endswith,
    "contains": str.__contains__,
}
US_DATETIME = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*([AaPp])[Mm]\Z"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def now_ms(state: list) -> int:
    """The evaluation's current time in ms: read from the clock once per evaluation (state[1])."""
    now = state[1]
    if now is None:
        now = state[1] = time.time_ns() // 1_000_000
    return now


def parse_datetime(text: str) -> int | None:
    """UTC milliseconds of "10/19/2021, 6:29:02.593 PM" (ms optional, am/pm any case) or ISO 8601."""
    text = text.strip()
    us = US_DATETIME.match(text)
    try:
        if us:
            month, day, year, hour, minute, second = (int(g) for g in us.groups()[:6])
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if us.group(8) in "Pp" else 0)
            micro = int((us.group(7) or "0")[:6].ljust(6, "0"))
            moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MILLISECOND


def text_test(name: str, needle: Any) -> Callable[[Any], bool]:
    """`receiver.<name>(needle)` for a fixed needle: any text of the receiver passes the test."""
    test = TEXT_TESTS[name]
    needles = texts(needle)
    if len(needles) == 1:
        only = needles[0]

        def one(value: Any) -> bool:
            if value.__class__ is str:
                return test(value, only)
            return any(test(t, only) for t in texts(value))

        return one
    return lambda value: any(test(t, n) for t in texts(value) for n in needles)


def text_test_dynamic(name: str, receiver: Any, needle: Any) -> bool:
    """`receiver.<name>(needle)` when the needle is only known at evaluation time."""
    test = TEXT_TESTS[name]
    needles = texts(needle)
    return bool(needles) and any(test(t, n) for t in texts(receiver) for n in needles)
