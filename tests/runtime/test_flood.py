"""A SYN flood through the whole pipeline with the seed script: the store stays in its budget, says
so, and the HTTP-500 repositories hold exactly the packets of a run without the flood."""

from __future__ import annotations

import functools
import gzip
import logging
from collections import Counter
from pathlib import Path

import pytest

import capture
from bench.floodgen import read_pcap, syn_flood, write_mixed
from bench.trafficgen import write_capture
from tests.runtime.conftest import run_pipeline

ROOT = Path(__file__).parents[2]
BUDGET = 6 << 20


def repository_packets(data: Path, query: int) -> Counter:
    """(timestamp, frame) of every packet in the query's local repositories."""
    packets: Counter = Counter()
    for repo in (data / "repositories").glob(f"*/*/kfl_{query}/*.pcap.gz"):
        raw = gzip.decompress(repo.read_bytes())
        path = repo.with_suffix("")
        path.write_bytes(raw)
        packets.update(read_pcap(path))
    return packets


@pytest.fixture
def small_store(monkeypatch):
    """The pipeline's capture with a 6 MiB store budget (the default 200 MiB takes 200 k SYNs to fill)."""
    monkeypatch.setattr(capture, "Capture",
                        functools.partial(capture.Capture, capture.CaptureConfig(budget_bytes=BUDGET)))


@pytest.mark.timeout(240)
def test_a_syn_flood_keeps_the_http_500_repository_exact(tmp_path: Path, small_store, caplog) -> None:
    clean = tmp_path / "clean.pcap"
    # 20 k SYNs in 2 s over a 6 MiB store: ~2,300 half-open streams fit, the flood sends ~150 per
    # round trip (15 ms) of the real connections, so their handshakes complete before their turn
    truth = write_capture(clean, packets=2000, http500_ratio=0.3, duration=2.0)
    flooded = tmp_path / "flooded.pcap"
    start = int(truth.first_ts * 1e9)
    write_mixed(flooded, clean, syn_flood(20_000, start, int((truth.last_ts - truth.first_ts) * 1e9)))
    seed = {"kfl_pcap_s3.js": (ROOT / "scripts" / "kfl_pcap_s3.js").read_text()}

    base = run_pipeline(tmp_path / "a", seed, pcaps=[clean])
    with caplog.at_level(logging.WARNING, logger="kflpcap.capture"):
        run = run_pipeline(tmp_path / "b", seed, pcaps=[flooded])

    expected = repository_packets(base.data, 0)
    assert sum(expected.values()) > 0
    assert repository_packets(run.data, 0) == expected
    assert repository_packets(run.data, 1) == repository_packets(base.data, 1)
    c = run.pipeline.capture.counters
    assert c["packets_read"] == 20_000 + base.pipeline.capture.counters["packets_read"]
    assert c["bare_streams_dropped"] > 20_000 - BUDGET // 1000 and c["over_budget_all_pinned"] == 0
    assert c["bytes_held"] <= BUDGET
    assert [r.getMessage() for r in caplog.records if "SYN or UDP flood" in r.getMessage()]
