"""Live input on a real interface (network namespaces): fast flush, wall-clock jobs, hot reload, stop."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.engine.pipeline import Pipeline, PipelineConfig
from runtime.helpers.console import Console

pytestmark = pytest.mark.live

SCRIPT = """// Live
function onItemCaptured(d) {
  if (d.protocol.name === "http") console.log("item", d.request.path, d.response ? d.response.status : "-");
}
jobs.schedule("beat", "* * * * * *", function () { console.log("beat"); });
"""


def _wait(cond: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.005)
    raise AssertionError(f"not within {timeout} s")


def test_live_capture_flushes_items_fast_and_runs_jobs_on_wall_time(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and AF_PACKET")
    from runtime.demo.livenet import LiveNet

    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "live.js").write_text(SCRIPT)
    out, err = io.StringIO(), io.StringIO()
    with LiveNet() as net:
        net.start_servers()
        config = PipelineConfig(
            sources=[f"iface:{net.capture_iface}"],
            scripts=[str(folder)],
            data_dir=tmp_path / "data",
            node="live-node",
            watch=True,
        )
        pipeline = Pipeline(config, console=Console(out, err))
        thread = threading.Thread(target=pipeline.run, daemon=True)
        thread.start()
        try:
            lines = lambda: out.getvalue().splitlines()  # noqa: E731
            _wait(lambda: "Live] loaded live.js" in lines(), 20)
            assert pipeline.services.clock.mode == "wall"
            _wait(lambda: lines().count("Live] beat") >= 2, 3.5)  # a job every wall-clock second

            url = f"http://{net.server_ip}/health"
            get = f"import urllib.request\nurllib.request.urlopen({url!r}, timeout=5).read()"
            subprocess.run(net.ns_argv(net.client_ns, [sys.executable, "-c", get]), check=True, timeout=30)
            answered = time.monotonic()
            _wait(lambda: "Live] item /health 200" in lines(), 2.0)
            latency = time.monotonic() - answered
            print(f"live item latency {latency * 1000:.0f} ms")
            assert latency < 0.5, latency  # one item, no full batch: flushed by the live timer

            (folder / "live.js").write_text(SCRIPT.replace('"beat"', '"beat2"'))
            _wait(lambda: "Live] loaded live.js (reloaded)" in lines(), 1.5)
            _wait(lambda: "Live] beat2" in lines(), 2.5)
        finally:
            pipeline.stop()
            thread.join(20)
        assert not thread.is_alive()
    assert err.getvalue() == ""
