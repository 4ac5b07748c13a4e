"""Packet sources: capture files (pcap, pcapng, gzip-compressed), stdin and live interfaces."""

from __future__ import annotations

import gzip
import io
import itertools
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from capture.model import Packet
from capture.readers import GZIP_MAGIC, MAX_RECORD, NotACapture, read_capture

MAX_GZIP_LAYERS = 4  # a .gz of a .gz is read; deeper nesting is not a capture
FILE_BLOCK = 1024  # packets per list of a file in `Sources.blocks`


class _Prefixed(io.RawIOBase):
    """A binary stream that first returns `prefix`, then reads from `rest`; `count[0]` grows by the
    bytes read from `rest` (plus the prefix, taken from it)."""

    def __init__(self, prefix: bytes, rest: BinaryIO, count: list[int]) -> None:
        self._prefix = prefix
        self._rest = rest
        self._count = count
        count[0] += len(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read1(len(b))  # what the pipe has now: a live pipe must not wait for a full buffer
        b[: len(data)] = data
        self._count[0] += len(data)
        return len(data)


class _Gunzip:
    """Decompresses a gzip stream; a damaged or cut-short stream ends it after what did decompress.
    `head` bytes given back (sniffed by the caller) are returned first."""

    def __init__(self, raw: BinaryIO, err: Callable[[str], None]) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._err = err
        self._eof = False
        self.head = b""

    def read(self, n: int) -> bytes:
        parts = [self.head[:n]]
        self.head = self.head[n:]
        want = n - len(parts[0])
        while want > 0 and not self._eof:
            try:
                piece = self._gz.read1(min(want, 1 << 16))
            except (EOFError, OSError, zlib.error) as exc:
                self._eof = True
                self._err(f"compressed stream damaged or cut short after {self._gz.tell()} bytes ({exc})")
                break
            if not piece:
                self._eof = True
                break
            parts.append(piece)
            want -= len(piece)
        return b"".join(parts)


def _uncompressed(raw: BinaryIO, err: Callable[[str], None], count: list[int] | None = None) -> BinaryIO:
    """`raw`, or its decompressed content when it starts like gzip (sniffed, not by file name; a
    gzip inside a gzip is decompressed too). `count[0]`, when given, counts the bytes read."""
    head = raw.read(2)
    if raw.seekable() and count is None:
        raw.seek(0)
        stream: BinaryIO = raw
    else:  # a pipe (or counted): give back the two bytes we took
        stream = io.BufferedReader(_Prefixed(head, raw, count or [0]), 1 << 20)  # type: ignore[assignment]
    layers = 0
    while head == GZIP_MAGIC and layers < MAX_GZIP_LAYERS:
        gunzip = _Gunzip(stream, err)
        head = gunzip.head = gunzip.read(2)
        stream = gunzip  # type: ignore[assignment]
        layers += 1
    return stream


class PacketSource:
    """An iterator of `(ts_ns, linktype, data, orig_len)` over several inputs, read in order.

    `errors` gets one line per problem (input, byte offset, what was wrong); `failed` lists the
    inputs that were not captures at all (or could not be opened): their lines go to `on_error`,
    the others (a damaged or cut-short input read up to the damage) to `on_warning` (`on_error`
    when not given). `stdin_bytes` counts what was read from stdin. `heartbeat`, when set, is
    called whenever a live source waited without a packet (so a driver can tick its clocks).
    `ring_mib` sizes each live interface's kernel ring; `counters()` has what the kernel lost.
    """

    def __init__(
        self,
        specs: list[str],
        bpf: str | None = None,
        on_error: Callable[[str], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        ring_mib: int | None = None,
    ) -> None:
        self.specs = list(specs)
        self.ring_mib = ring_mib
        self.bpf = bpf
        self.on_error = on_error
        self.on_warning = on_warning or on_error
        self.errors: list[str] = []
        self.failed: list[str] = []
        self._stdin_count = [0]
        self.snaplens: dict[int, int] = {}
        self.live = any(s.startswith("iface:") for s in self.specs)
        if bpf:
            from capture.bpf import Filter

            Filter(bpf, 1)  # a syntax error shows now (BpfError), not in the middle of the input
        self.heartbeat: Callable[[], None] | None = None
        self._live_sources: list = []
        self._stopped = False

    @property
    def stdin_bytes(self) -> int:
        return self._stdin_count[0]

    def counters(self) -> dict[str, int]:
        """What the kernel counted on the live interfaces so far: `kernel_drops` (packets that found the
        ring full, lost) and `kernel_freezes` (times the ring was full); empty for files."""
        if not self._live_sources:
            return {}
        stats = [src.read_stats() for src in self._live_sources]
        return {"kernel_drops": sum(k.drops for k in stats), "kernel_freezes": sum(k.freezes for k in stats)}

    def snaplen(self, linktype: int) -> int:
        return self.snaplens.get(linktype, MAX_RECORD)

    def stop(self) -> None:
        """End the iteration soon (live inputs notice within their poll interval)."""
        self._stopped = True
        for src in self._live_sources:
            src.stop()

    def _error(self, text: str) -> None:
        """An input that cannot be read at all (add it to `failed` first)."""
        self.errors.append(text)
        if self.on_error is not None:
            self.on_error(text)

    def _warning(self, text: str) -> None:
        """A problem in an input that is read up to it."""
        self.errors.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def _snap(self, linktype: int, snaplen: int) -> None:
        self.snaplens[linktype] = max(snaplen, self.snaplens.get(linktype, 0))

    def __iter__(self) -> Iterator[Packet]:
        # chain the readers' own generators: no extra generator layer per packet
        return itertools.chain.from_iterable(self._inputs())

    def blocks(self) -> Iterator[list[Packet]]:
        """The packets in lists: a live interface's as its ring hands them over, a file's by
        `FILE_BLOCK` (a consumer takes a list without waiting between its packets)."""
        for packets in self._inputs():
            ring = getattr(packets, "blocks", None)
            if ring is not None:
                yield from ring()
                continue
            it = iter(packets)
            while block := list(itertools.islice(it, FILE_BLOCK)):
                yield block

    def _inputs(self) -> Iterator[Iterable[Packet]]:
        for spec in self.specs:
            if self._stopped:
                return
            if spec.startswith("iface:"):
                yield from self._live(spec[len("iface:") :])
            else:
                yield from self._file(spec)

    def _live(self, name: str) -> Iterator[Iterable[Packet]]:
        from capture.live import LiveSource

        try:
            src = LiveSource(name, bpf=self.bpf, **({"ring_mib": self.ring_mib} if self.ring_mib else {}))
        except OSError as exc:
            self.failed.append(f"iface:{name}")
            self._error(f"iface:{name}: cannot capture: {exc}")
            return
        self._live_sources.append(src)
        self._snap(src.linktype, src.snaplen)
        src.heartbeat = self.heartbeat
        src.on_error = self._warning
        with src:
            yield src

    def _file(self, spec: str) -> Iterator[Iterable[Packet]]:
        name = "<stdin>" if spec == "-" else spec
        try:
            raw: BinaryIO = sys.stdin.buffer if spec == "-" else open(Path(spec), "rb")  # noqa: SIM115
        except OSError as exc:
            self.failed.append(spec)
            self._error(f"{name}: cannot open: {exc.strerror or exc}")
            return
        try:
            stream = _uncompressed(raw, lambda msg: self._warning(f"{name}: {msg}"),
                                   self._stdin_count if spec == "-" else None)
            try:
                packets = read_capture(stream, lambda off, msg: self._warning(f"{name}: offset {off}: {msg}"),
                                       self._snap, lambda: self._stopped)
            except NotACapture as exc:
                self.failed.append(spec)
                self._error(f"{name}: offset 0: not a pcap/pcapng capture ({exc})")
                return
            except OSError as exc:
                self.failed.append(spec)
                self._error(f"{name}: offset 0: unreadable ({exc})")
                return
            if self.bpf:
                packets = _filtered(packets, self.bpf, lambda msg: self._warning(f"{name}: {msg}"))
            yield packets
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()


def _filtered(packets: Iterator[Packet], bpf: str, err: Callable[[str], None]) -> Iterator[Packet]:
    """Packets of a file that pass the BPF filter (compiled per link type)."""
    from capture.bpf import BpfError, Filter

    filters: dict[int, Filter] = {}
    for pkt in packets:
        flt = filters.get(pkt[1])
        if flt is None:
            try:
                flt = filters[pkt[1]] = Filter(bpf, pkt[1])
            except BpfError as exc:
                err(str(exc))
                return
        if flt.match(pkt[2], pkt[3]):
            yield pkt


def open_sources(
    specs: list[str],
    bpf: str | None = None,
    on_error: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    ring_mib: int | None = None,
) -> PacketSource:
    """Files (`.gz` too), `"-"` for stdin, `iface:NAME` for a live interface (a kernel ring of
    `ring_mib` MiB); read in order."""
    return PacketSource(specs, bpf=bpf, on_error=on_error, on_warning=on_warning, ring_mib=ring_mib)
