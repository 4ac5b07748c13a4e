"""`prometheus.metric(name, description, type, value, labels?)` and `prometheus.vector(...)`: the
scripts' series, kept by the run (`Services.prometheus`) and exposed on `--metrics-port`'s
/metrics beside kflpcap's own metrics.

`ScriptMetrics` is a prometheus_client collector: the metrics endpoint reads it at scrape time.
Type 1 is a counter (the value is added; it must not be negative), 2 a gauge and 3 an untyped value
(both set). A series is one metric name plus one set of label values; it belongs to the script that
last wrote it and is dropped when that script unloads (`forget`). A name keeps the type and label
names it was first used with while any series of it exists; kflpcap's own names (`kflpcap_…`)
are refused.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, UnknownMetricFamily

from runtime.helpers.files import HelperError

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_KINDS = {1: "counter", 2: "gauge", 3: "untyped"}
_FAMILY = {1: CounterMetricFamily, 2: GaugeMetricFamily, 3: UnknownMetricFamily}


@dataclass
class _Family:
    description: str
    kind: int
    labels: tuple[str, ...]
    # label values -> [value, owner]
    series: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)


class ScriptMetrics:
    """The scripts' metric series of one run; thread-safe (scrapes come from the server thread)."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def record(self, owner: Any, name: str, description: str, kind: int, value: float,
               labels: dict[str, Any]) -> None:
        if not _NAME.match(name) or name.startswith("kflpcap_"):
            raise HelperError(f"invalid metric name {name!r}")
        if kind not in _KINDS:
            raise HelperError(f"type must be 1 (counter), 2 (gauge) or 3 (untyped), not {kind!r}")
        bad = [k for k in labels if not _LABEL.match(str(k)) or str(k).startswith("__")]
        if bad:
            raise HelperError(f"invalid label name {bad[0]!r}")
        if kind == 1 and value < 0:
            raise HelperError("a counter can only increase")
        names = tuple(sorted(str(k) for k in labels))
        values = tuple(str(labels[k]) for k in sorted(labels, key=str))
        with self._lock:
            family = self._families.get(name)
            if family is None:
                family = self._families[name] = _Family(description or name, kind, names)
            elif family.kind != kind or family.labels != names:
                raise HelperError(
                    f"metric {name!r} is a {_KINDS[family.kind]} with labels {list(family.labels)}"
                )
            row = family.series.get(values)
            if row is None:
                family.series[values] = [value, owner]
            else:
                row[0] = row[0] + value if kind == 1 else value
                row[1] = owner

    def forget(self, owner: Any) -> None:
        """Drop every series `owner` wrote (the script unloaded)."""
        with self._lock:
            for name, family in list(self._families.items()):
                family.series = {k: row for k, row in family.series.items() if row[1] is not owner}
                if not family.series:
                    del self._families[name]

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rows = [(name, f.description, f.kind, f.labels, [(k, row[0]) for k, row in f.series.items()])
                    for name, f in self._families.items()]
        for name, description, kind, labels, series in rows:
            family = _FAMILY[kind](name, description, labels=list(labels))
            for values, value in series:
                family.add_metric(list(values), value)
            yield family
