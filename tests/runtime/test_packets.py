"""onPacketCaptured sees every captured packet, as Kubeshark documents: ARP, ICMP, IGMP, non-IP,
damaged and fragmented packets too, each once — counted against tshark on every sample capture."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import sample_pcaps
from tests.runtime.conftest import run_pipeline

COUNTER = """// Count
function onPacketCaptured(info) {
  console.log(info.captureLength + " " + info.length + " " + (info.stream || "-"));
}
"""


def _tshark_frames(pcap: Path) -> tuple[list[tuple[int, int]], bool]:
    """((cap_len, len) of every frame tshark reads, does tshark call the file damaged)."""
    done = subprocess.run(["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.cap_len", "-e",
                           "frame.len"], capture_output=True, text=True, timeout=300)
    frames = [(int(c), int(n)) for c, n in (line.split("\t") for line in done.stdout.splitlines() if line)]
    return frames, "damaged or corrupt" in done.stderr


@pytest.mark.parametrize("pcap", sample_pcaps(), ids=lambda p: p.name)
def test_on_packet_captured_counts_equal_tshark(tmp_path: Path, pcap: Path) -> None:
    run = run_pipeline(tmp_path, {"count.js": COUNTER}, pcaps=[pcap], batch_items=500)
    seen = [ln.split() for ln in run.lines("Count")[1:]]  # the first line is the load banner
    frames, damaged = _tshark_frames(pcap)
    if damaged:  # tshark lists the record where the file breaks; the reader stops before it
        assert len(frames) - len(seen) in (0, 1)
        frames = frames[: len(seen)]
    assert len(seen) == len(frames) == run.pipeline.capture.counters["packets_read"]
    assert sum(int(c) for c, _, _ in seen) == sum(c for c, _ in frames)
    assert sum(int(n) for _, n, _ in seen) == sum(n for _, n in frames)
    assert run.errors("Count") == []
