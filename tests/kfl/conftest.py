"""Items shaped as SPEC §4 (HTTP 500 with a JSON body, HTTP 404 with XML, DNS, generic TCP)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

ITEMS_FILE = Path(__file__).parent / "items.jsonl"
ITEMS = [json.loads(line) for line in ITEMS_FILE.read_text().splitlines()]


@pytest.fixture
def http_item() -> dict:
    return copy.deepcopy(ITEMS[0])


@pytest.fixture
def xml_item() -> dict:
    return copy.deepcopy(ITEMS[1])


@pytest.fixture
def dns_item() -> dict:
    return copy.deepcopy(ITEMS[2])


@pytest.fixture
def tcp_item() -> dict:
    return copy.deepcopy(ITEMS[3])


@pytest.fixture
def items() -> list[dict]:
    return copy.deepcopy(ITEMS)

