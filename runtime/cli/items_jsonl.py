"""Items as JSON lines, from one process or from several that share the streams of the same input.

With `jobs` > 1 (files only; stdin is read once) each worker process reads every packet, tracks
every stream (so stream ids are the same everywhere) and dissects every `jobs`-th stream (see
`make_handler_factory`). A worker sends each line with the number of the packet that completed
the item and its stream number; the parent merges the workers' lines on those keys, which gives
the order one process would print: by completing packet, then stream, then emission.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from struct import Struct
from typing import Any, BinaryIO

import orjson

from capture import CaptureConfig, NameTable
from capture.dissect_files import dissect_files

Match = Callable[[dict[str, Any]], bool] | None
HEAD = Struct("<QQI")  # completing packet number, stream number, line length
PIPE_BYTES = 1 << 20  # slack between workers that run at different speeds
CHUNK = 256  # lines per write


def default_jobs() -> int:
    """Worker processes for `kflpcap items`: the CPUs this process may use, at most 4 (each worker
    also reads and decodes every packet, so more workers gain less)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def write_items(paths: list[str], out: BinaryIO, match: Match, *, config: CaptureConfig,
                node: str | None, names: NameTable, jobs: int, limit: int | None = None) -> int:
    """Dissect `paths` and write the items `match` accepts (all when None; the first `limit` when
    given, which takes one process) to `out`, one JSON line each. Returns the exit status: 0, 1 when
    a worker failed, 2 when an input was not a capture."""
    if jobs <= 1 or "-" in paths or limit is not None:
        return _single(paths, out, match, config, node, names, limit)
    return _sharded(paths, out, match, config, node, names, jobs)


def _single(paths: list[str], out: BinaryIO, match: Match, config: CaptureConfig, node: str | None,
            names: NameTable, limit: int | None) -> int:
    dumps = orjson.dumps
    lines: list[bytes] = []
    left = [-1 if limit is None else limit]

    def on_item(item: dict[str, Any]) -> None:
        if left[0] and (match is None or match(item)):
            left[0] -= 1
            lines.append(dumps(item))
            if len(lines) >= CHUNK:
                _write(out, lines)

    source = dissect_files(paths, on_item, config=config, node=node, names=names,
                           done=None if limit is None else lambda: not left[0])
    _write(out, lines)
    out.flush()
    return 2 if source.failed else 0


def _write(out: BinaryIO, lines: list[bytes]) -> None:
    if lines:
        lines.append(b"")
        out.write(b"\n".join(lines))
        lines.clear()


def _sharded(paths: list[str], out: BinaryIO, match: Match, config: CaptureConfig, node: str | None,
             names: NameTable, jobs: int) -> int:
    pids: list[int] = []
    readers: list[BinaryIO] = []
    try:
        for share in range(jobs):
            rfd, wfd = os.pipe()
            with contextlib.suppress(OSError):  # F_SETPIPE_SZ: Linux only, capped by pipe-max-size
                import fcntl

                fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            out.flush()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                for reader in readers:
                    reader.close()
                os._exit(_worker(paths, wfd, match, config, node, names, (share, jobs)))
            os.close(wfd)
            pids.append(pid)
            readers.append(os.fdopen(rfd, "rb", buffering=PIPE_BYTES))
        lines: list[bytes] = []
        for *_keys, line in heapq.merge(*(_records(reader) for reader in readers)):
            lines.append(line)
            if len(lines) >= CHUNK:
                _write(out, lines)
        _write(out, lines)
        out.flush()
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        pids.clear()
    finally:
        for reader in readers:
            reader.close()
        for pid in pids:  # the parent stopped early (broken pipe, ^C): stop the workers too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    if any(code not in (0, 2) for code in codes):
        return 1
    return 2 if codes[0] == 2 else 0


def _worker(paths: list[str], wfd: int, match: Match, config: CaptureConfig, node: str | None,
            names: NameTable, shard: tuple[int, int]) -> int:
    """One share, in the forked child: framed lines to `wfd`. Returns the child's exit status."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        position = [0]
        dumps = orjson.dumps
        pack = HEAD.pack
        with os.fdopen(wfd, "wb", buffering=PIPE_BYTES) as pipe:
            write = pipe.write

            def on_item(item: dict[str, Any]) -> None:
                if match is None or match(item):
                    line = dumps(item)
                    write(pack(position[0], int(item["stream"][:12]), len(line)))
                    write(line)

            source = dissect_files(paths, on_item, config=config, node=node, names=names, shard=shard,
                                   position=position)
        return 2 if source.failed else 0
    except BrokenPipeError:
        return 0
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stderr.flush()


def _records(reader: BinaryIO) -> Iterator[tuple[int, int, int, bytes]]:
    """(packet, stream, sequence, line) of each line a worker sent."""
    read = reader.read
    unpack = HEAD.unpack
    size = HEAD.size
    seq = 0
    while True:
        head = read(size)
        if len(head) < size:
            return
        packet, stream, length = unpack(head)
        yield packet, stream, seq, read(length)
        seq += 1
