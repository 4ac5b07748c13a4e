"""Items shaped as docs/items.md (HTTP 500 with a JSON body, HTTP 404 with XML, DNS, generic TCP)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

ITEMS_FILE = Path(__file__).parent / "items.jsonl"
ITEMS = [json.loads(line) for line in ITEMS_FILE.read_text().splitlines()]


def _item_fixture(index: int, doc: str):
    def fixture() -> dict:
        return copy.deepcopy(ITEMS[index])

    fixture.__doc__ = doc
    return pytest.fixture(fixture)


http_item = _item_fixture(0, "HTTP GET → 500 with a base64 JSON body, an Authorization header, cookies.")
xml_item = _item_fixture(1, "HTTP PUT with an XML request body → 404 with the same XML, base64.")
dns_item = _item_fixture(2, "DNS A query with two answers.")
tcp_item = _item_fixture(3, "A generic tcp item (data.payload) to port 443.")


@pytest.fixture
def items() -> list[dict]:
    """All four, in file order."""
    return copy.deepcopy(ITEMS)
