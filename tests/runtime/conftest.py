"""Runtime test helpers: services with a console that records lines, hosts that always close."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runtime.batch import Batch
from runtime.console import Console
from runtime.files import DataDir
from runtime.host import ScriptHost
from runtime.services import Clock, Limits, Services
from runtime.source import ScriptSource


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
        self._sid = 0

    @property
    def stdout(self) -> list[str]:
        return self.out.getvalue().splitlines()

    @property
    def stderr(self) -> list[str]:
        return self.err.getvalue().splitlines()

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
