"""vendor.influxdb: a KPI script (telemetry/influx_db_kpis.js style) writes a point per HTTP
error to a local InfluxDB v2 write endpoint that parses line protocol strictly; each line is
cross-checked against influxdb-client's own encoder."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from influxdb_client import Point

from tests.compat.conftest import MIXED, Request, kflpcap_run, tshark_fields

SCRIPT = """// InfluxDB HTTP Error KPIs
// One point per HTTP error with latency, status and identity tags.
var ERRORS = "http and response.status >= 400";
function onItemCaptured(data) {
  if (!kfl.match(ERRORS, data)) return;
  vendor.influxdb(env.INFLUX_URL, env.INFLUX_TOKEN, env.INFLUX_ORG, env.INFLUX_BUCKET,
    "http errors",
    {
      status: data.response.status,
      latency_ms: data.elapsedTime,
      ratio: data.response.status / 1000,
      server_error: data.response.status >= 500,
      path: data.request.path + ' "quoted" \\\\ end',
      empty: null
    },
    { method: data.request.method, "dst host": data.dst.ip + "," + data.dst.port,
      status: "" + data.response.status });
}
"""

_TOKEN = re.compile(r"(?:\\.|[^\\, =])+")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _name(line: str, pos: int, stops: str) -> tuple[str, int]:
    out = []
    while pos < len(line) and line[pos] not in stops:
        if line[pos] == "\\":
            assert pos + 1 < len(line), "a trailing backslash"
            out.append(line[pos + 1])
            pos += 2
        else:
            out.append(line[pos])
            pos += 1
    assert out, f"empty name at {pos} in {line!r}"
    return "".join(out), pos


def parse_line(line: str) -> tuple[str, dict, dict, int]:
    """Strict line protocol: measurement[,tag=v...] field=v[,field=v...] timestamp."""
    measurement, pos = _name(line, 0, ", ")
    tags: dict[str, str] = {}
    while line[pos] == ",":
        key, pos = _name(line, pos + 1, ",= ")
        assert line[pos] == "=", line
        tags[key], pos = _name(line, pos + 1, ", ")
    assert line[pos] == " ", line
    pos += 1
    fields: dict[str, object] = {}
    while True:
        key, pos = _name(line, pos, ",= ")
        assert line[pos] == "=", line
        pos += 1
        if line[pos] == '"':
            out, pos = [], pos + 1
            while line[pos] != '"':
                if line[pos] == "\\":
                    assert line[pos + 1] in '"\\', f"bad escape in {line!r}"
                    pos += 1
                out.append(line[pos])
                pos += 1
            fields[key], pos = "".join(out), pos + 1
        else:
            m = re.compile(r"(-?\d+)i|(true|false)|(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)").match(line, pos)
            assert m, f"bad field value at {pos} in {line!r}"
            fields[key] = int(m[1]) if m[1] else (m[2] == "true") if m[2] else float(m[3])
            pos = m.end()
        assert key not in ("",) and pos < len(line)
        if line[pos] == " ":
            break
        assert line[pos] == ",", line
        pos += 1
    timestamp = line[pos + 1:]
    assert re.fullmatch(r"\d+", timestamp), line
    return measurement, tags, fields, int(timestamp)


def test_each_http_error_becomes_one_typed_point(tmp_path: Path, http_service) -> None:
    def write(req: Request) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(req.path)
        assert req.method == "POST" and url.path == "/api/v2/write"
        assert parse_qs(url.query) == {"org": ["acme"], "bucket": ["kpis"], "precision": ["ns"]}
        assert req.headers["authorization"] == "Token t0k3n"
        assert req.headers["content-type"].startswith("text/plain")
        for line in req.body.decode().splitlines():
            parse_line(line)
        return 204, {}, b""

    service = http_service(write)
    kflpcap_run(tmp_path, SCRIPT, MIXED, {"INFLUX_URL": service.url, "INFLUX_TOKEN": "t0k3n",
                                          "INFLUX_ORG": "acme", "INFLUX_BUCKET": "kpis"})
    assert service.refused == []
    codes = sorted(int(c) for c in tshark_fields(MIXED, "http.response.code >= 400", "http.response.code"))
    assert len(codes) == 5 and len(service.got) == len(codes)
    points = [parse_line(r.body.decode()) for r in service.got]
    assert sorted(f["status"] for _, _, f, _ in points) == codes
    for (measurement, tags, fields, ts), req in zip(points, service.got, strict=True):
        assert measurement == "http errors"
        assert set(tags) == {"method", "dst host", "status"} and "," in tags["dst host"]
        assert isinstance(fields["status"], int) and isinstance(fields["latency_ms"], int)
        assert isinstance(fields["ratio"], float) and fields["server_error"] == (fields["status"] >= 500)
        assert fields["path"].endswith(' "quoted" \\ end') and "empty" not in fields
        point = Point(measurement).time(ts)
        for k, v in tags.items():
            point.tag(k, v)
        for k, v in fields.items():
            point.field(k, v)
        assert req.body.decode() == point.to_line_protocol()
