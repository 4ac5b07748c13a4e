"""prometheus.metric / prometheus.vector: during a `kflpcap run --metrics-port`, /metrics shows the
script's series with its labels (counts equal tshark's on the same capture); a script's series go
away when it unloads."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.compat.conftest import MIXED, REPO, tshark_count, tshark_fields

SCRIPT = """// HTTP Error And Latency Metrics
// Exposes a counter of HTTP items, 5xx per status and the last latency per method.
function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !data.response) return;
  prometheus.metric("kubeshark_http_items", "HTTP items seen", 1, 1);
  if (data.response.status >= 500) {
    prometheus.vector("http_server_errors", "HTTP 5xx by status", 1, 1,
      { s_status: "" + data.response.status });
  }
  prometheus.vector("http_last_latency_ms", "Last latency per method", 2, data.elapsedTime,
    { s_method: data.request.method });
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(port: int, ready: Callable[[dict], bool], proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            samples = scrape(port)
        except OSError:
            samples = {}
        if ready(samples):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"/metrics never got there: {samples}")


def test_script_metrics_on_the_metrics_endpoint_during_a_run(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "metrics.js"
    script.write_text(SCRIPT)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", "run", "--pcap", "-", "--scripts", str(scripts), "--data-dir",
         str(tmp_path / "data"), "--no-progress", "--metrics-port", str(port), "--batch", "1"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(MIXED.read_bytes())
        proc.stdin.flush()
        codes = tshark_fields(MIXED, "http.response.code >= 500", "http.response.code")
        expected = {c: codes.count(c) for c in set(codes)}
        assert expected == {"500": tshark_count(MIXED, "http.response.code == 500"), "502": 2}

        def errors(samples: dict) -> dict[str, float]:
            return {dict(k[1])["s_status"]: v for k, v in samples.items()
                    if k[0] == "http_server_errors_total"}

        samples = wait_for(port, lambda s: errors(s) == {c: float(n) for c, n in expected.items()}, proc)
        assert samples[("kubeshark_http_items_total", ())] >= sum(expected.values())
        latency = {dict(k[1])["s_method"]: v for k, v in samples.items() if k[0] == "http_last_latency_ms"}
        assert set(latency) <= set(tshark_fields(MIXED, "http.request", "http.request.method"))
        assert "GET" in latency and all(v >= 0 for v in latency.values())
        assert samples[("kflpcap_scripts", (("status", "loaded"),))] == 1

        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_unloading_a_script_drops_its_series(tmp_path: Path) -> None:
    from tests.runtime.conftest import Recorder

    rec = Recorder(tmp_path)
    item = {"protocol": {"name": "http"}, "request": {"method": "GET"},
            "response": {"status": 502}, "elapsedTime": 7}
    other = 'prometheus.vector("other_script", "kept", 2, 1, {s_x: "y"});'
    with rec.host(other, "other.js"):
        with rec.host(SCRIPT, "metrics.js") as host:
            rec.feed(host, [item, item])
            names = {m.name: m for m in rec.services.prometheus.collect()}
            assert {s.value for s in names["http_server_errors"].samples
                    if s.name.endswith("_total")} == {2.0}
            assert names["http_last_latency_ms"].samples[0].labels == {"s_method": "GET"}
        left = [m.name for m in rec.services.prometheus.collect()]
        assert left == ["other_script"]
    assert list(rec.services.prometheus.collect()) == []
