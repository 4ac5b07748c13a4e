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


TIMEOUT_S = 60.0  # generous: the test waits for events, it does not time them (bench/bench_live.py does)


def _wait(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_live_capture_flushes_items_while_running_and_runs_jobs_on_wall_time(tmp_path: Path) -> None:
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
            _wait(lambda: "Live] loaded live.js" in lines(), "the script loads")
            assert pipeline.services.clock.mode == "wall"
            _wait(lambda: lines().count("Live] beat") >= 2, "a job every wall-clock second runs twice")

            url = f"http://{net.server_ip}/health"
            get = f"import urllib.request\nurllib.request.urlopen({url!r}, timeout=30).read()"
            subprocess.run(net.ns_argv(net.client_ns, [sys.executable, "-c", get]), check=True, timeout=60)
            # one item, far from a full batch: it reaches the script while the capture runs
            _wait(lambda: "Live] item /health 200" in lines(), "the item of the request")

            (folder / "live.js").write_text(SCRIPT.replace('"beat"', '"beat2"'))
            _wait(lambda: "Live] loaded live.js (reloaded)" in lines(), "the edited script reloads")
            _wait(lambda: "Live] beat2" in lines(), "the reloaded script's job runs")
            assert thread.is_alive()  # all of it happened during the live capture, not at its end
        finally:
            pipeline.stop()
            thread.join(60)
        assert not thread.is_alive()
    assert err.getvalue() == ""
