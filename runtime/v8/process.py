"""The parent's handle on one script's V8 child process (see `runtime/v8/child.py`).

Memory: the V8 heap limit does not cover ArrayBuffer backing stores, which live outside the heap.
So the process as a whole is bounded twice: the child caps its own data segment (`RLIMIT_DATA`, an
allocation past it fails — a `RangeError` for an ArrayBuffer), and the parent watches the child's
resident memory (`/proc/<pid>/statm`) while a call is in flight and when its answer comes; a child
over its limit is killed and the call raises `MemoryExceeded`.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from runtime.v8 import protocol as proto

# How long past its own time budget a call may take before the child is killed: V8 terminates a
# running call at the budget; a child that does not answer by then is stuck (or dead).
GRACE_S = 5.0
# how often the parent looks at the child's resident memory while it waits for an answer
WATCH_S = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MIB = 1024 * 1024


class IsolateGone(Exception):
    """The child process died or had to be killed; the message says why."""


class MemoryExceeded(IsolateGone):
    """The child process went over its memory limit and was killed."""


@dataclass
class Answer:
    status: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.status == proto.OK


_SPARES: list[IsolateProcess] = []  # started ahead by `prestart`, handed out by `IsolateProcess.take`


def prestart(count: int) -> None:
    """Start `count` child processes now, so their interpreter and V8 come up while this process is
    still importing and opening its input (~0.1 s of a run's start-up); `IsolateProcess.take` hands
    them out, and those never taken are closed at exit."""
    if not _SPARES and count > 0:
        atexit.register(_close_spares)
    _SPARES.extend(IsolateProcess() for _ in range(count))


def _close_spares() -> None:
    while _SPARES:
        _SPARES.pop().close()


class IsolateProcess:
    """One child process with one V8 isolate. Use as a context manager or call `close()`.

    `memory_bytes` (0 = none) bounds the whole process: its data segment and resident memory."""

    @classmethod
    def take(cls, memory_bytes: int = 0) -> IsolateProcess:
        """A child started ahead by `prestart` if one is left and alive, else a new one."""
        while _SPARES:
            spare = _SPARES.pop(0)
            if spare._proc.poll() is None:
                spare.memory_bytes = memory_bytes
                return spare
            spare.close()
        return cls(memory_bytes)

    def __init__(self, memory_bytes: int = 0) -> None:
        self.memory_bytes = memory_bytes
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        env = dict(os.environ)
        env.pop("PYTHONSTARTUP", None)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.v8.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            close_fds=True,
        )
        self._pending = False

    def __enter__(self) -> IsolateProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def new_isolate(self, heap_limit: int) -> str:
        """Replace the child's isolate by a fresh one; returns the V8 version."""
        self.send(proto.OP_NEW, f"{heap_limit},{self.memory_bytes}".encode())
        answer = self.receive(GRACE_S + 30.0)
        return answer.text

    def evaluate(self, code: str | bytes, timeout_s: float) -> Answer:
        self.send_eval(code, timeout_s)
        return self.receive(timeout_s + GRACE_S)

    def send_call(self, name: bytes, args: list[bytes], timeout_s: float) -> None:
        """Start calling global function `name` with string arguments (no NUL inside them)."""
        self.send(proto.OP_CALL, proto.TIMEOUT.pack(timeout_s) + b"\x00".join([name, *args]))

    def send_eval(self, code: str | bytes, timeout_s: float) -> None:
        """Start an evaluation; `receive()` collects its answer (the child works meanwhile)."""
        data = code.encode("utf-8") if isinstance(code, str) else code
        self.send(proto.OP_EVAL, proto.TIMEOUT.pack(timeout_s) + data)

    def send(self, op: int, payload: bytes) -> None:
        if self._pending:
            raise RuntimeError("a request is already in flight")
        try:
            stdin = self._proc.stdin
            assert stdin is not None
            stdin.write(proto.HEAD.pack(len(payload), op))
            stdin.write(payload)
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise IsolateGone(self._death()) from exc
        self._pending = True

    def answered(self) -> bool:
        """The answer to the call in flight can be read without waiting (or no call is in flight)."""
        if not self._pending:
            return True
        stdout = self._proc.stdout
        return stdout is None or bool(select.select([stdout], [], [], 0)[0])

    def receive(self, wait_s: float) -> Answer:
        stdout = self._proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], min(left, WATCH_S) if self.memory_bytes else left)
            if ready:
                break
            self._watch()
            if time.monotonic() >= deadline:
                self.kill()
                raise IsolateGone(f"V8 did not stop within {wait_s:.0f} s; its process was killed")
        self._watch()
        head = proto.read_exact(stdout, proto.HEAD.size)
        if not head:
            raise IsolateGone(self._death())
        size, status = proto.HEAD.unpack(head)
        data = proto.read_exact(stdout, size) if size else b""
        if size and not data:
            raise IsolateGone(self._death())
        self._pending = False
        return Answer(status, data)

    def resident_bytes(self) -> int:
        """The child's resident memory now (0 once it is gone)."""
        try:
            with open(f"/proc/{self._proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            return 0

    def _watch(self) -> None:
        """Kill the child when it holds more than its memory limit."""
        if not self.memory_bytes:
            return
        held = self.resident_bytes()
        if held > self.memory_bytes:
            self.kill()
            self._pending = False
            raise MemoryExceeded(
                f"its process held {held // _MIB} MiB, over the limit of {self.memory_bytes // _MIB} MiB "
                "(V8 heap, ArrayBuffers and the process itself)"
            )

    def _death(self) -> str:
        try:
            code = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.returncode
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode("utf-8", "replace").splitlines()]
        reason = next((ln.lstrip("# ") for ln in lines if ln.startswith("# Fatal")), "")
        if not reason:
            reason = next((ln for ln in reversed(lines) if ln), "")
        return f"V8 process ended (exit code {code})" + (f": {reason}" if reason else "")

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def close(self) -> None:
        """Ask the child to close its isolate and exit; kill it if it does not within 2 s."""
        if self._proc.poll() is None:
            try:
                stdin = self._proc.stdin
                assert stdin is not None
                stdin.write(proto.HEAD.pack(0, proto.OP_QUIT))
                stdin.flush()
                stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.kill()
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None and not f.closed:
                f.close()
        self._stderr.close()
