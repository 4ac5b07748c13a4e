"""Fuzzing the readers (issue 14, acceptance 2): seeded mutations of pcap and pcapng structure (block
lengths, options, timestamps, link types, snaplen/caplen, gzip framing) through `kflpcap streams
--json`, in process and as the command line, and a few through `kflpcap run` with the bundled
scripts. Every input ends with exit status 0 (read, perhaps up to a damage) or 2 (not a capture),
no traceback, JSON lines on stdout, and within a bound per input (a hang fails). The seeds are
fixed, so a failure names the seed that reproduces it (`capfuzz.mutated(seed, ...)`)."""

from __future__ import annotations

import contextlib
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from runtime.cli.main import main
from runtime.demo import DEMO_PCAP
from tests.capture.capbuild import pcap_records
from tests.capture.capfuzz import mutated

REPO = Path(__file__).resolve().parents[2]
LINKTYPE, RECORDS = pcap_records(DEMO_PCAP)
PER_INPUT_S = 20  # a bound against hangs, far above the milliseconds an input takes
MEMORY_BYTES = 1 << 30  # address space of a `streams` child


class Hung(Exception):
    pass


@contextlib.contextmanager
def _bounded(seconds: int) -> Iterator[None]:
    def hung(_signum: int, _frame: object) -> None:
        raise Hung(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_output(what: str, code: int, out: bytes, err: str) -> None:
    assert code in (0, 2), f"{what}: exit status {code}\n{err}"
    assert "Traceback" not in err, f"{what}:\n{err}"
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert rows and "summary" in rows[-1], f"{what}: no summary line"
    assert (code == 2) == (rows[-1]["summary"]["inputs_not_captures"] > 0), what


def test_streams_in_process_on_1000_mutated_captures(tmp_path: Path,
                                                    capfdbinary: pytest.CaptureFixture) -> None:
    path = tmp_path / "input"
    for seed in range(1000):
        what, data = mutated(seed, RECORDS, LINKTYPE)
        path.write_bytes(data)
        try:
            with _bounded(PER_INPUT_S):
                code = main(["streams", "--json", "--pcap", str(path)])
        except Exception as exc:  # the finding: which seed, what it did, what raised
            pytest.fail(f"{what}: {type(exc).__name__}: {exc}")
        out, err = capfdbinary.readouterr()
        _check_output(what, code, out, err.decode(errors="replace"))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def test_streams_command_on_mutated_captures(tmp_path: Path) -> None:
    for seed in range(1000, 1024):
        what, data = mutated(seed, RECORDS, LINKTYPE)
        path = tmp_path / f"input_{seed}"
        path.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "runtime", "streams", "--json", "--pcap", str(path)],
                              capture_output=True, timeout=PER_INPUT_S, preexec_fn=_limit_memory, cwd=REPO)
        _check_output(what, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


def test_streams_command_on_stdin(tmp_path: Path) -> None:
    for seed in range(1100, 1106):
        what, data = mutated(seed, RECORDS, LINKTYPE)
        proc = subprocess.run([sys.executable, "-m", "runtime", "streams", "--json", "--pcap", "-"],
                              input=data, capture_output=True, timeout=PER_INPUT_S, preexec_fn=_limit_memory,
                              cwd=REPO)
        _check_output(what, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


@pytest.mark.parametrize("seed", [2000, 2001, 2002])
def test_run_with_the_bundled_scripts_on_a_mutated_capture(tmp_path: Path, seed: int) -> None:
    what, data = mutated(seed, RECORDS[:400], LINKTYPE)
    path = tmp_path / "input"
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "runtime", "run", "--pcap", str(path), "--scripts",
                           str(REPO / "scripts"), "--data-dir", str(tmp_path / "d"), "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode in (0, 2), f"{what}: exit status {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, f"{what}:\n{proc.stderr}"
    assert "packets" in proc.stderr, f"{what}: no summary\n{proc.stderr}"
