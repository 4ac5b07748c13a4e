"""Repository artifacts: the gzipped PCAP, Kubeshark's tar.gz layout, and times as text.

Gzip level: 1. Measured with zlib on this 2-core machine. Real traffic (the bundled captures,
7.5 MB): level 1 ~50 MB/s to 57.2 % of the size, level 6 ~36 MB/s to 55.2 %, level 9 ~30 MB/s to
55.1 % (payloads are mostly compressed or encrypted already). Generated HTTP/DNS traffic (10.1 MB
exported by `python -m bench.bench_wrapper`, 250 k-packet capture): level 1 52 MB/s to 29.2 %, level 3
37 MB/s to 26.4 %, level 6 18.5 MB/s to 23.3 %, level 9 14 MB/s to 23.1 %. Higher levels save 2-6 %
of the size for 1.4-3.7x the CPU on the cores the pipeline itself needs; the bench repeats this.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from wrappers.pcapfile import Packet, write_pcap

GZIP_LEVEL = 1


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes (SHA-256) and counts what passes through to `out`."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)


def write_pcap_gz(
    path: Path, packets: Sequence[Packet], snaplen: int | Callable[[int], int], level: int = GZIP_LEVEL
) -> tuple[str, int, int]:
    """Write a gzipped capture; returns (SHA-256 hex, size) of the compressed file and the raw size."""
    with path.open("wb") as raw:
        hashing = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=level, mtime=0) as gz:
            write_pcap(gz, packets, snaplen)
            raw_size = gz.tell()
    return hashing.sha.hexdigest(), hashing.size, raw_size


def write_kubeshark_tar(
    path: Path,
    unix: int,
    packets: Sequence[Packet],
    snaplen: int | Callable[[int], int],
    content: dict[str, Any],
    names_history: dict[str, Any],
    level: int = GZIP_LEVEL,
) -> tuple[str, int, int]:
    """Kubeshark's repository: `<unix>.pcap`, `content.json`, `name_resolution_history.json`.

    Returns (SHA-256 hex, size) of the tar.gz and the size of the PCAP inside."""
    pcap = io.BytesIO()
    write_pcap(pcap, packets, snaplen)
    members = [
        (f"{unix}.pcap", pcap.getvalue()),
        ("content.json", json.dumps(content).encode()),
        ("name_resolution_history.json", json.dumps(names_history).encode()),
    ]
    with path.open("wb") as raw:
        hashing = HashingWriter(raw)
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=level, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = unix
                info.mode = 0o444
                tar.addfile(info, io.BytesIO(data))
    return hashing.sha.hexdigest(), hashing.size, len(members[0][1])


def rfc3339(ts_ns: int) -> str:
    """`2026-01-27T16:28:17.123456789Z`."""
    sec, frac = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def key_time(ts_ns: int) -> str:
    """`20260127T162817Z`, the time part of object keys."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts_ns // 1_000_000_000))


def rfc1123(ts_ns: int) -> str:
    """`Tue, 14 Mar 2023 18:46:13 GMT` (Kubeshark's content.json time)."""
    when = dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC)
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")
