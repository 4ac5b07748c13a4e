"""Live captures for dissector tests: two namespaces joined by a veth pair, dumpcap on the client's end.

    with captured(tmp_path / "x.pcap") as link:   # link.a: clients, link.b: servers
        link.b.popen([...server...]); link.b.wait_tcp(link.b_ip, port)
        link.a.run([...client...])
    # the capture is complete here (dumpcap stopped after the last packets were written)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.demo.livenet import dumpcap
from tests.netns import Link, linked_pair, netns_available


def need_live() -> None:
    """Skip unless namespaces and dumpcap are available."""
    if not netns_available() or not shutil.which("dumpcap"):
        pytest.skip("needs root, ip netns and dumpcap")


@contextmanager
def captured(pcap: Path) -> Iterator[Link]:
    """A linked namespace pair whose traffic dumpcap writes to `pcap` (classic pcap) while the block
    runs. (Segments are captured as the sender's stack hands them over: with GSO one send is one
    captured segment whatever the MTU, so tests that want a message in pieces send it in pieces.)"""
    need_live()
    with linked_pair("tlsr", subnet="10.232.7") as link, dumpcap(link.a_if, pcap, prefix=link.a.cmd([])):
        yield link
        link.b.stop_processes()


def tshark_rows(pcap: Path, display_filter: str, fields: list[str], joiner: str = ",", check: bool = True
                ) -> list[list[str]]:
    """One list of field values per matching packet (several occurrences joined by `joiner`); with
    `check` false, what tshark printed of a file it could not read to the end."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=a", "-E", f"aggregator={joiner}"]
    for field in fields:
        argv += ["-e", field]
    done = subprocess.run(argv, check=check, capture_output=True, text=True, timeout=120)
    return [line.split("\t") for line in done.stdout.splitlines() if line]
