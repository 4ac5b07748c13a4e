"""A seeded, structure-aware mutator of capture files (issue 14, acceptance 2): it knows where the
fields of classic pcap and pcapng are and sets them to edge values (zero, one past a limit, all ones,
random), cuts, duplicates and joins blocks, and wraps the result in gzip framing that may be cut,
flipped or nested. The same seed always gives the same input."""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable

from capture.model import NS
from tests.capture.capbuild import Record, block, epb, idb, option, pcap_bytes, shb

U32_EDGES = (0, 1, 3, 11, 12, 13, 16, 28, 31, 32, 96, 0xFFFF, 0x40000, 0x40001, 0x7FFFFFFF, 0xFFFFFFFF)
Mutation = Callable[[random.Random, bytes], bytes]


def _u32(rng: random.Random) -> int:
    return rng.choice(U32_EDGES) if rng.random() < 0.7 else rng.getrandbits(32)


def _u64(rng: random.Random) -> int:
    return rng.choice((0, 1, 1 << 32, 1 << 62, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, rng.getrandbits(64)))


def _put(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def _flip(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    """`data` with one bit flipped at or after `start`."""
    if len(data) <= start:
        return data
    pos = rng.randrange(start, len(data))
    return _put(data, pos, bytes([data[pos] ^ (1 << rng.randrange(8))]))


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(max(1, len(data)))]


def _pcap_record_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 24
    while pos + 16 <= len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return offsets


def pcap_mutation(rng: random.Random, records: list[Record], linktype: int) -> tuple[str, bytes]:
    """A classic pcap with one or more damaged fields; (what was done, bytes)."""
    data = pcap_bytes(linktype, records)
    offsets = _pcap_record_offsets(data)
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("snaplen", "linktype", "magic", "caplen", "wirelen", "ts", "cut", "join", "flip"))
        at = rng.choice(offsets)
        if kind == "snaplen":
            data = _put(data, 16, struct.pack("<I", _u32(rng)))
        elif kind == "linktype":
            lt = rng.choice((0, 1, 101, 113, 147, 276, 0xFFFF, _u32(rng)))
            data = _put(data, 20, struct.pack("<I", lt))
        elif kind == "magic":
            data = _put(data, 0, rng.choice((b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                                              b"\x0a\x0d\x0d\x0a", b"\x1f\x8b\x08\x00")))
        elif kind == "caplen":
            data = _put(data, at + 8, struct.pack("<I", _u32(rng)))
        elif kind == "wirelen":
            data = _put(data, at + 12, struct.pack("<I", _u32(rng)))
        elif kind == "ts":
            data = _put(data, at, struct.pack("<II", _u32(rng), _u32(rng)))
        elif kind == "cut":
            data = _cut(rng, data)
        elif kind == "join":
            data = data[:at] + data[: rng.choice((24, 23, 40, at))] + data[at:]
        else:
            data = _flip(rng, data)
        done.append(f"{kind}@{at}")
    return "pcap " + " ".join(done), data


def pcapng_mutation(rng: random.Random, records: list[Record], linktype: int) -> tuple[str, bytes]:
    """A pcapng built block by block with damaged lengths, options, interfaces or timestamps."""
    blocks = [shb(), idb(linktype)]
    blocks += [epb(0, ts // 1000, data, wirelen) for ts, data, wirelen in records]
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("length", "trailer", "tsresol", "tsoffset", "option", "interface", "caplen",
                           "ts", "spb", "pb", "bom", "unknown", "empty", "cut", "flip", "join"))
        k = rng.randrange(1, len(blocks))
        b = blocks[k]
        if kind == "length":
            b = _put(b, 4, struct.pack("<I", _u32(rng)))
        elif kind == "trailer":
            b = b[:-4] + struct.pack("<I", _u32(rng))
        elif kind in ("tsresol", "tsoffset", "option"):
            opt = {"tsresol": option(9, bytes([rng.getrandbits(8)])),
                   "tsoffset": option(14, struct.pack("<Q", _u64(rng))),
                   "option": struct.pack("<HH", rng.getrandbits(16), _u32(rng) & 0xFFFF)}[kind]
            blocks.insert(k, idb(rng.choice((linktype, 0, 0xFFFF)), _u32(rng), opt))
            iface = len([x for x in blocks if x[:4] == b"\x01\0\0\0"]) - 1
            b = epb(iface, _u64(rng), records[0][1], _u32(rng))
        elif kind == "interface" and b[:4] == b"\x06\0\0\0":
            b = _put(b, 8, struct.pack("<I", _u32(rng)))
        elif kind == "caplen" and b[:4] == b"\x06\0\0\0":
            b = _put(b, 20, struct.pack("<I", _u32(rng)))
        elif kind == "ts" and b[:4] == b"\x06\0\0\0":
            b = _put(b, 12, struct.pack("<II", _u32(rng), _u32(rng)))
        elif kind == "spb":
            b = block(3, struct.pack("<I", _u32(rng)) + records[0][1][: rng.randrange(64)])
        elif kind == "pb":
            b = block(2, struct.pack("<HHIIII", rng.getrandbits(16), 0, _u32(rng), _u32(rng), _u32(rng),
                                     _u32(rng)) + records[0][1])
        elif kind == "bom":
            b = block(0x0A0D0D0A, struct.pack("<I", _u32(rng)) + b"\0" * 12)
        elif kind == "unknown":
            b = block(_u32(rng), b"\0" * rng.choice((0, 4, 20)))
        elif kind == "empty":
            b = block(rng.choice((1, 2, 3, 6)), b"")
        elif kind == "cut":
            b = _cut(rng, b)
        elif kind == "flip":
            b = _flip(rng, b)
        else:
            b = b + pcap_bytes(linktype, records[:3])
        blocks[k] = b
        done.append(f"{kind}@{k}")
    return "pcapng " + " ".join(done), b"".join(blocks)


def gzip_framing(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """`data` as it is, or gzipped: cut, flipped, nested, in several members or with a bad trailer."""
    kind = rng.choice(("plain", "plain", "gzip", "cut", "flip", "nested", "members", "trailer"))
    if kind == "plain":
        return "", data
    gz = gzip.compress(data, mtime=0)
    if kind == "cut":
        gz = _cut(rng, gz)
    elif kind == "flip":
        gz = _flip(rng, gz, 10)
    elif kind == "nested":
        gz = gzip.compress(gzip.compress(gz, mtime=0), mtime=0) if rng.random() < 0.3 else gzip.compress(gz)
    elif kind == "members":
        half = rng.randrange(len(data) + 1)
        gz = gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0)
    elif kind == "trailer":
        gz = gz[:-8] + struct.pack("<II", _u32(rng), _u32(rng))
    return f" gzip:{kind}", gz


def mutated(seed: int, records: list[Record], linktype: int) -> tuple[str, bytes]:
    """The input of `seed`: (description, bytes)."""
    rng = random.Random(seed)
    take = records[: rng.choice((1, 3, 20))]
    if rng.random() < 0.15:
        take = late(take)
    make = pcap_mutation if rng.random() < 0.5 else pcapng_mutation
    what, data = make(rng, take, linktype)
    framing, data = gzip_framing(rng, data)
    return f"seed {seed}: {what}{framing}", data


def late(records: list[Record]) -> list[Record]:
    """The records moved to just before 2106 (the last second a classic pcap can hold)."""
    shift = ((1 << 32) - 10) * NS - records[0][0]
    return [(ts + shift, data, wirelen) for ts, data, wirelen in records]
