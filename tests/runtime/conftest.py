"""Runtime test helpers: services with a console that records lines, hosts that always close."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from capture import StreamStore
from runtime.helpers.console import Console
from runtime.helpers.files import DataDir
from runtime.helpers.services import Clock, Limits, Services
from runtime.v8.batch import Batch
from runtime.v8.host import ScriptHost
from runtime.v8.source import ScriptSource
from tests.seaweed import seaweed  # noqa: F401  (the session S3 server fixture)


class Recorder:
    """Services plus what the scripts printed."""

    def __init__(
        self,
        root: Path,
        env: dict[str, Any] | None = None,
        limits: Limits | None = None,
        clock: str = "capture",
    ) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.console = Console(self.out, self.err)
        self.services = Services(
            console=self.console,
            data=DataDir(root / "data"),
            clock=Clock(clock),
            env=dict(env or {}),
            node={"name": "node-1", "ip": "10.0.0.1"},
            limits=limits or Limits(),
        )
        self.services.clock.advance(1_700_000_000_000_000_000)
        self.services.store = StreamStore()
        self._sid = 0

    @property
    def stdout(self) -> list[str]:
        return self.out.getvalue().splitlines()

    @property
    def stderr(self) -> list[str]:
        return self.err.getvalue().splitlines()

    def lines_of(self, title: str) -> list[str]:
        prefix = f"{title}] "
        return [ln[len(prefix) :] for ln in self.stdout if ln.startswith(prefix)]

    @contextmanager
    def host(self, text: str, name: str = "script.js") -> Iterator[ScriptHost]:
        self._sid += 1
        h = ScriptHost(ScriptSource.parse(Path(name), text), self.services, self._sid)
        try:
            h.load()
            yield h
        finally:
            h.close("end")

    def feed(self, host: ScriptHost, items: list[dict[str, Any]]) -> None:
        batch = Batch()
        for item in items:
            batch.add_item(item)
        if host.send_batch(batch):
            host.finish_batch()


@pytest.fixture
def rec(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path)


DEMO_PCAP = Path(__file__).resolve().parents[2] / "runtime" / "demo" / "demo.pcap"
KUBESHARK = Path(__file__).resolve().parent / "kubeshark"


class Run:
    """The outcome of a pipeline run over captures: console lines, the data folder, counters."""

    def __init__(self, out: io.StringIO, err: io.StringIO, data: Path, pipeline: Any) -> None:
        self.stdout = out.getvalue().splitlines()
        self.stderr = err.getvalue().splitlines()
        self.data = data
        self.pipeline = pipeline

    def lines(self, title: str) -> list[str]:
        prefix = f"{title}] "
        return [ln[len(prefix) :] for ln in self.stdout if ln.startswith(prefix)]

    def errors(self, title: str) -> list[str]:
        prefix = f"{title}:ERROR] "
        return [ln[len(prefix) :] for ln in self.stderr if ln.startswith(prefix)]


def run_pipeline(
    tmp: Path,
    scripts: dict[str, str],
    pcaps: list[Path] | None = None,
    env: dict[str, Any] | None = None,
    clock: str | None = None,
    limits: Limits | None = None,
    batch_items: int = 1000,
) -> Run:
    """Run `scripts` (file name → text, written to a folder) over `pcaps` (default: the demo capture)."""
    from runtime.engine.pipeline import Pipeline, PipelineConfig

    folder = tmp / "scripts"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (folder / name).write_text(text)
    out, err = io.StringIO(), io.StringIO()
    config = PipelineConfig(
        sources=[str(p) for p in (pcaps or [DEMO_PCAP])],
        scripts=[str(folder)],
        data_dir=tmp / "data",
        env=dict(env or {}),
        clock=clock,
        node="node-1",
        limits=limits or Limits(),
        batch_items=batch_items,
        watch=False,
    )
    pipeline = Pipeline(config, console=Console(out, err))
    try:
        pipeline.run()
    finally:
        pipeline.close()
    return Run(out, err, tmp / "data", pipeline)
