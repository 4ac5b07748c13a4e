"""Script console lines, Kubeshark style: `title] text` on stdout, `title:ERROR] text` on stderr."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from typing import TextIO


class Console:
    """Prints script output and counts errors per script title."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err
        self._lock = threading.Lock()
        self.errors: Counter[str] = Counter()
        self.error_kinds: Counter[tuple[str, str]] = Counter()
        self.lines: Counter[str] = Counter()

    def log(self, title: str, text: str) -> None:
        self.lines[title] += 1
        self._write(self._out or sys.stdout, f"{title}] {text}\n")

    def error(self, title: str, text: str, kind: str = "console") -> None:
        """An error line; `kind` (console, hook, job, helper, load, limit) is counted per script."""
        self.errors[title] += 1
        self.error_kinds[title, kind] += 1
        self._write(self._err or sys.stderr, f"{title}:ERROR] {text}\n")

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:
            try:
                stream.write(line)
                stream.flush()
            except OSError:  # the reader went away (`| head`) or the disk is full: the run goes on
                _silence(stream)


def _silence(stream: TextIO) -> None:
    """Send what is still written to `stream` (and the interpreter's last flush) to /dev/null."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass
