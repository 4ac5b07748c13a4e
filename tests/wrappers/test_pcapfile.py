"""write_pcap read back by tshark (not by our own reader): formats, timestamps, lengths, interfaces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wrappers.pcapfile import write_pcap

ETHERTYPE_IPV4 = b"\x08\x00"


def eth_frame(n: int, size: int) -> bytes:
    """An Ethernet frame carrying an IPv4/UDP packet of `size` bytes total; `n` varies the payload."""
    payload = bytes((n + i) % 256 for i in range(size - 42))
    udp_len = 8 + len(payload)
    ip_len = 20 + udp_len
    ip = bytes([0x45, 0, ip_len >> 8, ip_len & 255, 0, n & 255, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    udp = bytes([0x30, 0x39, 0, 53, udp_len >> 8, udp_len & 255, 0, 0])
    return b"\x02" * 6 + b"\x04" * 6 + ETHERTYPE_IPV4 + ip + udp + payload


def null_frame(n: int, size: int) -> bytes:
    """A BSD loopback (DLT_NULL) frame: AF_INET in host order, then the IPv4 packet."""
    return (2).to_bytes(4, "little") + eth_frame(n, size + 10)[14:]


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    return [line.split("|") for line in out.stdout.splitlines()]


def capinfos(path: Path) -> str:
    return subprocess.run(["capinfos", str(path)], capture_output=True, text=True, check=True).stdout


def write(tmp_path: Path, packets, snaplen) -> Path:
    path = tmp_path / "out.pcap"
    with path.open("wb") as f:
        assert write_pcap(f, packets, snaplen) == len(packets)
    return path


def test_microsecond_pcap(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000_000
    packets = [(base + i * 1_234_000, 1, eth_frame(i, 60 + i), 60 + i) for i in range(50)]
    path = write(tmp_path, packets, 65535)
    assert path.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")
    info = capinfos(path)
    assert "File encapsulation:  Ethernet" in info
    assert "65535 bytes" in info
    rows = tshark_fields(path, "frame.time_epoch", "frame.len", "frame.cap_len", "udp.dstport")
    assert len(rows) == len(packets)
    for (ts_ns, _lt, data, orig), (t, flen, clen, dport) in zip(packets, rows, strict=True):
        assert int(t.replace(".", "")[:19]) == ts_ns
        assert int(flen) == orig and int(clen) == len(data)
        assert dport == "53"


def test_nanosecond_when_needed_and_truncated_packets(tmp_path: Path) -> None:
    base = 1_600_000_000_123_456_789
    packets = [(base + i * 1_000_001, 1, eth_frame(i, 96), 1400) for i in range(10)]
    path = write(tmp_path, packets, 96)
    assert path.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")
    assert "nanoseconds" in capinfos(path)
    rows = tshark_fields(path, "frame.time_epoch", "frame.len", "frame.cap_len")
    assert [int(t.replace(".", "")) for t, _, _ in rows] == [p[0] for p in packets]
    assert {(int(a), int(b)) for _, a, b in rows} == {(1400, 96)}


@pytest.mark.parametrize("ns", [False, True])
def test_mixed_link_types_give_pcapng(tmp_path: Path, ns: bool) -> None:
    base = 1_650_000_000_000_000_000 + (7 if ns else 0)
    packets = []
    for i in range(30):
        make, lt = (eth_frame, 1) if i % 3 else (null_frame, 0)
        data = make(i, 80)
        packets.append((base + i * 10_000_000, lt, data, len(data)))
    path = write(tmp_path, packets, lambda lt: 262144 if lt == 1 else 65535)
    assert path.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    info = capinfos(path)
    assert "Per-packet" in info or "pcapng" in info
    rows = tshark_fields(path, "frame.time_epoch", "frame.interface_id", "frame.len", "ip.id", "udp.dstport")
    assert len(rows) == len(packets)
    for i, (t, iface, flen, ipid, dport) in enumerate(rows):
        ts_ns, lt, data, _ = packets[i]
        assert int(t.replace(".", "")[:19]) == ts_ns
        assert int(iface) == (0 if lt == 0 else 1)
        assert int(flen) == len(data)
        assert int(ipid, 0) == i and dport == "53"


def test_empty_packet_list_is_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path, [], 65535)
    assert tshark_fields(path, "frame.number") == []
