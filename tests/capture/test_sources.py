"""Sources: formats, timestamps in nanoseconds, several files in order, BPF on files."""

from __future__ import annotations

import os
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from capture import open_sources
from capture.model import NS
from tests.capture.test_oracle import run_streams
from tests.conftest import PCAPS

FORMATS = ["zeek_http-get-to-ssh-port_nanosecond.pcap", "zeek_dns_multi-interface.pcapng",
           "ndpi_http404_midstream.pcapng", "ndpi_dns_big-endian_fuzzed-malformed.pcap"]


@pytest.mark.parametrize("name", FORMATS)
def test_timestamps_and_lengths_equal_tshark(name: str) -> None:
    out = subprocess.run(["tshark", "-r", str(PCAPS / name), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.cap_len", "-e", "frame.len"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = []
    for line in out.splitlines():
        epoch, caplen, length = line.split("\t")
        sec, frac = epoch.split(".")
        theirs.append((int(sec) * NS + int(frac.ljust(9, "0")), int(caplen), int(length)))
    ours = [(ts, len(data), orig) for ts, _lt, data, orig in open_sources([str(PCAPS / name)])]
    assert ours == theirs


def test_pcapng_with_two_interfaces_and_snaplen() -> None:
    src = open_sources([str(PCAPS / "zeek_dns_multi-interface.pcapng"),
                        str(PCAPS / "zeek_http_snaplen96.pcap")])
    packets = list(src)
    assert len(packets) == 6 + 12
    assert src.snaplen(1) >= 96 and not src.errors and not src.failed
    cut = packets[6:]
    assert any(len(data) < orig for _ts, _lt, data, orig in cut)
    assert all(len(data) <= 96 for _ts, _lt, data, _orig in cut)


def test_several_files_are_read_in_order_with_one_id_counter() -> None:
    a, b = PCAPS / "sv_dns_udp_and_tcp.pcap", PCAPS / "zeek_http_pipelined.pcap"
    rows, summary, proc = run_streams("--pcap", str(a), "--pcap", str(b))
    assert proc.returncode == 0
    ids = sorted(r["stream"] for r in rows)
    assert ids == ["000000000000.pcap", "000000000001_udp.pcap", "000000000002.pcap"]
    assert summary["packets_read"] == 12 + 49


def test_bpf_filter_on_files() -> None:
    pcap = PCAPS / "zeek_mixed_http404-dns-ssh-ftp.pcap"
    everything, _s, _p = run_streams("--pcap", str(pcap))
    rows, summary, proc = run_streams("--pcap", str(pcap), "--bpf", "udp port 53")
    assert proc.returncode == 0
    expected = [r for r in everything if r["l4"] == "udp" and 53 in (r["src_port"], r["dst_port"])]
    assert expected and sorted(r["packets"] for r in rows) == sorted(r["packets"] for r in expected)
    assert summary["packets_read"] == sum(r["packets"] for r in expected)


def test_a_pipe_yields_packets_as_they_arrive(tmp_path: Path) -> None:
    """`tcpdump -w - | kflpcap run --pcap -`: packets come out while the writer is still writing."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    frame = bytes(14) + bytes([0x45]) + bytes(19)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = b"".join(struct.pack("<IIII", 1000 + i, 0, len(frame), len(frame)) + frame for i in range(3))
    got_three = threading.Event()
    in_time: list[bool] = []

    def writer() -> None:
        with open(fifo, "wb", buffering=0) as w:
            w.write(header + records)
            in_time.append(got_three.wait(10))  # the pipe stays open until the reader has the packets
            w.write(records)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    for ts_ns, _lt, _data, _len in open_sources([str(fifo)]):
        seen.append(ts_ns)
        if len(seen) == 3:
            got_three.set()
    thread.join()
    assert in_time == [True]
    assert len(seen) == 6
