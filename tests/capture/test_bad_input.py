"""Acceptance 3: damaged and non-capture inputs give one clear line each (input, byte offset), exit
status 0 when packets were read and 2 when an input is not a capture at all; what was read is listed.
An input read up to its damage is a warning (as in `kflpcap run`), one not read at all an error."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

from tests.capture.tcpbuild import Conn
from tests.capture.test_oracle import run_streams
from tests.conftest import PCAPS, oracle


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kflpcap: error: ")]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kflpcap: warning: ")]


def _pcap(path: Path, linktype: int, frames: list[bytes]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, frame in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def test_corrupt_fuzz_file_keeps_what_was_read() -> None:
    pcap = PCAPS / "sv_corrupt_fuzz.pcap"
    rows, summary, proc = run_streams("--pcap", str(pcap))
    assert proc.returncode == 0
    assert _errors(proc.stderr) == []
    assert _warnings(proc.stderr) == [f"kflpcap: warning: {pcap}: offset 228: damaged record header "
                                      "(captured length 1409179648 > 262144)"]
    assert summary["packets_read"] == 1 and summary["input_errors"] == 1
    assert len(rows) == 1 and rows[0]["packets"] == 1


def test_cut_short_file_lists_every_stream() -> None:
    pcap = PCAPS / "sv_pgsql_cut-short-file_3.1MB.pcap"
    rows, summary, proc = run_streams("--pcap", str(pcap))
    assert proc.returncode == 0
    assert _errors(proc.stderr) == []
    warnings = _warnings(proc.stderr)
    assert len(warnings) == 1 and "cut short" in warnings[0]
    assert f"offset {pcap.stat().st_size - 1}:" in warnings[0]
    expected = sorted(s["packets"] for s in oracle(pcap)["packets_per_stream"]["tcp"])
    assert sorted(r["packets"] for r in rows) == expected
    assert summary["packets_read"] == oracle(pcap)["total_frames"]


def test_zero_byte_and_text_files_are_not_captures(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pcap"
    text.write_text("this is a text file\nnot a capture\n")
    for path, what in ((empty, "empty file"), (text, "text, not a capture")):
        rows, summary, proc = run_streams("--pcap", str(path))
        assert proc.returncode == 2
        expected = f"kflpcap: error: {path}: offset 0: not a pcap/pcapng capture ({what})"
        assert _errors(proc.stderr) == [expected]
        assert rows == [] and summary["packets_read"] == 0 and summary["inputs_not_captures"] == 1


def test_good_file_then_text_file_lists_the_good_streams(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    good = PCAPS / "zeek_http_pipelined.pcap"
    rows, _summary, proc = run_streams("--pcap", str(good), "--pcap", str(text))
    assert proc.returncode == 2
    assert [r["packets"] for r in rows] == [49]
    assert len(_errors(proc.stderr)) == 1


def test_unknown_link_type_is_counted_with_one_warning(tmp_path: Path) -> None:
    conn = Conn()
    frames = [raw for _ts, raw in conn.handshake()]
    path = _pcap(tmp_path / "user0.pcap", 147, frames * 3)
    rows, summary, proc = run_streams("--pcap", str(path))
    assert proc.returncode == 0
    assert rows == []
    assert summary["packets_read"] == 9 and summary["skipped_unknown_linktype"] == 9
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "unknown link type" in warnings[0]


def test_truncated_headers_and_non_ip_are_counted(tmp_path: Path) -> None:
    conn = Conn()
    syn = conn.syn()[1]
    frames = [syn[:10], syn[:20], syn[:40], syn, b"\xff" * 14 + b"\x08\x06" + b"\0" * 28]
    path = _pcap(tmp_path / "bits.pcap", 1, frames)
    rows, summary, proc = run_streams("--pcap", str(path))
    assert proc.returncode == 0
    assert summary["skipped_truncated_l2"] == 1
    assert summary["skipped_truncated_ip"] == 1
    assert summary["skipped_truncated_tcp"] == 1
    assert summary["skipped_non_ip"] == 1
    assert [r["packets"] for r in rows] == [1]


def test_gzip_file_and_stdin_read_the_same_streams(tmp_path: Path) -> None:
    pcap = PCAPS / "ndpi_http4xx_webdav_keepalive.pcap"  # pcapng behind a .pcap name
    gz = tmp_path / "webdav.pcap.gz"
    gz.write_bytes(gzip.compress(pcap.read_bytes()))
    plain, _s1, _p1 = run_streams("--pcap", str(pcap))
    zipped, _s2, _p2 = run_streams("--pcap", str(gz))
    proc = subprocess.run([sys.executable, "-m", "runtime", "streams", "--json", "--pcap", "-"],
                          input=gz.read_bytes(), capture_output=True, timeout=60)
    assert proc.returncode == 0
    piped = proc.stdout.decode().splitlines()
    assert len(plain) == 8
    assert plain == zipped
    assert len(piped) == len(plain) + 1


def test_gzip_cut_short_keeps_what_decompressed(tmp_path: Path) -> None:
    pcap = PCAPS / "zeek_http_pipelined.pcap"
    gz = gzip.compress(pcap.read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    rows, summary, proc = run_streams("--pcap", str(cut))
    assert proc.returncode == 0
    assert _errors(proc.stderr) == []
    assert any("compressed stream damaged or cut short" in w for w in _warnings(proc.stderr))
    assert 0 < summary["packets_read"] < 49 and rows[0]["packets"] == summary["packets_read"]
