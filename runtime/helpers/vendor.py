"""`vendor.webhook`, `vendor.slack` and `prometheus.*` (vendor.s3.put is `wrappers.vendor_s3_put`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from runtime.helpers.files import HelperError

HTTP_TIMEOUT_S = 5.0


def _request(
    method: str, url: str, body: bytes, headers: dict[str, str], fail_on_status: bool = True
) -> bytes:
    if not url.lower().startswith(("http://", "https://")):
        raise HelperError(f"URL must be http(s): {url!r}")
    req = urllib.request.Request(
        url, data=body or None, method=method.upper(), headers={str(k): str(v) for k, v in headers.items()}
    )
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if not fail_on_status:
            return exc.read()
        raise HelperError(f"{method.upper()} {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HelperError(f"{method.upper()} {url}: {reason}") from exc


def webhook(method: str, url: str, body: str, headers: dict[str, Any]) -> str:
    """The response body (any status, as Kubeshark); a transport failure raises HelperError."""
    return _request(method, url, body.encode("utf-8"), headers, fail_on_status=False).decode(
        "utf-8", "replace"
    )


def slack(url: str, pretext: str, text: str, color: str) -> None:
    """Kubeshark's shape: one attachment as the top-level body, with a Timestamp field."""
    attachment = {
        "pretext": pretext,
        "text": text,
        "color": color,
        "fields": [{"title": "Timestamp", "value": time.strftime("%Y-%m-%d %H:%M:%S %z"), "short": False}],
    }
    _request("POST", url, json.dumps(attachment).encode(), {"Content-Type": "application/json"})


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
