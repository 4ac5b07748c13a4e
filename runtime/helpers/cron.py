"""Checking a cron expression before it is scheduled: 6 fields, seconds first (Kubeshark's gocron).

croniter alone accepts some strings that never fire or that mean something else than they say (a
5-field string, a reversed range, its own extensions) and words its errors in its own field order
(seconds last); `check_cron` rejects them at once, naming the field in the user's order. The same
syntax the script prelude checks: values, names, ranges, `*`, `?` and steps, comma-separated.
"""

from __future__ import annotations

import re

FIELDS = (  # name, lowest, highest, words
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_PART = re.compile(r"(?P<range>\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>\d+))?")


class CronError(ValueError):
    """A cron expression that is rejected when scheduled."""


def check_cron(cron: str) -> None:
    """Raise `CronError` unless `cron` is 6 valid fields that can fire."""
    if not isinstance(cron, str):
        raise CronError(f"invalid cron {cron!r}: not a string")
    fields = cron.strip().lower().split()
    if len(fields) != len(FIELDS):
        raise CronError(f"invalid cron {cron!r}: {len(fields)} fields, expected 6 "
                        "(second minute hour day-of-month month day-of-week)")
    values = [_field_values(cron, i, f) for i, f in enumerate(fields)]
    days, months = values[3], values[4]
    if (fields[5] in ("*", "?")
            and not any(d <= DAYS_IN_MONTH[m - 1] for d in days for m in months)):
        raise CronError(f"invalid cron {cron!r}: never fires (no month of field 5 has a day of field 4)")


def _field_values(cron: str, index: int, field: str) -> set[int]:
    """The values field `index` allows."""
    name, low, high, words = FIELDS[index]
    where = f"field {index + 1} ({name}) {field!r}"
    values: set[int] = set()
    for part in field.split(","):
        m = _PART.fullmatch(part)
        if m is None:
            raise CronError(f"invalid cron {cron!r}: {where} is not a value, range or step")
        if m["range"] == "?" and index not in (3, 5):
            raise CronError(f"invalid cron {cron!r}: {where}: '?' only in day of month or day of week")
        step = int(m["step"]) if m["step"] is not None else 1
        if step == 0:
            raise CronError(f"invalid cron {cron!r}: {where}: a step of 0")
        if m["range"] in ("*", "?"):
            first, last = low, high
        else:
            ends = [_number(cron, where, v, words, low, high) for v in m["range"].split("-")]
            first, last = ends[0], ends[-1]
            if m["step"] is not None and len(ends) == 1:
                last = high
            if first > last:
                raise CronError(f"invalid cron {cron!r}: {where}: the range starts after it ends")
        values.update(range(first, last + 1, step))
    return values


def _number(cron: str, where: str, text: str, words: tuple[str, ...], low: int, high: int) -> int:
    if text in words:
        return words.index(text) + (1 if low == 1 else 0)
    if not text.isdigit():
        raise CronError(f"invalid cron {cron!r}: {where}: {text!r} is not a number")
    n = int(text)
    if not low <= n <= high:
        raise CronError(f"invalid cron {cron!r}: {where}: {n} is out of range {low}-{high}")
    return n
