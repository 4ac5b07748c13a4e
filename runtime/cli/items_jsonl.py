"""Items as JSON lines, from one process or from several that share the streams of the same input
(`capture.shares`: with `jobs` > 1, files only, since stdin is read once)."""

from __future__ import annotations

import heapq
import os
from typing import Any, BinaryIO

import orjson

from capture import CaptureConfig, NameTable
from capture.dissect_files import dissect_files
from capture.shares import Match, fork_shares

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
    out.flush()
    shares = fork_shares(paths, range(jobs), jobs, node=node, names=names, config=config, match=match)
    try:
        lines: list[bytes] = []
        for *_keys, line in heapq.merge(*(share.records() for share in shares)):
            lines.append(line)
            if len(lines) >= CHUNK:
                _write(out, lines)
        _write(out, lines)
        out.flush()
        codes = [share.wait() for share in shares]
    finally:
        for share in shares:  # the parent stopped early (broken pipe, ^C): stop the workers too
            share.kill()
    if any(code not in (0, 2) for code in codes):
        return 1
    return 2 if codes[0] == 2 else 0


