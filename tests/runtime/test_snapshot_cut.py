"""`pcap.snapshot()` / `pcap.path()` from a hook see the stream store as it was when the hook's item
was made, so a replay gives the same files and console output whatever `--batch` is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.runtime.conftest import DEMO_PCAP

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """// Snap500
var n = 0;
function onItemCaptured(data) {
  if (data.protocol.name !== "http" || data.response.status !== 500) return;
  n++;
  file.copy(pcap.snapshot(), "snaps/all_" + n + ".pcap");
  file.copy(pcap.snapshot([data.stream]), "snaps/one_" + n + ".pcap");
  file.copy(pcap.path(data.stream), "snaps/path_" + n + ".pcap");
  console.log(n + " " + data.stream + " " + data.request.path + " " + data.response.status);
}
"""


def _replay(tmp: Path, *batch: str) -> tuple[str, dict[str, bytes]]:
    tmp.mkdir()
    script = tmp / "snap500.js"
    script.write_text(SCRIPT)
    data = tmp / "data"
    done = subprocess.run([sys.executable, "-m", "runtime", "run", "--pcap", str(DEMO_PCAP), "--scripts",
                           str(script), "--data-dir", str(data), "--no-progress", *batch],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    snaps = data / "snaps"
    return done.stdout, {p.name: p.read_bytes() for p in sorted(snaps.iterdir())}


def test_snapshots_do_not_depend_on_the_batch_size(tmp_path: Path) -> None:
    out_one, files_one = _replay(tmp_path / "one", "--batch", "1")
    out_default, files_default = _replay(tmp_path / "default")
    logged = [ln for ln in out_one.splitlines() if ln.startswith("Snap500] ") and ln.endswith(" 500")]
    assert len(logged) > 3
    assert out_one == out_default
    assert len(files_one) == 3 * len(logged)
    assert files_one.keys() == files_default.keys()
    different = [name for name in files_one if files_one[name] != files_default[name]]
    assert different == []
    # the first snapshot was cut at its item: later 500s' snapshots hold more packets
    assert len(files_one["all_1.pcap"]) < len(files_one[f"all_{len(logged)}.pcap"])
