"""A replay gives the same console output, items and repositories whatever `--batch` and `--workers`
are: the wrappers' ticks (maxMinutes, the maxBytes recheck) and the scripts' timers travel in the
ordered stream of items,
what a wrapper reads of the stream store and the name table is cut at the item or tick it works for,
and the items of the dissection workers are merged in the order one process makes them."""

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
from tests.runtime.conftest import DEMO_PCAP

ROOT = Path(__file__).resolve().parents[2]

ROTATE = """// Rotate
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["http and response.status == 500", "dns"], maxMinutes: 4,
                            maxL4Streams: 6 });
}
"""
SEEN = """// Seen
var n = 0;
function every(ms) {  // a timer that sets the next: each falls due where the clock stood when it ran
  setTimeout(function () { console.log("interval after " + n + " items"); every(ms); }, ms);
}
every(45000);
jobs.schedule("tally", "*/20 * * * * *", function () {
  console.log("job after " + n + " items");
  if (n % 7 === 3) throw new Error("odd tally " + n);
});
function onItemCaptured(data) {
  n++;
  if (n % 150 === 1) {
    var id = data.id;
    setTimeout(function () { console.log("timer of " + id + " after " + n + " items"); }, 20000);
  }
  console.log(JSON.stringify([data.id, data.stream, data.protocol.abbr, data.timestamp, data.dst.name,
                              JSON.stringify(data.response).length]));
}
"""
PROTOCOLS = """// Protocols
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["http2", "grpc and response.grpc.status != 0", "tls", "redis", "dns"],
                            maxL4Streams: 3 });
}
"""
VOLATILE = ("run", "previous_manifest_sha256")  # a run's id, and the chain link that hashes it


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain HTTP/1.1 + DNS over 30 minutes: sparse in time, with rotations and full repositories."""
    path = tmp_path_factory.mktemp("det") / "sparse.pcap"
    write_capture(path, packets=6000, seed=3, duration=1800, plain=True)
    return path


def _replay(capture: Path, tmp: Path, *options: str,
            wrapper: str = ROTATE) -> tuple[list[str], dict[str, bytes], dict[str, dict]]:
    tmp.mkdir()
    scripts = tmp / "scripts"
    scripts.mkdir()
    (scripts / "wrapper.js").write_text(wrapper)
    (scripts / "seen.js").write_text(SEEN)
    data = tmp / "data"
    done = subprocess.run([sys.executable, "-m", "runtime", "run", "--pcap", str(capture), "--scripts",
                           str(scripts), "--data-dir", str(data), "--no-progress", *options],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.replace(str(data), "DATA").splitlines()
    seen = [ln for ln in lines if ln.startswith("Seen] ")]
    seen += [ln for ln in done.stderr.splitlines() if "(job=tally)" in ln]
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


def test_console_items_and_repositories_do_not_depend_on_batches_or_workers(capture: Path,
                                                                          tmp_path: Path) -> None:
    one = _replay(capture, tmp_path / "one", "--batch", "1")
    console, pcaps, manifests = one
    assert sum(ln.startswith("Seen] [") for ln in console) > 1000
    # setTimeout callbacks run between the same items whatever the batch (they used to run when the
    # batch that held them came back: after up to a whole batch of later items, or never at the end)
    assert sum(ln.startswith("Seen] timer of ") for ln in console) > 5
    assert sum(ln.startswith("Seen] interval after ") for ln in console) > 30
    # and so do jobs (in their script's batches, unless a script hooks onJobPassed/onJobFailed)
    assert sum(ln.startswith("Seen] job after ") for ln in console) > 60
    assert any("(job=tally) Error: odd tally" in ln for ln in console)
    reasons = {m["reason"] for m in manifests.values()}
    assert {"maxMinutes", "maxL4Streams"} <= reasons, reasons
    assert len(pcaps) > 20
    for name, options in [("seven", ["--batch", "7"]), ("default", []), ("two", ["--workers", "2"]),
                          ("three", ["--workers", "3", "--batch", "1"])]:
        other = _replay(capture, tmp_path / name, *options)
        assert other[0] == console, name
        assert other[1].keys() == pcaps.keys(), name
        assert [k for k in pcaps if other[1][k] != pcaps[k]] == [], name
        assert other[2] == manifests, name


def test_workers_give_one_process_items_on_every_protocol(tmp_path: Path) -> None:
    """The demo's HTTP/1.1, HTTP/2, gRPC, TLS, Redis and DNS: the same console and repositories from
    one process and from three that share the streams."""
    console, pcaps, manifests = _replay(DEMO_PCAP, tmp_path / "one", wrapper=PROTOCOLS)
    names = {json.loads(ln[6:])[2] for ln in console if ln.startswith("Seen] [")}
    assert names == {"HTTP", "HTTP/2", "gRPC", "TLS", "REDIS", "DNS"}
    assert len(pcaps) > 10
    other = _replay(DEMO_PCAP, tmp_path / "three", "--workers", "3", wrapper=PROTOCOLS)
    assert other[0] == console
    assert other[1] == pcaps
    assert other[2] == manifests
