"""Fixtures shared by every test package: the bundled sample captures and tshark's oracle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PCAPS = Path(__file__).parent / "pcaps"
ORACLE = PCAPS / "oracle"


def sample_pcaps() -> list[Path]:
    """Every capture in tests/pcaps (public test-suite captures, tests/pcaps/README.md), sorted by name."""
    return sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def oracle(pcap: Path) -> dict:
    """What tshark says about `pcap` (tests/pcaps/oracle/<file>.json)."""
    return json.loads((ORACLE / f"{pcap.name}.json").read_text())


@pytest.fixture(scope="session")
def pcaps_dir() -> Path:
    return PCAPS
