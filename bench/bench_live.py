"""Latencies the live tests no longer assert: hot reload (a script file edited → the new version
loaded) and, as root, live capture (an HTTP exchange answered → its item in the script).

    python3 -m bench.bench_live [--rounds 5]

Targets on the 2-core dev machine: reload < 1 s, live item < 0.5 s (one item, no full batch: the
live timer flushes it). Prints the median and the worst of `--rounds`.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runtime.engine.scripts import Scripts
from runtime.helpers.console import Console
from runtime.helpers.files import DataDir
from runtime.helpers.services import Clock, Limits, Services

RELOAD_TARGET_S = 1.0
ITEM_TARGET_S = 0.5


def _until(cond: Callable[[], bool], poll: Callable[[], None] = lambda: None, timeout: float = 30.0) -> float:
    """Seconds until `cond()` holds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        poll()
        if cond():
            return time.monotonic() - start
        time.sleep(0.002)
    raise TimeoutError(f"not within {timeout} s")


def reload_latencies(rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        services = Services(console=Console(io.StringIO(), io.StringIO()), data=DataDir(root / "data"),
                            clock=Clock("wall"), env={}, node={"name": "bench", "ip": "127.0.0.1"},
                            limits=Limits())
        folder = root / "scripts"
        folder.mkdir()
        scripts = Scripts(services, [folder], watch=True)
        scripts.start()
        try:
            path = folder / "counter.js"
            path.write_text("// Counter\nvar version = 0;\n")
            _until(lambda: scripts.by_title("Counter") is not None, scripts.poll)
            took = []
            for n in range(1, rounds + 1):
                before = scripts.by_title("Counter")
                path.write_text(f"// Counter\nvar version = {n};\n")
                took.append(_until(lambda b=before: scripts.by_title("Counter") is not b, scripts.poll))
            return took
        finally:
            scripts.close()


def live_item_latencies(rounds: int) -> list[float]:
    from runtime.demo.livenet import LiveNet
    from runtime.engine.pipeline import Pipeline, PipelineConfig

    script = ('// Live\nfunction onItemCaptured(d) {\n  if (d.protocol.name === "http" && d.response) '
              'console.log("item", d.request.path);\n}\n')
    with tempfile.TemporaryDirectory() as tmp, LiveNet() as net:
        root = Path(tmp)
        (root / "scripts").mkdir()
        (root / "scripts" / "live.js").write_text(script)
        net.start_servers()
        out = io.StringIO()
        config = PipelineConfig(sources=[f"iface:{net.capture_iface}"], scripts=[str(root / "scripts")],
                                data_dir=root / "data", node="bench", watch=False)
        pipeline = Pipeline(config, console=Console(out, io.StringIO()))
        thread = threading.Thread(target=pipeline.run, daemon=True)
        thread.start()
        try:
            _until(lambda: "Live] loaded live.js" in out.getvalue())
            took = []
            for n in range(rounds):
                url = f"http://{net.server_ip}/health"
                get = f"import urllib.request\nurllib.request.urlopen({url!r}, timeout=10).read()"
                argv = net.ns_argv(net.client_ns, [sys.executable, "-c", get])
                subprocess.run(argv, check=True, timeout=60)
                took.append(_until(lambda n=n: out.getvalue().count("Live] item /health\n") > n))
            return took
        finally:
            pipeline.stop()
            thread.join(30)


def _report(name: str, took: list[float], target: float) -> None:
    median, worst = statistics.median(took), max(took)
    verdict = "ok" if median < target else "SLOW"
    print(f"{name}: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms over {len(took)} "
          f"(target < {target * 1000:.0f} ms) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _report("hot reload", reload_latencies(args.rounds), RELOAD_TARGET_S)
    if os.geteuid() == 0:
        _report("live item", live_item_latencies(args.rounds), ITEM_TARGET_S)
    else:
        print("live item: skipped (needs root for network namespaces and AF_PACKET)")


if __name__ == "__main__":
    main()
