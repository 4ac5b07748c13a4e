"""The figures of one run, typed and pushed: the engine owns a `RunStats`; the capture's counters are
copied in at every tick, scripts' wrappers report matches and repositories through `WrapperEvents`,
the outbox reports its uploads through a callback. Readers on other threads (progress bar, summary,
`/metrics`) take `snapshot()`, a plain dict of the shape docs/architecture.md describes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputStats:
    bytes_read: int = 0  # of the capture files, for the progress bar
    bytes_total: int = 0  # 0 when unknown (live, stdin)
    errors: list[str] = field(default_factory=list)  # an input that could not be read at all (exit 2)
    warnings: list[str] = field(default_factory=list)  # file, offset, what was wrong (rest processed)


@dataclass
class StoreStats:
    bytes: int = 0
    budget: int = 0
    evicted_streams: int = 0
    evicted_packets: int = 0
    truncated_streams: int = 0


@dataclass
class QueryStats:
    """One (script, query) of a kflPcapS3 wrapper: items matched."""

    script: str
    index: int
    query: str
    matches: int = 0


@dataclass
class ScriptWrapperEvents:
    """What one script's kflPcapS3 wrappers report (the `events` of `wrappers.context.ScriptContext`).
    Called on the pipeline thread."""

    stats: RunStats
    title: str
    queries: list[QueryStats] = field(default_factory=list)

    def configured(self, queries: list[str]) -> None:
        self.queries = [self.stats.query(self.title, i, q) for i, q in enumerate(queries)]

    def matched(self, index: int) -> None:
        self.queries[index].matches += 1

    def written(self, record: dict[str, Any]) -> None:
        with self.stats.lock:
            self.stats.repositories.append({**record, "script": self.title})

    def lost(self) -> int:
        return self.stats.kernel_drops()


@dataclass
class RunStats:
    source: str = ""  # what is read: file names, "-" or "iface:eth0"
    live: bool = False
    elapsed_s: float = 0.0  # wall seconds since the run started
    input: InputStats = field(default_factory=InputStats)
    packets: int = 0
    bytes: int = 0  # captured bytes read
    drops: dict[str, int] = field(default_factory=dict)  # reason -> packets not streamed ("kernel": lost)
    ring_freezes: int = 0  # times a live interface's kernel ring was full
    streams_total: int = 0
    streams_open: int = 0
    store: StoreStats = field(default_factory=StoreStats)
    items: dict[str, int] = field(default_factory=dict)  # protocol name -> items dissected
    # title -> {"file", "status": "loaded"|"failed"|"unloaded", "error", "errors": {kind: n}}
    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)
    matches: list[QueryStats] = field(default_factory=list)
    # one per repository written: {"script", "index", "query", "location", "streams", "packets",
    # "bytes_raw", "bytes_gz"}
    repositories: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count
    # the outbox's figures: pending, spool_bytes, done, retries, failed [{"key", "error"}]
    uploads: dict[str, Any] = field(
        default_factory=lambda: {"pending": 0, "spool_bytes": 0, "done": 0, "retries": 0, "failed": []}
    )
    # the Kubernetes resolver's counters (stale, events, errors, relists), kept current by its thread
    k8s: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # packets the live capture lost so far, read now (the pipeline sets it to ask its source)
    kernel_drops: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)

    # ---- pushed ------------------------------------------------------------------------------------

    def query(self, script: str, index: int, text: str) -> QueryStats:
        """The counter of (script, index, query), made on first use (a reloaded script's wrapper
        counts on where the last one stopped)."""
        with self.lock:
            for q in self.matches:
                if (q.script, q.index, q.query) == (script, index, text):
                    return q
            q = QueryStats(script, index, text)
            self.matches.append(q)
            return q

    def wrapper_events(self, title: str) -> ScriptWrapperEvents:
        return ScriptWrapperEvents(self, title)

    def uploads_changed(self, uploads: dict[str, Any]) -> None:
        self.uploads = uploads

    def capture_counters(self, c: dict[str, int]) -> None:
        """Copy the capture's counters in (on the pipeline thread, at every tick and at the end)."""
        self.packets = max(self.packets, c.get("packets_read", 0))
        self.drops = {k[len("skipped_") :]: v for k, v in c.items() if k.startswith("skipped_") and v}
        if c.get("kernel_drops"):
            self.drops["kernel"] = c["kernel_drops"]
        self.ring_freezes = c.get("kernel_freezes", 0)
        self.streams_total = c.get("streams", 0)
        self.streams_open = c.get("streams_open", 0)
        self.store = StoreStats(
            bytes=c.get("bytes_held", 0),
            budget=c.get("budget_bytes", 0),
            evicted_streams=c.get("streams_evicted", 0),
            evicted_packets=c.get("packets_evicted", 0),
            truncated_streams=c.get("streams_truncated", 0),
        )

    # ---- read ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A copy as plain data, safe to read on any thread."""
        with self.lock:
            repositories = [dict(r) for r in self.repositories]
            queries = list(self.matches)
        matches = [
            {"script": q.script, "index": q.index, "query": q.query, "matches": q.matches,
             "streams": sum(r.get("streams", 0) for r in repositories
                            if r["script"] == q.script and r.get("index") == q.index
                            and r.get("query", q.query) == q.query)}
            for q in queries
        ]
        inp = self.input
        store = self.store
        return {
            "source": self.source,
            "live": self.live,
            "elapsed_s": self.elapsed_s,
            "input": {"bytes_read": inp.bytes_read, "bytes_total": inp.bytes_total,
                      "errors": list(inp.errors), "warnings": list(inp.warnings)},
            "packets": self.packets,
            "bytes": self.bytes,
            "drops": dict(self.drops),
            "ring_freezes": self.ring_freezes,
            "streams": {"total": self.streams_total, "open": self.streams_open},
            "store": {"bytes": store.bytes, "budget": store.budget, "evicted_streams": store.evicted_streams,
                      "evicted_packets": store.evicted_packets, "truncated_streams": store.truncated_streams},
            "items": dict(self.items),
            "scripts": {k: dict(v) for k, v in self.scripts.items()},
            "matches": matches,
            "repositories": repositories,
            "errors": dict(self.errors),
            "uploads": dict(self.uploads),
            "k8s": dict(self.k8s),
        }
