"""Filling the stats dict of `kflpcap run` (runtime.cli.report.new_stats()) from a running pipeline.

The pipeline itself keeps items per protocol, scripts and errors up to date (`Pipeline.sync_stats`);
`RunStats.refresh()` adds what lives elsewhere: the capture's counters (packets, drops, store), the
kflPcapS3 wrappers' matches and written repositories, the spool's uploads, and how far the input
files (and stdin) were read. It runs on a side thread a few times a second and once at the end, reads only
(copies of lists and dicts), and keeps the wrappers and the outbox it saw, so their final figures
are still there after the scripts were unloaded.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any


def _fd_position(fd: int, path: str) -> int | None:
    """Read offset of descriptor `fd` if it is (still) `path`, else None."""
    try:
        if os.readlink(f"/proc/self/fd/{fd}") != path:
            return None
        with open(f"/proc/self/fdinfo/{fd}") as fh:
            return int(fh.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _fds_of(paths: set[str]) -> dict[str, int]:
    """Descriptors of this process open on `paths` (from /proc; empty elsewhere)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target in paths:
                    out[target] = int(fd)
    return out


class InputProgress:
    """Bytes read of the capture files, from the offsets of their open descriptors (no per-packet
    cost; the descriptor list is scanned only when the one being read is closed)."""

    def __init__(self, specs: list[str]) -> None:
        self.files: list[tuple[str, int]] = []
        for spec in specs:
            if spec == "-" or spec.startswith("iface:"):
                continue
            with contextlib.suppress(OSError):
                path = os.path.realpath(spec)
                self.files.append((path, Path(path).stat().st_size))
        self.total = sum(size for _, size in self.files)
        self._done: dict[str, int] = {}
        self._fds: dict[str, int] = {}

    def read(self, finished: bool = False) -> int:
        if finished:
            return self.total
        positions = self._positions()
        if not positions:
            self._fds = _fds_of({path for path, _size in self.files})
            positions = self._positions()
        current = -1
        for k, (path, size) in enumerate(self.files):
            if path in positions:
                self._done[path] = min(size, max(positions[path], self._done.get(path, 0)))
                current = k
        for path, size in self.files[:current]:
            self._done[path] = size
        return sum(self._done.values())

    def _positions(self) -> dict[str, int]:
        """Read offset per capture file, from the descriptors found last time that still are it."""
        return {path: pos for path, fd in self._fds.items() if (pos := _fd_position(fd, path)) is not None}


class RunStats:
    """Keeps `pipeline.stats` complete; call `refresh()` periodically and `refresh(final=True)` at the end."""

    def __init__(self, pipeline: Any, specs: list[str]) -> None:
        self.pipeline = pipeline
        self.stats: dict[str, Any] = pipeline.stats
        self.input = InputProgress(specs)
        self.stats["input"]["bytes_total"] = self.input.total
        self.wrappers: dict[int, tuple[str, Any]] = {}
        self.outbox: Any = None
        self.started = time.monotonic()
        pipeline.on_tick.append(self.remember_wrappers)

    def watch_outbox(self) -> None:
        """Remember the outbox the pipeline makes (call after `Pipeline.start()`)."""
        services = self.pipeline.services
        make = services.outbox_factory
        if make is None:
            return

        def remembered() -> Any:
            self.outbox = make()
            return self.outbox

        services.outbox_factory = remembered

    def remember_wrappers(self, _now_ns: int = 0) -> None:
        """Note the scripts' wrappers (also an `on_tick` callback: the last tick runs before unload)."""
        self._wrappers()

    def _wrappers(self) -> list[tuple[str, Any]]:
        for host in list(self.pipeline.scripts.hosts.values()):
            wrapper = getattr(host.commands, "wrapper", None)
            if wrapper is not None:
                self.wrappers[id(wrapper)] = (host.title, wrapper)
        return list(self.wrappers.values())

    def refresh(self, final: bool = False) -> None:
        s = self.stats
        p = self.pipeline
        s["elapsed_s"] = time.monotonic() - self.started
        if final:
            p.sync_stats()
        capture = p.capture
        if capture is not None:
            with contextlib.suppress(RuntimeError):  # a dict grew while it was read: next time
                self._capture(capture.counters)
        source = p.source
        s["input"]["bytes_read"] = self.input.read(finished=final and not s.get("live")) + (
            source.stdin_bytes if source is not None else 0)
        if not s.get("live"):
            s["bytes"] = s["input"]["bytes_read"]
        with contextlib.suppress(RuntimeError):
            self._repositories()
        if self.outbox is not None:
            s["uploads"] = self.outbox.stats()
        if final and source is not None:
            failed = tuple(f"{'<stdin>' if f == '-' else f}: " for f in source.failed)
            s["input"]["errors"] = [e for e in source.errors if e.startswith(failed)] if failed else []
            s["input"]["warnings"] = [e for e in source.errors if e not in s["input"]["errors"]]

    def _capture(self, c: dict[str, int]) -> None:
        s = self.stats
        s["packets"] = max(int(s.get("packets", 0)), c.get("packets_read", 0))
        s["drops"] = {k[len("skipped_"):]: v for k, v in c.items() if k.startswith("skipped_") and v}
        s["streams"]["total"] = c.get("streams", 0)
        s["streams"]["open"] = c.get("streams_open", 0)
        s["store"] = {
            "bytes": c.get("bytes_held", 0),
            "budget": c.get("budget_bytes", 0),
            "evicted_streams": c.get("streams_evicted", 0),
            "evicted_packets": c.get("packets_evicted", 0),
            "truncated_streams": c.get("streams_truncated", 0),
        }

    def _repositories(self) -> None:
        matches: list[dict[str, Any]] = []
        repos: list[dict[str, Any]] = []
        for title, w in self._wrappers():
            queries = list(w.opts.kfl_arr) if w.opts is not None else []
            written = list(w.written)
            for i, n in enumerate(list(w.matches)):
                streams = sum(r.get("streams", 0) for r in written if r.get("index") == i)
                matches.append({"script": title, "index": i, "query": queries[i] if i < len(queries) else "",
                                "matches": n, "streams": streams})
            repos += [{**r, "script": title} for r in written]
        self.stats["matches"] = matches
        self.stats["repositories"] = repos
