"""What every loaded script shares: console, data folder, clock, scheduler, KFL cache, limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.helpers.console import Console
from runtime.helpers.files import DataDir
from runtime.helpers.jobs import Scheduler

MIB = 1024 * 1024


def _script_metrics() -> Any:
    from runtime.helpers.vendor import ScriptMetrics

    return ScriptMetrics()


def _run_id() -> str:
    from runtime.helpers.vendor import RUN_ID

    return RUN_ID


@dataclass
class Limits:
    """Per-script limits: time budget of one call into V8, the V8 heap and the script's whole process."""

    call_timeout_s: float = 5.0
    heap_bytes: int = 256 * MIB
    # the script's child process as a whole — V8 heap, ArrayBuffer backing stores (outside the heap),
    # the child's own Python: its resident memory is watched and its data segment capped (see
    # runtime/v8/process.py); None = twice the heap limit plus 256 MiB
    memory_bytes: int | None = None
    # a batch call hands control back to Python after this long (and is resumed at once), so the
    # time budget applies to one hook run, not to a whole batch
    slice_ms: int = 500

    @property
    def process_bytes(self) -> int:
        """The memory limit of the script's process."""
        return self.memory_bytes if self.memory_bytes is not None else 2 * self.heap_bytes + 256 * MIB


class Clock:
    """The runtime clock in ns: capture time (the newest packet) or wall time."""

    def __init__(self, mode: str = "wall") -> None:
        if mode not in ("wall", "capture"):
            raise ValueError(f"clock must be 'wall' or 'capture', not {mode!r}")
        self.mode = mode
        self._now = 0

    def now_ns(self) -> int:
        if self.mode == "wall":
            return time.time_ns()
        return self._now or time.time_ns()

    def advance(self, ts_ns: int) -> None:
        """Capture time moves forward with packets (never back)."""
        if ts_ns > self._now:
            self._now = ts_ns


class KflCache:
    """Compiled KFL queries by text; an invalid query is remembered with its error text."""

    def __init__(self) -> None:
        self._compiled: dict[str, Any] = {}
        self._errors: dict[str, str] = {}

    def compile(self, query: str) -> tuple[Any, str | None]:
        if query in self._compiled:
            return self._compiled[query], None
        if query in self._errors:
            return None, self._errors[query]
        import kfl

        try:
            compiled = kfl.compile(query)
        except kfl.KFLSyntaxError as exc:
            self._errors[query] = str(exc)
            return None, self._errors[query]
        except Exception as exc:  # a query the compiler cannot handle is an invalid query
            self._errors[query] = f"{type(exc).__name__}: {exc}"
            return None, self._errors[query]
        self._compiled[query] = compiled
        return compiled, None

    def match(self, query: str, item: dict[str, Any]) -> bool:
        compiled, _ = self.compile(query)
        return bool(compiled is not None and compiled.match(item))


@dataclass
class Services:
    console: Console
    data: DataDir
    clock: Clock
    env: dict[str, Any] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=lambda: {"name": "localhost", "ip": "127.0.0.1"})
    limits: Limits = field(default_factory=Limits)
    scheduler: Scheduler = field(default_factory=Scheduler)
    kfl: KflCache = field(default_factory=KflCache)
    store: Any = None
    # the name table as of now (for wrappers) and its history by second (pcap.nameResolutionHistory)
    names: Callable[[], dict] = dict
    name_history: Callable[[], dict] = dict
    run_id: str = field(default_factory=lambda: _run_id())
    outbox_factory: Callable[[], Any] | None = None
    # jobs asked for by jobs.run/runAll, run by the pipeline after the current call
    job_requests: list[str] = field(default_factory=list)
    # hub.action(action, object JSON) calls, delivered to every script's onHubAction by the pipeline
    hub_actions: list[tuple[str, str]] = field(default_factory=list)
    # jobs run inside a batch (their tick's): True per run that failed, counted by the pipeline
    job_runs: list[bool] = field(default_factory=list)
    # where a script's wrappers report their figures (`wrappers.context.WrapperEvents`), by title
    wrapper_events: Callable[[str], Any] | None = None
    # the scripts' prometheus.metric/vector series (`runtime.helpers.vendor.ScriptMetrics`)
    prometheus: Any = field(default_factory=_script_metrics)
    # `scripts check`: helpers that would reach outside the process are recorded here, not run
    dry_run: list[str] | None = None
    # while a hook's commands run: the capture clock when its item was made; the store helpers
    # (pcap.snapshot, pcap.path files) leave out packets captured later. None: no cut.
    cut_ns: int | None = None
    # ... and the packets the capture had read then: the wrappers and helpers see the store as of it
    cut_seq: int | None = None
    _outbox: Any = None

    @property
    def outbox(self) -> Any:
        """The process-wide spool + uploader (`wrappers.Outbox` in the data folder), made on first use."""
        if self._outbox is None:
            if self.outbox_factory is not None:
                self._outbox = self.outbox_factory()
            else:
                from wrappers import Outbox

                self._outbox = Outbox(self.data.root)
        return self._outbox

    def close_outbox(self, timeout_s: float) -> int:
        """Let queued fire-and-forget posts (vendor.slack, notifications) go out, then close the
        outbox; returns the artifacts still spooled."""
        from wrappers.http_client import drain_background

        drain_background(min(timeout_s, 10.0))
        if self._outbox is None:
            return 0
        left = int(self._outbox.close(timeout_s) or 0)
        self._outbox = None
        return left
