"""`vendor.influxdb(url, token, organization, bucket, measurement, fields, tags?)`: one point
written with the InfluxDB v2 write API (`POST <url>/api/v2/write?org=&bucket=&precision=ns`,
`Authorization: Token <token>`), in line protocol.

Fields keep their JSON types as Kubeshark's Go client does: whole numbers are integers (`12i`),
other numbers floats, booleans `true`/`false`, strings quoted; objects and arrays are written as
their JSON text; null fields are left out. Tags and fields are sorted by key, as influxdb-client
writes them. The point's time is the runtime clock (capture time on file input). Unlike Kubeshark
(whose async writer drops errors), a refused write is reported as a script error.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, request

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def _key(text: str) -> str:
    out = str(text).translate(_KEY)
    # a trailing backslash would escape the separator after it
    return out + " " if out.endswith("\\") else out


def _field(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    return '"' + value.translate(_STRING) + '"'


def line(measurement: str, fields: dict[str, Any], tags: dict[str, str], time_ns: int) -> str:
    """One point in line protocol (`measurement,tag=v field=1i <ns>`)."""
    if not measurement:
        raise HelperError("measurement is empty")
    encoded = [(k, _field(v)) for k, v in sorted(fields.items())]
    parts = [f"{_key(k)}={v}" for k, v in encoded if v is not None]
    if not parts:
        raise HelperError("a point needs at least one field (null and non-finite values are left out)")
    head = measurement.translate(_MEASUREMENT) + "".join(
        f",{_key(k)}={_key(v)}" for k, v in sorted(tags.items()) if k and v
    )
    return f"{head} {','.join(parts)} {time_ns}"


def influxdb(
    url: str, token: str, org: str, bucket: str, measurement: str, fields: dict[str, Any],
    tags: dict[str, str], time_ns: int,
) -> None:
    body = line(measurement, fields, tags, time_ns).encode("utf-8")
    target = f"{url.rstrip('/')}/api/v2/write?" + urlencode({"org": org, "bucket": bucket, "precision": "ns"})
    headers = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        request("POST", target, body, headers)
    except HttpError as exc:
        text = exc.body.decode("utf-8", "replace") if exc.body else ""
        raise HelperError(f"{exc}{': ' + text if text else ''}") from exc
