"""Live captures for dissector tests: two namespaces joined by a veth pair, dumpcap on the client's end.

    with captured(tmp_path / "x.pcap") as link:   # link.a: clients, link.b: servers
        link.b.popen([...server...]); link.b.wait_tcp(link.b_ip, port)
        link.a.run([...client...])
    # the capture is complete here (dumpcap stopped after the last packets were written)
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.netns import Link, linked_pair, netns_available

START_S = 0.5  # dumpcap prints "Capturing on" before its loop reads the socket
QUIET_S = 0.6  # the file has not grown for this long: the last packets are written


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
    with linked_pair("tlsr", subnet="10.232.7") as link:
        argv = link.a.cmd(["dumpcap", "-q", "-P", "-i", link.a_if, "-w", str(pcap)])
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            said = []
            for line in proc.stderr or []:
                said.append(line)
                if line.startswith("Capturing on"):
                    break
            else:
                raise RuntimeError(f"dumpcap did not start: {''.join(said).strip()}")
            time.sleep(START_S)
            yield link
            link.b.stop_processes()
            _wait_until_stable(pcap)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


def _wait_until_stable(path: Path, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= QUIET_S:
            return
        time.sleep(0.05)


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
