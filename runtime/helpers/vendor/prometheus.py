"""`prometheus.metric(name, description, type, value, labels)`: counters and gauges on /metrics."""

from __future__ import annotations

from typing import Any

from runtime.helpers.files import HelperError

_METRICS: dict[str, Any] = {}


def prometheus_metric(name: str, description: str, kind: int, value: float, labels: dict[str, Any]) -> None:
    """type 1 = counter (value added), 2 = gauge (set), 3 = untyped (a gauge, set)."""
    from prometheus_client import Counter, Gauge

    names = tuple(sorted(str(k) for k in labels))
    metric = _METRICS.get(name)
    if metric is None:
        cls = Counter if kind == 1 else Gauge
        try:
            metric = cls(name, description or name, labelnames=names)
        except ValueError as exc:
            raise HelperError(str(exc)) from exc
        _METRICS[name] = metric
    if tuple(sorted(metric._labelnames)) != names:
        raise HelperError(f"metric {name!r} was first used with labels {list(metric._labelnames)}")
    target = metric.labels(**{str(k): str(v) for k, v in labels.items()}) if names else metric
    if kind == 1:
        if value < 0:
            raise HelperError("a counter can only increase")
        target.inc(value)
    else:
        target.set(value)
