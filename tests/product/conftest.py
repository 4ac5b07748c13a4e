"""Fixtures of the product tests: the live demo network (root only), a folder with the seed script."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def only_seed(tmp_path: Path) -> Path:
    """A scripts folder with only the bundled seed script (kfl_pcap_s3.js)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "scripts" / "kfl_pcap_s3.js", scripts)
    return scripts
