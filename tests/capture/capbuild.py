"""Capture files built field by field, for tests of damaged structure: the packets of a classic
pcap, written back as classic pcap or as pcapng with the interface options a test chooses."""

from __future__ import annotations

import struct
from pathlib import Path

from capture.model import NS

Record = tuple[int, bytes, int]  # ts_ns, captured bytes, original length


def pcap_records(path: Path) -> tuple[int, list[Record]]:
    """(link type, records) of a little-endian microsecond classic pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "a little-endian microsecond pcap"
    linktype = struct.unpack_from("<I", data, 20)[0]
    records: list[Record] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, pos)
        records.append((sec * NS + usec * 1000, data[pos + 16 : pos + 16 + caplen], wirelen))
        pos += 16 + caplen
    return linktype, records


def pcap_bytes(linktype: int, records: list[Record], snaplen: int = 65535) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for ts, data, wirelen in records:
        out.append(struct.pack("<IIII", ts // NS, ts % NS // 1000, len(data), wirelen) + data)
    return b"".join(out)


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def shb() -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(linktype: int, snaplen: int = 65535, options: bytes = b"") -> bytes:
    end = option(0, b"") if options else b""
    return block(1, struct.pack("<HHI", linktype, 0, snaplen) + options + end)


def epb(interface: int, ts_units: int, data: bytes, wirelen: int) -> bytes:
    head = struct.pack("<IIIII", interface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), wirelen)
    return block(6, head + data)


def pcapng_bytes(linktype: int, records: list[Record]) -> bytes:
    """One section, one interface (microsecond timestamps), one Enhanced Packet Block a record."""
    out = [shb(), idb(linktype)]
    out += [epb(0, ts // 1000, data, wirelen) for ts, data, wirelen in records]
    return b"".join(out)
