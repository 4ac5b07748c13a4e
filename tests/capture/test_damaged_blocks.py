"""A damaged block never crashes a reader (issue 14 #4, #11): every value read from a file is
range-checked where it enters and a bad block is one warning at its offset, the packets before it
are kept; captures joined with `cat` are read on; a gzip inside a gzip is read."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from runtime.demo import DEMO_PCAP
from tests.capture.capbuild import block, epb, idb, option, pcap_bytes, pcap_records, pcapng_bytes
from tests.capture.test_oracle import run_streams
from tests.conftest import PCAPS

LINKTYPE, RECORDS = pcap_records(DEMO_PCAP)
GOOD = pcapng_bytes(LINKTYPE, RECORDS[:200])
FRAME = RECORDS[0][1]


def _about(path: Path, stderr: str) -> list[str]:
    """The lines of stderr about input `path` (not the capture's skipped-packet warnings)."""
    return [line for line in stderr.splitlines() if str(path) in line]

SECONDS_IDB = idb(LINKTYPE, options=option(9, b"\x00"))
OVERRUN = struct.pack("<HHI", LINKTYPE, 0, 65535) + struct.pack("<HH", 9, 200)
BAD_TAILS = {  # the bytes appended, how far into them the bad block starts, the warning
    "interface block without a body": (block(1, b""), 0, "damaged interface block (0 of 8 bytes of body)"),
    "absurd if_tsoffset": (idb(LINKTYPE, options=option(14, struct.pack("<q", 1 << 62))), 0,
                           "damaged interface block (timestamp offset 4611686018427387904 s out of range)"),
    "if_tsresol seconds, large timestamp": (
        SECONDS_IDB + epb(1, 1 << 40, FRAME, len(FRAME)), len(SECONDS_IDB),
        "damaged packet block (timestamp 1099511627776 out of range)"),
    "option overruns its block": (block(1, OVERRUN), 0,
                                  "damaged interface block (option 9 of 200 bytes overruns the block)"),
    "packet block shorter than its header": (block(6, b"\0" * 4), 0,
                                             "damaged packet block (block length 16)"),
}


@pytest.mark.parametrize("case", sorted(BAD_TAILS))
def test_bad_block_is_a_warning_at_its_offset(tmp_path: Path, case: str) -> None:
    tail, into, what = BAD_TAILS[case]
    path = tmp_path / "bad.pcapng"
    path.write_bytes(GOOD + tail)
    clean = tmp_path / "clean.pcapng"
    clean.write_bytes(GOOD)
    rows, summary, proc = run_streams("--pcap", str(path))
    clean_rows, _summary, _proc = run_streams("--pcap", str(clean))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert _about(path, proc.stderr) == [f"kflpcap: warning: {path}: offset {len(GOOD) + into}: {what}"]
    assert summary["packets_read"] == 200
    assert rows == clean_rows


def test_pcap_timestamp_past_2106_is_a_warning(tmp_path: Path) -> None:
    """Repositories are classic pcaps: seconds beyond 32 bits cannot be written, so they are damage."""
    path = tmp_path / "late.pcap"
    good = pcap_bytes(LINKTYPE, RECORDS[:10])
    path.write_bytes(good + struct.pack("<IIII", 0xFFFFFFFF, 0xFFFFFFFF, len(FRAME), len(FRAME)) + FRAME)
    _rows, summary, proc = run_streams("--pcap", str(path))
    assert proc.returncode == 0 and summary["packets_read"] == 10
    what = "damaged record header (timestamp 4294967295.4294967295 out of range)"
    assert _about(path, proc.stderr) == [f"kflpcap: warning: {path}: offset {len(good)}: {what}"]


JOINS = {
    "pcap + pcap": (DEMO_PCAP.read_bytes(), (PCAPS / "zeek_http_pipelined.pcap").read_bytes()),
    "pcap + pcapng": (DEMO_PCAP.read_bytes(), (PCAPS / "zeek_dns_multi-interface.pcapng").read_bytes()),
    "pcapng + pcap": ((PCAPS / "ndpi_http404_midstream.pcapng").read_bytes(), DEMO_PCAP.read_bytes()),
    "big-endian pcap + pcap": ((PCAPS / "ndpi_dns_big-endian_fuzzed-malformed.pcap").read_bytes(),
                               (PCAPS / "zeek_http_pipelined.pcap").read_bytes()),
}


@pytest.mark.parametrize("case", sorted(JOINS))
def test_captures_joined_with_cat_read_as_given_in_order(tmp_path: Path, case: str) -> None:
    first, second = JOINS[case]
    a, b, joined = tmp_path / "a.cap", tmp_path / "b.cap", tmp_path / "joined.cap"
    a.write_bytes(first)
    b.write_bytes(second)
    joined.write_bytes(first + second)
    rows, summary, proc = run_streams("--pcap", str(joined))
    apart, apart_summary, apart_proc = run_streams("--pcap", str(a), "--pcap", str(b))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert summary["packets_read"] == apart_summary["packets_read"] > 0
    assert rows == apart
    assert _about(joined, proc.stderr) == []
    assert proc.stderr == apart_proc.stderr


def test_gzip_inside_gzip_is_read(tmp_path: Path) -> None:
    twice = tmp_path / "twice.pcap.gz.gz"
    twice.write_bytes(gzip.compress(gzip.compress(DEMO_PCAP.read_bytes())))
    rows, summary, proc = run_streams("--pcap", str(twice))
    plain, plain_summary, _proc = run_streams("--pcap", str(DEMO_PCAP))
    assert proc.returncode == 0 and _about(twice, proc.stderr) == []
    assert rows == plain and summary["packets_read"] == plain_summary["packets_read"] == len(RECORDS)
