"""`kflpcap items` as a user runs it: JSON lines, --filter, --names, --node, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import PCAPS
from tests.items.schema import check_item

VLAN = PCAPS / "sv_http_vlan_keepalive-11req.pcap"
MIXED = PCAPS / "zeek_mixed_http404-dns-ssh-ftp.pcap"


def items_cli(*args: str) -> tuple[list[dict], subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-m", "runtime", "items", *args], capture_output=True, timeout=120)
    return [orjson.loads(line) for line in proc.stdout.splitlines()], proc


def test_items_as_json_lines() -> None:
    items, proc = items_cli("--pcap", str(MIXED), "--node", "node-7")
    assert proc.returncode == 0, proc.stderr
    assert {it["protocol"]["name"] for it in items} == {"http", "dns", "tcp", "udp"}
    for item in items:
        check_item(item)
        assert item["id"].startswith("node-7/")


def test_filter_with_kfl() -> None:
    items, proc = items_cli("--pcap", str(MIXED), "--filter", "http and response.status == 404")
    assert proc.returncode == 0, proc.stderr
    assert items and all(it["response"]["status"] == 404 for it in items)
    dns, _ = items_cli("--pcap", str(MIXED), "--filter", "dns")
    assert dns and {it["protocol"]["name"] for it in dns} == {"dns"}


def test_names_file(tmp_path: Path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text("192.168.28.253: {name: files, namespace: infra}\n")
    items, proc = items_cli("--pcap", str(VLAN), "--names", str(names), "--filter", "dst.name == \"files\"")
    assert proc.returncode == 0, proc.stderr
    assert len(items) == 11 and all(it["dst"]["namespace"] == "infra" for it in items)


def test_bad_filter_names_and_input_exit_2(tmp_path: Path) -> None:
    _, proc = items_cli("--pcap", str(VLAN), "--filter", "http and (")
    assert proc.returncode == 2 and b"expected" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: [")
    _, proc = items_cli("--pcap", str(VLAN), "--names", str(bad))
    assert proc.returncode == 2 and b"--names" in proc.stderr
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    items, proc = items_cli("--pcap", str(text))
    assert proc.returncode == 2 and items == [] and b"not a pcap" in proc.stderr


def test_filter_limit_prints_the_first_matches_only() -> None:
    every, _ = items_cli("--pcap", str(MIXED), "--filter", "dns")
    first, proc = items_cli("--pcap", str(MIXED), "--filter", "dns and limit(2)")
    assert proc.returncode == 0, proc.stderr
    assert len(every) > 2 and first == every[:2]


def test_cut_short_capture_is_a_warning_as_in_run(tmp_path: Path) -> None:
    """A capture read up to its cut is a warning (exit 0) for `items` and `kfl match`, as for `run`."""
    data = MIXED.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 5])
    items, proc = items_cli("--pcap", str(cut), "--jobs", "2")
    assert proc.returncode == 0 and items
    lines = [line for line in proc.stderr.decode().splitlines() if str(cut) in line]
    assert len(lines) == 1 and lines[0].startswith(f"kflpcap: warning: {cut}: offset ")
    assert "cut short" in lines[0]
    match = subprocess.run([sys.executable, "-m", "runtime", "kfl", "match", "dns", "--pcap", str(cut)],
                           capture_output=True, text=True, timeout=120)
    assert match.returncode == 0
    assert [line for line in match.stderr.splitlines() if str(cut) in line] == [lines[0]]
