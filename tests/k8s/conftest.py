"""Fixtures: a local API server and a resolver connected to it (both stopped after the test)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from capture.k8s import Resolver, load_config
from tests.k8s.apiserver import ApiServer


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `cond` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def connect(api: ApiServer, tmp_path: Path) -> Iterator[Callable[..., tuple[Resolver, list[str]]]]:
    """connect(token=None) -> (a started resolver on `api`, the console lines it printed)."""
    started: list[Resolver] = []

    def make(token: str | None = None) -> tuple[Resolver, list[str]]:
        lines: list[str] = []
        config = load_config(str(api.kubeconfig(tmp_path / "kubeconfig", token=token)))
        resolver = Resolver(config, log=lines.append)
        started.append(resolver.start())
        return resolver, lines

    yield make
    for resolver in started:
        resolver.stop()
