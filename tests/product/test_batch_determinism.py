"""A replay gives the same console output, items and repositories whatever `--batch` is: the wrappers'
ticks (maxMinutes, the maxBytes recheck) travel in the ordered stream of items, and what a wrapper
reads of the stream store and the name table is cut at the item or tick it works for."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.trafficgen import write_capture

ROOT = Path(__file__).resolve().parents[2]

ROTATE = """// Rotate
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["http and response.status == 500", "dns"], maxMinutes: 4,
                            maxL4Streams: 6 });
}
"""
SEEN = """// Seen
function onItemCaptured(data) {
  console.log(data.id + " " + data.stream + " " + data.protocol.name + " " + data.timestamp);
}
"""
VOLATILE = ("run", "previous_manifest_sha256")  # a run's id, and the chain link that hashes it


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain HTTP/1.1 + DNS over 30 minutes: sparse in time, with rotations and full repositories."""
    path = tmp_path_factory.mktemp("det") / "sparse.pcap"
    write_capture(path, packets=6000, seed=3, duration=1800, plain=True)
    return path


def _replay(capture: Path, tmp: Path, *batch: str) -> tuple[list[str], dict[str, bytes], dict[str, dict]]:
    tmp.mkdir()
    scripts = tmp / "scripts"
    scripts.mkdir()
    (scripts / "rotate.js").write_text(ROTATE)
    (scripts / "seen.js").write_text(SEEN)
    data = tmp / "data"
    done = subprocess.run([sys.executable, "-m", "runtime", "run", "--pcap", str(capture), "--scripts",
                           str(scripts), "--data-dir", str(data), "--no-progress", *batch],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.replace(str(data), "DATA").splitlines()
    seen = [ln for ln in lines if ln.startswith("Seen] ")]
    spooled = [re.sub(r"; snapshot time: \d+ms$", "", ln) for ln in lines if "New PCAP" in ln]
    uploaded = sorted(ln for ln in lines if "Uploaded" in ln)  # told by the uploader thread
    repos = data / "repositories"
    pcaps = {str(p.relative_to(repos)): gzip.decompress(p.read_bytes())
             for p in sorted(repos.rglob("*.pcap.gz"))}
    manifests = {}
    for p in sorted(repos.rglob("*.json")):
        manifest = json.loads(p.read_text())
        for key in VOLATILE:
            manifest.pop(key)
        manifests[str(p.relative_to(repos))] = manifest
    return seen + spooled + uploaded, pcaps, manifests


def test_console_items_and_repositories_do_not_depend_on_the_batch_size(capture: Path,
                                                                         tmp_path: Path) -> None:
    one = _replay(capture, tmp_path / "one", "--batch", "1")
    seven = _replay(capture, tmp_path / "seven", "--batch", "7")
    default = _replay(capture, tmp_path / "default")
    console, pcaps, manifests = one
    assert sum(ln.startswith("Seen] ") for ln in console) > 1000
    reasons = {m["reason"] for m in manifests.values()}
    assert {"maxMinutes", "maxL4Streams"} <= reasons, reasons
    assert len(pcaps) > 20
    for other in (seven, default):
        assert other[0] == console
        assert other[1].keys() == pcaps.keys()
        assert [k for k in pcaps if other[1][k] != pcaps[k]] == []
        assert other[2] == manifests
