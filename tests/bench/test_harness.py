"""bench.harness: per-child measurements, round-robin medians, the tshark two-pass export baseline."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import harness
from bench.trafficgen import write_capture

TSHARK = "/usr/bin/tshark"


def _alloc(mb: int) -> list[str]:
    return [sys.executable, "-c", f"b = bytearray({mb} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"]


def test_run_once_measures_the_child_not_the_session() -> None:
    session = bytearray(250 * 1024 * 1024)  # a large test session: its size must not show in the child's
    session[::4096] = b"x" * len(session[::4096])
    big = harness.run_once(_alloc(200))
    small = harness.run_once(_alloc(10))
    del session
    assert big.rss_mb >= 200 > small.rss_mb
    assert big.cpu > 0 and big.wall > 0


def test_run_once_raises_on_failure_with_stderr() -> None:
    with pytest.raises(harness.CommandFailed, match="boom"):
        harness.run_once([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_compare_alternates_and_takes_medians(tmp_path: Path) -> None:
    log = tmp_path / "order"
    cmd = [sys.executable, "-c", f"open({str(log)!r}, 'a').write(__import__('sys').argv[1])"]
    res = harness.compare({"a": [*cmd, "a"], "b": lambda i: [*cmd, "b"]}, baseline="a", repeat=3, warmup=1)
    assert log.read_text() == "abbaabba"  # round-robin, order rotating every round
    assert {k: v.runs for k, v in res.items()} == {"a": 3, "b": 3}
    a = res["a"]
    assert a.wall == sorted(s.wall for s in a.samples)[1]
    out, js = io.StringIO(), io.StringIO()
    harness.print_table(res, packets=1000, baseline="a", bench="t", file=out, json_file=js)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["name", "packets"] and len(lines) == 3
    docs = [json.loads(x) for x in js.getvalue().splitlines()]
    assert [d["name"] for d in docs] == ["a", "b"]
    assert docs[1]["speedup_vs_baseline"] == pytest.approx(a.wall / res["b"].wall)


def _tshark_count(pcap: Path) -> int:
    out = subprocess.run([TSHARK, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                         capture_output=True, check=True).stdout
    return len(out.splitlines())


def test_tshark_two_pass_exports_the_true_streams(tmp_path: Path) -> None:
    pcap, tj = tmp_path / "c.pcap", tmp_path / "c.json"
    write_capture(pcap, truth_path=tj, packets=3000, seed=4)
    truth = json.loads(tj.read_text())
    per_stream = {tuple(s["tuple"]): s["packets"] for s in truth["packets_per_stream"]["tcp"]}
    per_stream |= {tuple(s["tuple"]): s["packets"] for s in truth["packets_per_stream"]["udp"]}
    sample = harness.run_steps(harness.tshark_export_seed(pcap, tmp_path / "exp").steps)
    assert sample.wall > 0 and sample.rss_mb > 0
    want_500 = sum(per_stream[tuple(t)] for t in truth["http500_streams"])
    want_dns = sum(per_stream[tuple(t[1:])] for t in truth["dns_flows"])
    assert want_500 > 0 and want_dns > 0
    assert _tshark_count(tmp_path / "exp" / "http500.pcap") == want_500
    assert _tshark_count(tmp_path / "exp" / "dns.pcap") == want_dns


def test_cached_capture_is_built_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "OUT_DIR", tmp_path)
    p1 = harness.cached_capture(packets=500, seed=2)
    mtime = p1.stat().st_mtime_ns
    p2 = harness.cached_capture(packets=500, seed=2)
    p3 = harness.cached_capture(packets=500, seed=3)
    assert p1 == p2 and p2.stat().st_mtime_ns == mtime and p3 != p1
    assert harness.capture_packets(p1) == harness.cached_truth(p1)["packets"] == _tshark_count(p1)
    harness.truth_path(p1).unlink()
    assert harness.capture_packets(p1) == _tshark_count(p1)  # walking the file agrees
