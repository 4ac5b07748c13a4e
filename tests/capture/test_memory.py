"""Acceptance 5: a generated capture streamed through stdin goes through `kflpcap streams` with bounded
peak RSS, and the counters say what was dropped. (The 1 GB figure is `python -m bench.bench_streams
--memory`; CI runs ~170 MB to stay fast.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PACKETS = 400_000


def _pipeline(*streams_args: str, duration: float | None = None) -> tuple[dict, float, int]:
    """(summary, peak RSS MB of `kflpcap streams`, packets generated) for generator | kflpcap streams."""
    gen_cmd = [sys.executable, "-m", "bench.trafficgen", "--packets", str(PACKETS), "--out", "-"]
    if duration is not None:
        gen_cmd += ["--duration", str(duration)]
    gen = subprocess.Popen(gen_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    streams_cmd = [sys.executable, "-m", "runtime", "streams", "--json", "--pcap", "-", *streams_args]
    streams = subprocess.Popen(streams_cmd, stdin=gen.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gen.stdout.close()
    out, err = streams.communicate(timeout=240)
    assert streams.returncode == 0, err
    gen_err = gen.communicate(timeout=60)[1].decode()
    generated = int(gen_err.split("trafficgen: ", 1)[1].split(" packets", 1)[0])
    last = out.decode().rstrip("\n").rsplit("\n", 1)[-1]
    summary = json.loads(last)["summary"]
    return summary, summary["peak_rss_mb"], generated


def test_default_budget_stays_bounded_through_stdin() -> None:
    summary, rss_mb, generated = _pipeline(duration=120)  # 120 s of capture time: retention (30 s) matters
    assert summary["packets_read"] == generated >= PACKETS
    assert summary["packets_streamed"] == generated
    assert rss_mb < 400, rss_mb
    # nothing had to be evicted, and the counters say so; streams left after their retention
    assert summary["streams_evicted"] == 0 and summary["packets_evicted"] == 0
    assert summary["streams_released"] > 0
    assert summary["streams_released"] + summary["streams_held"] == summary["streams"]


def test_small_budget_evicts_and_counts() -> None:
    summary, rss_mb, generated = _pipeline("--budget-mb", "32", duration=10)
    assert summary["packets_read"] == generated
    assert summary["streams_evicted"] > 0 and summary["packets_evicted"] > 0
    assert summary["bytes_held"] <= 32 << 20
    assert rss_mb < 32 + 150, rss_mb
