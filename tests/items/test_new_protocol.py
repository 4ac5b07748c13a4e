"""A new protocol is one module plus one registry line: a throw-away line-echo dissector added to a
copy of the repository reaches `kflpcap items` and KFL queries with no other file touched."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.items.util import Talk
from wrappers.pcapfile import write_pcap

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "capture/dissect/registry.py"
MODULE = "capture/dissect/echo.py"
LAST_LINE = '    "capture.dissect.dns.Dns",\n'
NEW_LINE = '    "capture.dissect.echo.Echo",\n'

ECHO_MODULE = '''"""Echo: every line the client sends, the server sends back (a toy protocol)."""

from __future__ import annotations

from typing import Any, ClassVar

from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol

ECHO = protocol("echo", "1", "ECHO", "Echo Protocol", "echo", "tcp", ["7"], 9)


class Echo(Dissector):
    name: ClassVar[str] = "echo"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    ports: ClassVar[frozenset[int]] = frozenset({7})

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        if meta.server_port not in config.ports_of(cls):
            return REJECT
        if b"\\n" not in first[0]:
            return REJECT if final else MORE
        return CLAIM if first[0].isascii() and first[0][:1].isalpha() else REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.bufs = (bytearray(), bytearray())
        self.waiting: list[tuple[str, int]] = []

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        buf = self.bufs[direction]
        buf += data
        *lines, rest = buf.split(b"\\n")
        buf[:] = rest
        for line in lines:
            text = line.decode("utf-8", "replace")
            if direction == 0:
                self.waiting.append((text, ts_ns))
            elif self.waiting:
                sent, ts = self.waiting.pop(0)
                self._emit(sent, ts, {"line": text}, ts_ns - ts, None)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        self.bufs[direction].clear()

    def on_close(self, ts_ns: int, reason: str) -> None:
        for sent, ts in self.waiting:
            self._emit(sent, ts, None, 0, error("timeout", f"no echo before the stream ended ({reason})"))

    def _emit(self, sent: str, ts: int, response: dict | None, elapsed: int, err: dict | None) -> None:
        body: dict[str, Any] = {"request": {"line": sent}}
        if response is not None:
            body["response"] = response
        size = len(response["line"]) + 1 if response else 0
        self.items.emit(ECHO, ts, False, body, len(sent) + 1, size, elapsed, err)
'''


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout of the repository")
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def _files(top: Path) -> set[str]:
    return {p.relative_to(top).as_posix() for p in top.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def _capture(path: Path) -> None:
    echo = Talk(server=("10.0.0.2", 7)).send(0, b"hi\nthere\n").send(1, b"hi\n").send(1, b"there\n")
    echo.send(0, b"bye\n")  # never echoed
    binary = Talk(client=("10.0.0.1", 40001), server=("10.0.0.2", 7)).send(0, b"\x00\x01\x02\n")
    web = Talk(client=("10.0.0.1", 40002), server=("10.0.0.2", 80)).send(0, b"GET / HTTP/1.1\r\n\r\n")
    web.send(1, b"HTTP/1.1 204 No Content\r\n\r\n")
    frames = sorted(echo.close() + binary.close() + web.close(), key=lambda f: f[0])
    with path.open("wb") as f:
        write_pcap(f, [(ts, 1, raw, len(raw)) for ts, raw in frames], 65535)


def _kflpcap(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, "-m", "runtime", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_new_protocol_module_and_registry_line_reach_the_cli_and_kfl(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in _tracked():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    (repo / MODULE).write_text(ECHO_MODULE)
    registry = (repo / REGISTRY).read_text()
    assert registry.count(LAST_LINE) == 1
    (repo / REGISTRY).write_text(registry.replace(LAST_LINE, LAST_LINE + NEW_LINE))

    original = set(_tracked())
    copied = _files(repo)
    changed = sorted(rel for rel in original & copied
                     if (ROOT / rel).read_bytes() != (repo / rel).read_bytes())
    assert (sorted(copied - original), sorted(original - copied), changed) == ([MODULE], [], [REGISTRY])
    diff = [ln for ln in difflib.unified_diff((ROOT / REGISTRY).read_text().splitlines(),
                                              (repo / REGISTRY).read_text().splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert diff == ["+" + NEW_LINE.rstrip("\n")]

    pcap = tmp_path / "echo.pcap"
    _capture(pcap)
    for jobs in ("1", "2"):
        done = _kflpcap(repo, "items", "--pcap", str(pcap), "--node", "n1", "--jobs", jobs)
        assert done.returncode == 0, done.stderr
        items = [json.loads(line) for line in done.stdout.splitlines()]
        echo = [it for it in items if it["protocol"]["name"] == "echo"]
        assert [(it["request"]["line"], it.get("response", {}).get("line")) for it in echo] == [
            ("hi", "hi"), ("there", "there"), ("bye", None)]
        assert echo[2]["error"]["type"] == "timeout" and echo[0]["protocol"]["abbr"] == "ECHO"
        assert sorted(it["protocol"]["name"] for it in items) == ["echo", "echo", "echo", "http", "tcp"]
        tcp = next(it for it in items if it["protocol"]["name"] == "tcp")
        assert tcp["dst"]["port"] == "7"  # binary bytes on the echo port: not claimed

    query = 'protocol.name == "echo" and request.line == "there"'
    done = _kflpcap(repo, "kfl", "match", "--pcap", str(pcap), query)
    assert done.returncode == 0, done.stderr
    [match] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (match["protocol"]["abbr"], match["response"]["line"]) == ("ECHO", "there")
    done = _kflpcap(repo, "items", "--pcap", str(pcap), "--filter", 'protocol.abbr == "ECHO" and !response')
    assert [json.loads(line)["request"]["line"] for line in done.stdout.splitlines()] == ["bye"]

    # the original repository does not know the protocol
    done = subprocess.run([sys.executable, "-m", "runtime", "kfl", "match", "--count", "--pcap", str(pcap),
                           'protocol.name == "echo"'], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0"
