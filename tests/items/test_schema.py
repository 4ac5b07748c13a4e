"""Acceptance 3: every item of every bundled capture passes the schema check; the check itself
rejects what docs/items.md forbids."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.conftest import sample_pcaps
from tests.items.schema import check_item, problems
from tests.items.util import sample_items


@pytest.mark.parametrize("pcap", sample_pcaps(), ids=lambda p: p.name)
def test_every_item_of_every_sample_passes_the_schema(pcap: Path) -> None:
    items = sample_items(pcap.name)
    assert items, "every capture has at least one stream, hence one item"
    for item in items:
        check_item(item)
    streams = {}
    for item in items:
        streams.setdefault(item["stream"], []).append(item["index"])
    assert all(idx == list(range(len(idx))) for idx in streams.values()), "index counts 0, 1, 2 per stream"


def _http_item() -> dict:
    for item in sample_items("zeek_http_pipelined.pcap"):
        if "error" not in item:
            return copy.deepcopy(item)
    raise AssertionError("no HTTP item")


def _dns_item() -> dict:
    for item in sample_items("sv_dns_udp_and_tcp.pcap"):
        return copy.deepcopy(item)
    raise AssertionError("no DNS item")


@pytest.mark.parametrize("breakage, expected", [
    (lambda it: it["src"].__setitem__("port", 80), "src.port"),
    (lambda it: it.__setitem__("timestamp", it["timestamp"] + 1), "item.timestamp"),
    (lambda it: it.__setitem__("startTime", "2023-01-01T00:00:00Z"), "item.startTime"),
    (lambda it: it.__setitem__("id", "x"), "item.id"),
    (lambda it: it.pop("response"), "item.response"),
    (lambda it: it["response"].__setitem__("status", "200"), "response.status"),
    (lambda it: it["response"]["content"].__setitem__("text", "not base64!"), "content.text"),
    (lambda it: it["request"].__setitem__("headersSize", 0), "request.headersSize"),
    (lambda it: it["request"]["headers"].__setitem__("X", ["a"]), "request.headers"),
    (lambda it: it.__setitem__("error", {"type": "oops", "msg": ""}), "error.type"),
    (lambda it: it["protocol"].__setitem__("abbr", "DNS"), "protocol"),
    (lambda it: it.__setitem__("elapsedTime", -1), "item.elapsedTime"),
    (lambda it: it["response"].__setitem__("status", 0), "response.status"),
    (lambda it: it["src"].pop("processId"), "src.processId"),
    (lambda it: it["dst"].__setitem__("pod", ""), "dst.pod"),
    (lambda it: it.__setitem__("entryFile", it["stream"]), "item.entryFile"),
    (lambda it: it.__setitem__("size", it["requestSize"]), "item.size"),
    (lambda it: it.pop("capture"), "item.capture"),
    (lambda it: it.pop("data"), "item.data"),
])
def test_schema_check_rejects_broken_http_items(breakage, expected: str) -> None:
    item = _http_item()
    assert problems(item) == []
    breakage(item)
    found = problems(item)
    assert any(p.startswith(expected) for p in found), found
    with pytest.raises(AssertionError):
        check_item(item)


@pytest.mark.parametrize("breakage, expected", [
    (lambda it: it["response"].__setitem__("code", "NXDOMAIN"), "response.code"),
    (lambda it: it["response"]["answers"][0].__setitem__("ttl", "60"), "response.answers[0].ttl"),
    (lambda it: it["response"]["answers"][0].pop("cname"), "response.answers[0].cname"),
    (lambda it: it["request"]["questions"][0].__setitem__("type", 1), "request.questions[0].type"),
    (lambda it: it.__setitem__("stream", "42.pcap"), "item.stream"),
    (lambda it: it["response"].__setitem__("code", ""), "response.code"),
    (lambda it: it.pop("response"), "item.response"),
])
def test_schema_check_rejects_broken_dns_items(breakage, expected: str) -> None:
    item = _dns_item()
    assert problems(item) == []
    breakage(item)
    assert any(p.startswith(expected) for p in problems(item)), problems(item)


@pytest.mark.parametrize("pcap", ["ndpi_mixed_http500-502-keepalive_1kxun_2.5MB.pcap",
                                  "zeek_dns_udp-tcp_ipv4-ipv6.pcap"])
def test_unanswered_requests_do_not_match_answer_queries(pcap: str) -> None:
    """An unanswered request carries a response too (status 0 / code ""): the usual KFL queries
    still select exactly the answered messages they name."""
    from kfl import match

    items = [it for it in sample_items(pcap) if it["protocol"]["name"] in ("http", "dns")]
    for it in items:
        five_hundred = it["protocol"]["abbr"] == "HTTP" and it["response"].get("status") == 500
        assert match("http and response.status == 500", it) is five_hundred
        if "error" in it and it["response"].get("status", 1) == 0:
            assert not match("response.status >= 400", it) and match("response.status == 0", it)
        if it["protocol"]["name"] == "dns" and it["response"]["code"] == "":
            assert not match('dns and response.code == "No Error"', it)
            assert match("dns and !response.answers", it)
    unanswered = [it for it in items if it["response"].get("status") == 0 or it["response"].get("code") == ""]
    assert unanswered, "each of these captures has requests without an answer"
