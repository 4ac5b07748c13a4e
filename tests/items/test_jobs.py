"""`kflpcap items --jobs N`: worker processes share the streams; the output is the single process's."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from capture import CaptureConfig, NameTable
from runtime.cli.items_jsonl import write_items
from tests.conftest import sample_pcaps

DEMO = Path(__file__).resolve().parents[2] / "runtime" / "demo" / "demo.pcap"


def items_bytes(paths: list[Path], jobs: int) -> tuple[int, bytes]:
    out = io.BytesIO()
    code = write_items([str(p) for p in paths], out, None, config=CaptureConfig(), node="n1",
                       names=NameTable(), jobs=jobs)
    return code, out.getvalue()


@pytest.mark.parametrize("pcap", [*sample_pcaps(), DEMO], ids=lambda p: p.name)
def test_workers_print_what_one_process_prints(pcap: Path) -> None:
    code, one = items_bytes([pcap], 1)
    assert code == 0
    assert items_bytes([pcap], 2) == (0, one)
    assert items_bytes([pcap], 3) == (0, one)


def test_several_files_in_order_and_a_bad_one(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    code, one = items_bytes([DEMO, bad, DEMO], 1)
    assert code == 2 and one
    assert items_bytes([DEMO, bad, DEMO], 2) == (2, one)
    proc = subprocess.run([sys.executable, "-m", "runtime", "items", "--jobs", "2", "--pcap", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count(str(bad)) == 1, proc.stderr  # said once, not once per worker


def test_names_learned_in_another_workers_dns_streams() -> None:
    """Items named from DNS answers that a stream of the other share carried: each worker still
    parses every DNS answer, so the names match the single process's."""
    items = [orjson.loads(line) for line in items_bytes([DEMO], 1)[1].splitlines()]
    answered: dict[str, set[int]] = {}  # ip -> parities of the DNS streams that answered it
    crossed = 0
    for item in items:
        parity = int(item["stream"][:12]) % 2
        if item["protocol"]["name"] == "dns" and isinstance(item.get("response"), dict):
            for rr in item["response"]["answers"]:
                if rr["ip"]:
                    answered.setdefault(rr["ip"], set()).add(parity)
        elif item["protocol"]["name"] == "http" and item["dst"]["name"]:
            crossed += answered.get(item["dst"]["ip"]) == {1 - parity}
    assert crossed, "the demo must hold HTTP items named only by DNS streams of the other share"
    assert items_bytes([DEMO], 2)[1] == items_bytes([DEMO], 1)[1]
