"""`kflpcap kfl check` and `kflpcap kfl match`, run as a command (`python -m runtime`) from this checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kfl
from tests.conftest import oracle

ITEMS = Path(__file__).parent / "items.jsonl"
REPO = Path(__file__).resolve().parents[2]


def kflpcap(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The checkout under test, whatever `kflpcap` is installed or on PATH."""
    return subprocess.run([sys.executable, "-m", "runtime", "kfl", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_check_ok_error_and_warnings():
    done = kflpcap("check", "http and response.status == 500")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
    done = kflpcap("check", "http and response.status ==")
    assert done.returncode == 1
    assert done.stdout == ("1:28: expected a value after '==', found end of query\n"
                           "  http and response.status ==\n"
                           "                             ^\n")
    done = kflpcap("check", "ok_field", "a <", "foo() or x.bar(1)")
    assert done.returncode == 1
    assert done.stdout.splitlines()[:3] == ["query 1: ok_field", "ok", "query 2: a <"]
    assert done.stdout.splitlines()[-2:] == ["query 3: foo() or x.bar(1)", "ok"]
    assert done.stderr.splitlines() == ["warning: unknown helper 'foo()' is always false",
                                        "warning: unknown helper 'bar()' is always false"]


def test_check_with_macros():
    assert kflpcap("check", "--macro", 'shop=dst.namespace == "shop"', "shop and http").returncode == 0
    bad = kflpcap("check", "--macro", "shop=dst.namespace ==", "shop")
    assert bad.returncode == 1 and "in macro 'shop'" in bad.stderr
    assert kflpcap("check", "--macro", "noequals", "x").returncode == 2


def test_match_prints_matching_items_after_redact():
    done = kflpcap("match", 'http and redact("request.headers.Authorization")', str(ITEMS))
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [json.loads(line) for line in ITEMS.read_text().splitlines()[:2]]
    expected[0]["request"]["headers"]["Authorization"] = "[REDACTED]"
    assert out == expected


def test_match_from_stdin_count_limit_and_no_match():
    text = ITEMS.read_text()
    done = kflpcap("match", "--count", "http or dns", stdin=text)
    assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr
    done = kflpcap("match", "--count", "limit(2) and (http or dns)", "-", stdin=text)
    assert (done.returncode, done.stdout) == (0, "2\n"), done.stderr
    done = kflpcap("match", "kafka", str(ITEMS))
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    done = kflpcap("match", "--macro", "web=http", "web and response.status >= 500", str(ITEMS))
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["node-a/000000000415.pcap-1"]


def test_match_reports_bad_input():
    done = kflpcap("match", "a == 1", stdin='{"a": 1}\nnot json\n[1]\n\n{"a": 2}\n')
    assert done.returncode == 2
    assert done.stdout == '{"a":1}\n'
    assert [line.split(": ")[0] for line in done.stderr.splitlines()] == ["<stdin>:2", "<stdin>:3"]
    done = kflpcap("match", "a ==", str(ITEMS))
    assert done.returncode == 2 and done.stdout == "" and "expected a value" in done.stderr
    done = kflpcap("match", "a", "/nonexistent/items.jsonl")
    assert done.returncode == 2 and "No such file" in done.stderr


PCAPS = Path(__file__).parent.parent / "pcaps"
HTTP_STATUS_PCAPS = ["ndpi_mixed_http500-502-keepalive_1kxun_2.5MB.pcap", "zeek_http4xx_methods.pcap",
                     "sv_http500_bidir-flowbits.pcap", "ndpi_http4xx_webdav_keepalive.pcap",
                     "zeek_http501_nested-mime.pcap"]


@pytest.mark.parametrize("name", HTTP_STATUS_PCAPS)
def test_match_pcap_agrees_with_tshark(name):
    """HTTP items dissected from a capture, selected by status: as many as tshark's response codes."""
    done = kflpcap("match", "--pcap", str(PCAPS / name), "http and response.status > 0")
    assert done.returncode == 0, done.stderr
    items = [json.loads(line) for line in done.stdout.splitlines()]
    codes = [c for stream in oracle(PCAPS / name)["http_status_by_stream"] for c in stream["codes"]]
    for query, expected in [("response.status == 500", codes.count(500)),
                            ("response.status >= 400", sum(c >= 400 for c in codes)),
                            ('response.status == r"^5"', sum(500 <= c < 600 for c in codes))]:
        assert sum(kfl.match(query, item) for item in items) == expected, query


def test_match_pcap_prints_items_and_stops_at_the_limit():
    pcap = str(PCAPS / "zeek_http4xx_methods.pcap")
    query = 'limit(3) and http and response.status == 400 and redact("request.method")'
    done = kflpcap("match", "--pcap", pcap, query)
    items = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(items) == 3 and done.returncode == 0
    assert all(i["response"]["status"] == 400 and i["request"]["method"] == "[REDACTED]" for i in items)
    both = kflpcap("match", "--pcap", pcap, "http", str(ITEMS))
    assert both.returncode == 2 and "not both" in both.stderr
    missing = kflpcap("match", "--pcap", "/nonexistent.pcap", "http")
    assert missing.returncode == 2 and missing.stderr
