"""How far `kflpcap run` has read its capture files, for the progress bar: the read offsets of the
files' open descriptors (from /proc), with no per-packet cost."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
