"""Write packets to a capture file: classic pcap for one link type, pcapng for several.

A `Packet` is `(ts_ns, linktype, data, orig_len)` with `ts_ns` in nanoseconds since the Unix epoch.
Classic pcap stores microseconds unless any timestamp has sub-microsecond digits; then the whole file
uses the nanosecond magic (`a1b23c4d`), so no precision is lost. Packets of several link types go to
pcapng with one interface per link type (in order of first appearance), each interface with
`if_tsresol` 9 (ns) when needed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

Packet = tuple[int, int, bytes, int]
SnapLen = int | Callable[[int], int]

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
_BATCH = 4096

_REC = struct.Struct("<IIII")
_EPB_HEAD = struct.Struct("<IIIIIII")


def needs_ns(packets: Sequence[Packet]) -> bool:
    """True when some timestamp is not a whole number of microseconds."""
    return any(p[0] % 1000 for p in packets)


def write_pcap(fileobj: BinaryIO, packets: Sequence[Packet], snaplen: SnapLen) -> int:
    """Write `packets` (already in timestamp order) to `fileobj`; returns the number written.

    `snaplen` is one value for every link type or a function `linktype -> snaplen`.
    """
    snap_of = snaplen if callable(snaplen) else (lambda _lt, _s=snaplen: _s)
    linktypes = list(dict.fromkeys(p[1] for p in packets))
    ns = needs_ns(packets)
    if len(linktypes) > 1:
        return _write_pcapng(fileobj, packets, linktypes, snap_of, ns)
    linktype = linktypes[0] if linktypes else 1
    magic = PCAP_MAGIC_NS if ns else PCAP_MAGIC_US
    fileobj.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snap_of(linktype), linktype))
    div = 1_000_000_000 if ns else 1_000_000
    scale = 1 if ns else 1000
    pack = _REC.pack
    out: list[bytes] = []
    for ts_ns, _lt, data, orig_len in packets:
        t = ts_ns // scale
        out.append(pack(t // div, t % div, len(data), max(orig_len, len(data))))
        out.append(data)
        if len(out) >= _BATCH:
            fileobj.write(b"".join(out))
            out.clear()
    fileobj.write(b"".join(out))
    return len(packets)


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _write_pcapng(
    fileobj: BinaryIO,
    packets: Sequence[Packet],
    linktypes: list[int],
    snap_of: Callable[[int], int],
    ns: bool,
) -> int:
    shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(0, b"")
    fileobj.write(_block(0x0A0D0D0A, shb_body))
    for lt in linktypes:
        opts = (_option(9, bytes([9])) if ns else b"") + _option(0, b"")
        fileobj.write(_block(0x00000001, struct.pack("<HHI", lt, 0, snap_of(lt)) + opts))
    iface = {lt: i for i, lt in enumerate(linktypes)}
    scale = 1 if ns else 1000
    head = _EPB_HEAD.pack
    out: list[bytes] = []
    for ts_ns, lt, data, orig_len in packets:
        t = ts_ns // scale
        caplen = len(data)
        pad = (-caplen) % 4
        total = 32 + caplen + pad
        out.append(head(6, total, iface[lt], t >> 32, t & 0xFFFFFFFF, caplen, max(orig_len, caplen)))
        out.append(data)
        out.append(b"\0" * pad + total.to_bytes(4, "little"))
        if len(out) >= _BATCH:
            fileobj.write(b"".join(out))
            out.clear()
    fileobj.write(b"".join(out))
    return len(packets)


@dataclass(frozen=True)
class Interface:
    """A pcapng interface: its link type and snaplen, a name and a description (shown by Wireshark)."""

    linktype: int
    snaplen: int
    name: str = ""
    description: str = ""


# (ts_ns, interface index, captured bytes, length on the wire, comment or "")
Record = tuple[int, int, bytes, int, str]


def write_pcapng(
    fileobj: BinaryIO, interfaces: Sequence[Interface], records: Iterable[Record], comment: str = ""
) -> int:
    """A pcapng with the given interfaces (ns timestamps), a section comment and a comment per packet
    where the record has one; returns the number of packets written."""
    shb_opts = (_option(1, comment.encode()) if comment else b"") + _option(0, b"")
    fileobj.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts))
    for iface in interfaces:
        opts = b"".join(
            _option(code, text.encode()) for code, text in ((2, iface.name), (3, iface.description)) if text
        )
        opts += _option(9, bytes([9])) + _option(0, b"")
        fileobj.write(_block(0x00000001, struct.pack("<HHI", iface.linktype, 0, iface.snaplen) + opts))
    head = _EPB_HEAD.pack
    out: list[bytes] = []
    n = 0
    for ts_ns, index, data, orig_len, note in records:
        caplen = len(data)
        pad = (-caplen) % 4
        opts = _option(1, note.encode()) + _option(0, b"") if note else b""
        total = 32 + caplen + pad + len(opts)
        out.append(head(6, total, index, ts_ns >> 32, ts_ns & 0xFFFFFFFF, caplen, max(orig_len, caplen)))
        out.append(data)
        out.append(b"\0" * pad + opts + total.to_bytes(4, "little"))
        n += 1
        if len(out) >= _BATCH:
            fileobj.write(b"".join(out))
            out.clear()
    fileobj.write(b"".join(out))
    return n


def count_packets(data: bytes) -> int:
    """Packet records in a classic pcap (either byte order, µs or ns) or pcapng capture."""
    if len(data) < 24:
        raise ValueError("not a capture: shorter than a pcap header")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return _count_pcapng(data)
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        rec = struct.Struct("<IIII")
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        rec = struct.Struct(">IIII")
    else:
        raise ValueError(f"not a capture: magic {magic.hex()}")
    pos, n, end = 24, 0, len(data)
    while pos < end:
        if pos + 16 > end:
            raise ValueError(f"truncated record header at offset {pos}")
        caplen = rec.unpack_from(data, pos)[2]
        pos += 16 + caplen
        if pos > end:
            raise ValueError(f"truncated packet data at offset {pos - caplen}")
        n += 1
    return n


def _count_pcapng(data: bytes) -> int:
    pos, n, end = 0, 0, len(data)
    order = "<"
    while pos < end:
        if pos + 12 > end:
            raise ValueError(f"truncated block at offset {pos}")
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        block_type, total = struct.unpack_from(order + "II", data, pos)
        if total < 12 or pos + total > end:
            raise ValueError(f"bad block length {total} at offset {pos}")
        n += block_type in (3, 6)
        pos += total
    return n
