"""`kflpcap run` on damaged input (issue 14 #4, #11): a bad block appended to a valid capture is an
input warning and every repository is still written; whatever raises inside the run, what was read
is flushed and the summary printed; stdin's bytes are counted in the summary."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from capture.flows import Capture
from runtime.cli import report
from runtime.cli.main import main
from runtime.cli.report import human_bytes
from runtime.demo import DEMO_PCAP
from tests.capture.capbuild import block, pcap_records, pcapng_bytes
from tests.product.test_run_cli import REPO, kflpcap


def _repositories(data: Path) -> dict[str, bytes]:
    """Each repository's PCAP (decompressed) by its key."""
    root = data / "repositories"
    return {str(p.relative_to(root)): gzip.decompress(p.read_bytes()) for p in root.rglob("*.pcap.gz")}


def test_bad_block_appended_keeps_every_repository_and_the_summary(tmp_path: Path, only_seed: Path) -> None:
    linktype, records = pcap_records(DEMO_PCAP)
    clean = tmp_path / "demo.pcapng"
    clean.write_bytes(pcapng_bytes(linktype, records))
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(clean.read_bytes() + block(1, b""))  # an Interface Description Block without a body
    runs = {}
    for name, path in (("clean", clean), ("bad", bad)):
        runs[name] = kflpcap("run", "--pcap", str(path), "--scripts", str(only_seed), "--data-dir", name,
                             "--node", "n1", cwd=tmp_path)
    done = runs["bad"]
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "input warning" in done.stderr and "damaged interface block" in done.stderr
    assert "Repositories written: 2" in done.stderr
    assert _repositories(tmp_path / "bad") == _repositories(tmp_path / "clean") != {}


def _run_in_process(argv: list[str]) -> int:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return main(argv)
    finally:
        for sig, handler in handlers.items():  # `run` installed its own
            signal.signal(sig, handler)


def test_an_internal_error_still_flushes_and_prints_the_summary(tmp_path: Path, only_seed: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    real = Capture.consume

    def consume_then_fail(self: Capture, packets: object) -> None:
        def first_thousand() -> object:
            for number, packet in enumerate(packets, 1):  # type: ignore[call-overload]
                if number > 1000:
                    raise RuntimeError("injected [fault]")
                yield packet

        real(self, first_thousand())

    monkeypatch.setattr(Capture, "consume", consume_then_fail)
    code = _run_in_process(["run", "--pcap", str(DEMO_PCAP), "--scripts", str(only_seed), "--data-dir",
                            str(tmp_path / "d"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "kflpcap run: internal error (RuntimeError: injected [fault]): flushing what was read" in err
    assert "failed: kflpcap: internal error: RuntimeError: injected [fault]" in err
    assert "Traceback" not in err and "Repositories written: " in err
    # the DNS read before the fault
    assert list((tmp_path / "d" / "repositories").glob("*/kfl-pcap-s3/kfl_1/*.pcap.gz"))


def test_an_error_in_the_summary_still_ends_with_the_repositories_and_exit_1(
        tmp_path: Path, only_seed: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken_summary(_stats: object, _console: object) -> None:
        raise KeyError("figures")

    monkeypatch.setattr(report, "print_summary", broken_summary)
    code = _run_in_process(["run", "--pcap", str(DEMO_PCAP), "--scripts", str(only_seed), "--data-dir",
                            str(tmp_path / "d"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "failed: kflpcap: internal error in the summary: KeyError: 'figures'" in err
    repos = (tmp_path / "d" / "repositories").glob("*/kfl-pcap-s3/kfl_*/*.pcap.gz")
    assert {p.parent.name for p in repos} == {"kfl_0", "kfl_1"}


def test_stdin_bytes_are_counted_in_the_summary(tmp_path: Path, only_seed: Path) -> None:
    data = DEMO_PCAP.read_bytes()
    done = subprocess.run([sys.executable, "-m", "runtime", "run", "--pcap", "-", "--scripts", str(only_seed),
                           "--data-dir", "d"], input=data, cwd=tmp_path, capture_output=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    packets_row = next(line for line in done.stderr.decode().splitlines() if "│ packets" in line)
    assert f", {human_bytes(len(data))} " in packets_row
