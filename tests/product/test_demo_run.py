"""The demo through the real pipeline: `kflpcap run --pcap demo.pcap --scripts scripts/` keeps exactly
the HTTP-500 connections and the DNS flows the demo clients made (checked with tshark), and every
bundled script runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.demo import DEMO_JSON, DEMO_PCAP
from tests.product.tshark_oracle import l4_flows

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    data = tmp_path_factory.mktemp("data")
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "run", "--pcap", str(DEMO_PCAP), "--scripts", str(REPO / "scripts"),
         "--data-dir", str(data), "--node", "demo-node"],
        capture_output=True, text=True, timeout=240, cwd=data,
    )
    return done, data


def _repository_flows(data: Path, index: int) -> set[str]:
    pcaps = sorted(data.glob(f"**/demo-node/kfl-pcap-s3/kfl_{index}/*.pcap.gz"))
    assert pcaps, f"no repository written for query {index}"
    return set().union(*(l4_flows(p) for p in pcaps))


def test_repositories_hold_exactly_the_500s_and_the_dns_flows(run: tuple) -> None:
    done, data = run
    assert done.returncode == 0, done.stdout + done.stderr
    want = json.loads(DEMO_JSON.read_text())
    assert _repository_flows(data, 0) == set(want["http500_streams"])
    assert _repository_flows(data, 1) == set(want["dns_flows"])


def test_every_bundled_script_runs_without_errors_and_jobs_fire_on_capture_time(run: tuple) -> None:
    done, data = run
    said = done.stdout + done.stderr
    for script in sorted((REPO / "scripts").glob("*.js")):
        title = script.read_text().splitlines()[0][2:].strip()
        assert f"{title}]" in said and f"{title}:ERROR]" not in said, title
    assert "HTTP 5xx Logger] 500 " in said
    # the first per-minute report (capture time): one line per protocol query, none above what the clients saw
    want = json.loads(DEMO_JSON.read_text())
    firsts = {}
    for line in said.splitlines():
        if line.startswith("Protocol Queries] ") and " items on " in line:
            query, counts = line.removeprefix("Protocol Queries] ").rsplit(": ", 1)
            firsts.setdefault(query, int(counts.split(" items on ")[1].split()[0]))
    limits = {"http2": "h2_500_streams", "grpc": "grpc_error_streams", "tls": "tls_internal_streams",
              "redis": "redis_error_streams"}
    assert {q.split()[0] for q in firsts} == set(limits)
    for query, connections in firsts.items():
        assert connections <= len(want[limits[query.split()[0]]]), query
    assert any(firsts.values())
    report = json.loads(next(data.glob("**/reports/status.json")).read_text())
    assert report["node"] == "demo-node" and report["items"] > 0 and "500" in report["httpByStatus"]
