"""Fixtures of the product tests: the live demo network (root only)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from runtime.demo.livenet import LiveNet
from tests.seaweed import seaweed  # noqa: F401  (the session S3 server fixture)


@pytest.fixture
def livenet() -> Iterator[LiveNet]:
    """A fresh LiveNet with the demo servers running; removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("dumpcap"):
        pytest.skip("needs root and dumpcap")
    with LiveNet() as net:
        net.start_servers()
        yield net
