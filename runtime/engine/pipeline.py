"""The pipeline driver: traffic → capture → batches → every script's V8 → commands, jobs, timers.

`Pipeline(config)` owns the capture, the loaded scripts, the job scheduler and the clock.
`run()` reads the sources to the end (or until `stop()`), then flushes and shuts down cleanly.

Batches: file input fills batches (`batch_items`, chosen by measurement, see bench/bench_runtime.py);
live input also flushes a batch once its first event is `live_flush_ms` old. A batch is flushed
before any job or timer falls due, so scripts see every event before the job that follows it in
time. Items in flight pin their stream in the store until every script has seen them.

Hooks for the product layer (progress, summary, metrics): `stats` (a `runtime.engine.stats.RunStats`
the pipeline keeps current and the wrappers and the outbox push their figures into; readers take
`stats.snapshot()`), `counters`, and the callback lists `on_batch(batch, seconds)` and `on_tick(now_ns)`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.engine.gc_policy import LoopGC
from runtime.engine.scripts import Scripts
from runtime.engine.shares import SharedItems
from runtime.engine.stats import RunStats
from runtime.helpers.console import Console
from runtime.helpers.files import DataDir
from runtime.helpers.jobs import Job
from runtime.helpers.services import Clock, Limits, Services
from runtime.v8 import protocol as proto
from runtime.v8.batch import Batch
from runtime.v8.host import ScriptHost

NS = 1_000_000_000
WRAPPER_TICK_NS = NS
# how often a tick brings `stats` up to date (wall seconds): progress, summary and /metrics read them
STATS_EVERY_S = 0.05


@dataclass
class PipelineConfig:
    sources: list[str]
    scripts: list[str]
    data_dir: Path
    env: dict[str, Any] = field(default_factory=dict)
    clock: str | None = None  # "wall" | "capture"; default: capture for files, wall for live input
    node: str | None = None
    names_file: str | None = None
    k8s: tuple[str | None, str | None, float] | None = None  # (kubeconfig, context, first-list wait s)
    bpf: str | None = None
    ring_mib: int | None = None  # the kernel ring of each live interface (None: capture.live's default)
    limits: Limits = field(default_factory=Limits)
    batch_items: int = 1000
    live_flush_ms: float = 50.0
    watch: bool = True
    # processes that dissect (capture files only, without Kubernetes names; see `capture.shares`)
    workers: int = 1


class Pipeline:
    def __init__(self, config: PipelineConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console()
        self.stats = RunStats()
        self.counters: dict[str, int] = {
            "packets": 0,
            "items": 0,
            "batches": 0,
            "jobs_run": 0,
            "jobs_failed": 0,
        }
        self.on_batch: list[Callable[[Batch, float], None]] = []
        self.on_tick: list[Callable[[int], None]] = []
        self._stats_synced = 0.0  # time.monotonic() of the last sync_stats at a tick
        self.source: Any = None
        self.capture: Any = None
        self.names: Any = None
        self.resolver: Any = None  # capture.k8s.Resolver with PipelineConfig.k8s
        self._batch = Batch()
        self._inflight: tuple[Batch, list[Any], float] | None = None
        self._batch_started = 0.0
        self._deadline = 0
        self._next_wrapper_tick = 0
        self._name_version: Any = None
        self._name_history: dict[str, Any] = {}
        self._stopping = False
        self._closed = False
        self._lock = threading.Lock()
        self._packets_wanted = False
        self._live = False
        self._piped = False  # stdin among the sources
        self._mine: list[dict[str, Any]] = []  # with workers: this share's items of the packet read
        self._shares: SharedItems | None = None
        self._gc = LoopGC()
        clock_mode = config.clock or "capture"
        self.services = Services(
            console=self.console,
            data=DataDir(Path(config.data_dir)),
            clock=Clock(clock_mode),
            env=dict(config.env),
            limits=config.limits,
            wrapper_events=self.stats.wrapper_events,
        )
        self.scripts = Scripts(self.services, config.scripts, watch=config.watch)
        self.scripts.on_change.append(self._scripts_changed)

    # ---- setup -------------------------------------------------------------------------------

    def _node(self) -> dict[str, str]:
        from capture.dissect.base import NodeInfo

        info = NodeInfo.local(self.config.node or None)
        return {"name": info.name, "ip": info.ip}

    def _open(self) -> None:
        import capture
        from capture.dissect.base import NodeInfo

        s = self.services
        s.node = self._node()
        self.names = (
            capture.NameTable.load(self.config.names_file) if self.config.names_file else capture.NameTable()
        )
        # for repository manifests: the names as of the item or tick whose commands run
        s.names = lambda: self.names.snapshot(brief=True, upto=s.cut_seq)
        s.name_history = self._names_history
        shares = self._fork_shares()  # before any thread starts
        self.source = capture.open_sources(self.config.sources, bpf=self.config.bpf,
                                           ring_mib=self.config.ring_mib)
        self._live = bool(getattr(self.source, "live", False))
        self._piped = "-" in self.config.sources
        source = self.source
        self.stats.kernel_drops = lambda: source.counters().get("kernel_drops", 0)
        if self.config.k8s is not None:
            self._start_resolver(*self.config.k8s)
        if self.config.clock is None:
            s.clock = Clock("wall" if self._live else "capture")
        self.source.heartbeat = self._heartbeat
        factory = capture.make_handler_factory(
            self._on_item if shares is None else self._mine.append,
            node=NodeInfo(s.node["name"], s.node["ip"]), names=self.names,
            shard=None if shares is None else (0, self.config.workers),
        )
        self.capture = capture.Capture(handler_factory=factory)
        if shares is not None:
            self._shares = SharedItems(shares, self._on_item, self.capture)
        s.store = store = self.capture.store
        self.names.seq = lambda: store.seq
        s.outbox_factory = self._outbox
        self.stats.source = " ".join(self.config.sources)
        self.stats.live = self._live

    def _fork_shares(self) -> list[Any] | None:
        """With `workers` > 1 on capture files: the workers that dissect the other shares of the
        streams (this process dissects share 0 and keeps the stream store of every stream)."""
        cfg = self.config
        if cfg.workers <= 1 or cfg.k8s is not None or any(
                spec == "-" or spec.startswith("iface:") for spec in cfg.sources):
            return None
        from capture.model import CaptureConfig
        from capture.shares import fork_shares

        return fork_shares(cfg.sources, range(1, cfg.workers), cfg.workers, node=self.services.node["name"],
                           names=self.names, config=CaptureConfig(stream_cap_bytes=0), resets=True)

    def _start_resolver(self, kubeconfig: str | None, context: str | None, wait_s: float) -> None:
        """Kubernetes identities for src/dst; files wait (bounded) for the first lists, live capture
        never does (its names catch up)."""
        from capture.k8s import Resolver, load_config

        def log(text: str) -> None:
            self.console.log("kflpcap", f"kubernetes: {text}")

        self.resolver = Resolver(load_config(kubeconfig, context), log=log).start()
        self.names.attach(self.resolver.history)
        self.stats.k8s = self.resolver.counters
        if not self._live and not self.resolver.wait_synced(wait_s):
            log(f"no answer within {wait_s:g} s: going on, names catch up")

    def _outbox(self) -> Any:
        from wrappers import Outbox

        return Outbox(self.services.data.root, log=lambda text: self.console.log("kflpcap", text),
                      on_change=self.stats.uploads_changed)

    def _names_history(self) -> dict[str, Any]:
        if self.names is not None and self.names.version != self._name_version:
            self._name_version = self.names.version
            self._name_history[str(self.services.clock.now_ns() // NS)] = self.names.snapshot()
        return self._name_history

    # ---- events from capture -----------------------------------------------------------------

    def _on_item(self, item: dict[str, Any]) -> None:
        batch = self._batch
        if not batch.events:
            self._batch_started = time.monotonic()
        cut = self.capture.now_ns if self.capture is not None else None
        store = self.services.store
        if not batch.items and self._inflight is None:
            store.hold_ns = cut
        batch.add_item(item, cut, store.seq)
        store.pin(item["stream"])
        self.counters["items"] += 1
        proto = item.get("protocol", {}).get("name", "?")
        items = self.stats.items
        items[proto] = items.get(proto, 0) + 1

    def _on_packet(self, stream_id: str, ts_ns: int, caplen: int, orig_len: int, fragmented: bool) -> None:
        batch = self._batch
        if not batch.events:
            self._batch_started = time.monotonic()
        batch.add_packet(ts_ns, caplen, orig_len, caplen < orig_len, fragmented, stream_id,
                         self.services.store.seq)

    def _scripts_changed(self) -> None:
        wanted = any(h.wants_packets for h in self.scripts.loaded())
        if wanted != self._packets_wanted and self.capture is not None:
            self._packets_wanted = wanted
            self.capture.packet_listener = self._on_packet if wanted else None
        self._deadline = self._next_deadline()

    # ---- batches, jobs, timers ---------------------------------------------------------------

    def flush(self, wait: bool = True) -> None:
        """Deliver the pending batch to every script and run the commands they return.

        With `wait=False` (file input, batch full) the scripts work on the batch while capture goes
        on; its commands run at the next flush, before the next batch is sent (each script still
        sees its batches and runs their commands in order). Jobs, timers and the end of input
        always wait.
        """
        batch = self._batch
        if batch.events or batch.ticks:  # ticks alone: the scripts' timers due at them run there
            self._batch = Batch()
            batch.time_ns = self.services.clock.now_ns()
            for host in self.scripts.loaded():
                host.prepare_batch(batch)  # the batch's JSON, made while the scripts still work
        self._complete()
        if batch.events or batch.ticks:
            started = time.perf_counter()
            sent = [h for h in self.scripts.loaded() if h.send_batch(batch)]
            self._inflight = (batch, sent, started)
            if wait:
                self._complete()
        self._hold()

    def _complete(self) -> None:
        """Collect the batch in flight: run its commands, release its items' streams."""
        if self._inflight is None:
            return
        batch, sent, started = self._inflight
        self._inflight = None
        for host in sent:
            host.finish_batch()
        self._run_ticks(batch, sent)
        store = self.services.store
        for item in batch.items:
            store.unpin(item["stream"])
        self.counters["batches"] += 1
        runs = self.services.job_runs
        if runs:
            self.counters["jobs_run"] += len(runs)
            self.counters["jobs_failed"] += sum(runs)
            runs.clear()
        self._deliver_hub_actions()
        self._run_requested_jobs()
        if any(h.wants_packets for h in self.scripts.loaded()) != self._packets_wanted:
            self._scripts_changed()
        seconds = time.perf_counter() - started
        for fn in self.on_batch:
            fn(batch, seconds)

    def _run_ticks(self, batch: Batch, sent: list[Any]) -> None:
        """The batch's deferred wrapper ticks, for the scripts it was not sent to (those it was sent to
        ran them between its events' commands)."""
        if batch.ticks:
            for host in [h for h in self.scripts.hosts.values() if h not in sent]:
                for _, _, now, seq in batch.ticks:
                    host.tick(now, seq)

    def _hold(self) -> None:
        """Keep the stream store as of the oldest item the scripts have not finished with (its
        `pcap.snapshot()` must not depend on how items were batched); release what that held back."""
        cuts = [c for b in ((self._inflight[0],) if self._inflight else ()) + (self._batch,)
                for c in b.cuts[:1] if c is not None]
        store = self.services.store
        before = store.hold_ns
        store.hold_ns = min(cuts) if cuts else None
        if store.hold_ns != before:
            store.advance(store.now_ns)

    def _next_deadline(self) -> int:
        candidates = [self._next_wrapper_tick or 1]
        due = self.services.scheduler.next_due_ns()
        if due is not None:
            candidates.append(due)
        for host in self._timed_here():
            if host.next_timer_ms is not None:
                candidates.append(int(host.next_timer_ms) * 1_000_000)
        return min(candidates)

    def run_job(self, tag: str) -> None:
        """Run one job now, then onJobPassed/onJobFailed in every script."""
        s = self.services
        job = s.scheduler.get(tag)
        if job is None:
            return
        host = self.scripts.owner_of(job)
        if host is None:
            return
        ran, error = host.run_job(tag)
        if not ran:
            return
        s.scheduler.ran(job)
        self.counters["jobs_run"] += 1
        if error is not None:
            self.counters["jobs_failed"] += 1
            self.console.error(host.title, f"(job={tag}) {error}", "job")
        for other in self.scripts.loaded():
            if error is None:
                other.call_hook("onJobPassed", [job.tag, job.cron, job.limit])
            else:
                other.call_hook("onJobFailed", [job.tag, job.cron, job.limit, error])

    def _deliver_hub_actions(self) -> None:
        """hub.action calls, to every loaded script's onHubAction, in the order they were made. Those
        made while these run wait for the next flush or tick."""
        actions = self.services.hub_actions
        if not actions:
            return
        pending, actions[:] = list(actions), []
        for action, obj in pending:
            value = json.loads(obj)
            for host in self.scripts.loaded():
                host.call_hook("onHubAction", [action, value])
        if actions:
            self._deadline = 0

    def _run_requested_jobs(self) -> None:
        """Jobs asked for by jobs.run/runAll. Those asked for while these run wait for the next
        flush or tick (a job that triggers itself runs once per tick, not forever)."""
        requests = self.services.job_requests
        if requests:
            pending, requests[:] = list(requests), []
            for tag in pending:
                self.run_job(tag)
            if requests:
                self._deadline = 0

    def tick(self, now_ns: int | None = None, wait: bool = True) -> None:
        """Flush, then run what fell due at `now_ns` (runtime clock): jobs, timers, wrapper rotation.

        With `wait=False` (file input, each capture second), events on their way to the scripts and
        nothing due that must wait for them, no batch is sent: the tick goes into the batch being
        filled, to run after the commands of the items before it (`Batch.add_tick`), seeing the
        store as it was at the tick. Repositories are the same as with `wait=True`, whatever the
        batch size; a sparse capture no longer crosses to V8 every capture second. With nothing on
        its way, what is due runs now (nothing to wait for)."""
        s = self.services
        now = s.clock.now_ns() if now_ns is None else now_ns
        wrappers_due = now >= self._next_wrapper_tick
        if wrappers_due:
            self._next_wrapper_tick = now - now % WRAPPER_TICK_NS + WRAPPER_TICK_NS
        on_the_way = self._batch.events or self._batch.ticks or self._inflight is not None
        if not wait and on_the_way and not self._scripts_due(now):
            jobs = s.scheduler.due(now)  # any due here run in their scripts' batches (`_jobs_in_stream`)
            if wrappers_due or jobs:
                self._defer_tick(now, jobs)
            store = s.store
            if self._batch.items and (self._piped or store.held > store.budget - (store.budget >> 3)):
                # stdin may be a capture still being written (`tcpdump -w - | kflpcap run --pcap -`):
                # its items reach the scripts within a capture second, as before; and when the store
                # is nearly full, items waiting in a batch pin streams the store cannot evict
                self.flush(wait=False)
            self._housekeeping(now)
            return
        self.flush()
        self._run_requested_jobs()
        for job in s.scheduler.due(now):
            self.run_job(job.tag)
        now_ms = now // 1_000_000
        for host in self.scripts.loaded():
            host.run_timers(now_ms)
        self._deliver_hub_actions()
        if wrappers_due:
            self._tick_wrappers(now)
        self._housekeeping(now)

    def _scripts_due(self, now: int) -> bool:
        """A job, timer or hub action is due, or a script's file changed (reloaded between batches):
        the scripts must have seen every earlier item first."""
        s = self.services
        if s.job_requests or s.hub_actions or self.scripts.pending():
            return True
        due = s.scheduler.next_due_ns()
        if due is not None and due <= now and not self._jobs_in_stream():
            return True
        now_ms = now // 1_000_000
        return any(h.next_timer_ms is not None and h.next_timer_ms <= now_ms for h in self._timed_here())

    def _timed_here(self) -> list[ScriptHost]:
        """The scripts whose timers this process runs when due. On the capture clock a script that
        takes batches runs its own, at the events and ticks of its batches (`Batch.clock_ms`): the
        same items and ticks come before each timer whatever the batch size, and no batch waits."""
        if self.services.clock.mode != "capture":
            return self.scripts.loaded()
        return [h for h in self.scripts.loaded() if not h.wants_items]

    def _jobs_in_stream(self) -> bool:
        """On the capture clock a job runs in its script's batch, at the tick it falls due, unless a
        script hooks onJobPassed/onJobFailed (they must wait for its end) or its script takes no
        batches."""
        if self.services.clock.mode != "capture":
            return False
        hosts = self.scripts.loaded()
        if any(proto.HOOK_LETTER["onJobPassed"] in h.hooks or proto.HOOK_LETTER["onJobFailed"] in h.hooks
               for h in hosts):
            return False
        owners = {id(h.identity) for h in hosts if h.wants_items}
        return all(id(job.owner) in owners for job in self.services.scheduler.jobs.values())

    def _defer_tick(self, now: int, jobs: list[Job]) -> None:
        """A tick while events are on their way, with nothing due that must wait: into the batch
        being filled (its scripts run the `jobs` and the timers due at it, then the wrappers tick,
        between the commands of the events around it)."""
        s = self.services
        owned = [(self.scripts.owner_of(job), [job.tag, job.cron, job.limit]) for job in jobs]
        self._batch.add_tick(now, s.store.seq, owned)
        for job in jobs:
            s.scheduler.ran(job)

    def _tick_wrappers(self, now: int) -> None:
        """The wrappers' clock tick (every item before it has been through the scripts)."""
        for host in list(self.scripts.hosts.values()):
            host.tick(now)

    def _housekeeping(self, now: int) -> None:
        if self.scripts.pending():
            self.scripts.poll()
        wall = time.monotonic()
        if wall - self._stats_synced >= STATS_EVERY_S:  # not every capture second of a sparse capture
            self._stats_synced = wall
            self.sync_stats()
        for fn in self.on_tick:
            fn(now)
        self._gc.due()
        self._deadline = self._next_deadline()

    def sync_stats(self) -> None:
        """Bring `stats` up to date with the scripts and the capture."""
        stats = self.stats
        kinds: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = dict(stats.errors)
        mine: dict[str, int] = {}
        for (title, kind), n in self.console.error_kinds.items():
            kinds.setdefault(title, {})[kind] = n
            key = "script" if kind in ("console", "load", "limit") else kind
            mine[key] = mine.get(key, 0) + n
        totals.update(mine)
        stats.errors = totals
        for title, info in self.scripts.statuses().items():
            stats.scripts[title] = {**info, "errors": kinds.get(title, {})}
        stats.packets = max(stats.packets, self.counters["packets"])
        if self.capture is not None:
            stats.capture_counters({**self.capture.counters, **self.source.counters()})

    def _heartbeat(self) -> None:
        """Called by live sources while waiting for packets (outside the packet lock)."""
        with self._lock:
            if self.capture is not None and self._live:
                self.capture.tick(self.services.clock.now_ns())
            self.tick()

    # ---- run ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading soon (signal handlers call this); `run()` then shuts down cleanly."""
        self._stopping = True
        if self.source is not None:
            self.source.stop()
        if self._shares is not None:
            self._shares.stop()

    def start(self) -> None:
        """Open the sources and load the scripts (run() calls it). A spool an earlier run left
        bundles in starts uploading now, whatever the scripts do with this run's traffic."""
        if self.capture is None:
            self._open()
            from wrappers import SpoolError, has_spooled

            if has_spooled(self.services.data.root):
                try:
                    self.services.outbox  # noqa: B018 (made on first use: starts the uploader)
                except SpoolError as exc:  # another process holds the spool: it uploads them
                    self.console.error("kflpcap", str(exc), "upload")

    def run(self) -> int:
        """Read every source to its end (or `stop()`), then shut down. Returns 0."""
        self.start()
        clock = self.services.clock
        capture_clock = clock.mode == "capture"
        # live: the lists of packets the kernel's ring hands over at once
        packets = self.source.blocks() if self._live else iter(self.source)
        if capture_clock:
            # jobs scheduled at load count from the capture's first packet, not from today
            first = next(packets, None)
            if first is not None:
                clock.advance((first[0] if self._live else first)[0])
                packets = itertools.chain((first,), packets)
        self.scripts.start()
        self._scripts_changed()
        self.capture.use_snaplens(self.source)
        with self._gc:  # also over the final flush, which allocates as much as any second of the loop
            if self._live:
                self._run_live(packets, capture_clock)
            else:
                self.capture.consume(self._paced(packets, capture_clock))
            self.finish()
        return 0

    def _paced(self, packets: Iterable[Any], capture_clock: bool) -> Iterator[Any]:
        """The packets for `Capture.consume` (its fast path), with the loop's work between two:
        the clock and what falls due before a packet; a full batch, a poll, a stop after it."""
        clock = self.services.clock
        batch_items = self.config.batch_items
        n = 0
        try:
            shares = self._shares
            for pkt in packets:
                ts = pkt[0]
                if capture_clock:
                    clock.advance(ts)
                    if ts >= self._deadline:
                        self.tick(ts, wait=False)
                yield pkt
                n += 1
                if shares is not None and (self._mine or shares.next_packet <= n):
                    shares.deliver(n, self._mine)
                if len(self._batch.events) >= batch_items:
                    self.flush(wait=False)
                elif (not capture_clock and n % 256 == 0 and clock.now_ns() >= self._deadline) or (
                    n % 4096 == 0 and self.scripts.pending()
                ):
                    self.tick(wait=False)
                if self._stopping:
                    return
        finally:
            self.counters["packets"] += n

    def _run_live(self, blocks: Iterator[list[Any]], capture_clock: bool) -> None:
        """Live input: each block of packets the ring hands over goes through `Capture.consume`'s fast
        path under the lock, which a timer thread also takes to flush a batch once its first event
        is `live_flush_ms` old and to run what falls due while the source waits for packets. The
        lock is held while a block is processed, not while waiting for the next one."""
        lock = self._lock
        done = threading.Event()
        timer = threading.Thread(target=self._live_timer, args=(done,), name="kflpcap-flush", daemon=True)
        timer.start()
        try:
            for block in blocks:
                with lock:
                    self.capture.consume(self._paced(block, capture_clock))
                if self._stopping:
                    break
        finally:
            done.set()
            timer.join()

    def _live_timer(self, done: threading.Event) -> None:
        """Every few ms: what fell due (a job, timer or hub action waits for the scripts; the wrappers'
        tick goes into the batch); a batch whose first event is `live_flush_ms` old is sent without
        waiting; a batch in flight whose answer is there is collected (its commands run)."""
        flush_s = self.config.live_flush_ms / 1000.0
        period = min(0.01, flush_s / 4)
        clock = self.services.clock
        while not done.wait(period):
            with self._lock:
                now = clock.now_ns()
                if now >= self._deadline or self.scripts.pending():
                    self.capture.tick(now)
                    self.tick(now, wait=False)
                if self._batch.events and time.monotonic() - self._batch_started >= flush_s:
                    self.flush(wait=False)
                elif self._inflight is not None and all(h.answered() for h in self._inflight[1]):
                    self._complete()
                    self._hold()

    def finish(self) -> None:
        """End of input: close every stream, deliver the last items, run due jobs, unload, drain."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.capture is not None:
                self.capture.finish()
            if self._shares is not None:
                self._shares.finish(self._mine, self.counters["packets"],
                                    lambda text: self.console.error("kflpcap", text, "input"))
            self.tick()
        finally:
            self._input_problems()
            self.scripts.close("shutdown")
            left = self.services.close_outbox(30.0)
            if left:
                self.console.error(
                    "kflpcap", f"{left} artifacts still spooled; they upload at the next start", "upload"
                )
            self.sync_stats()

    def _input_problems(self) -> None:
        """Split the source's errors: inputs that could not be read at all (exit 2) and warnings."""
        source = self.source
        if source is None:
            return
        failed = tuple(f"{'<stdin>' if f == '-' else f}: " for f in source.failed)
        errors = [e for e in source.errors if e.startswith(failed)] if failed else []
        self.stats.input.errors = errors
        self.stats.input.warnings = [e for e in source.errors if e not in errors]

    def close(self) -> None:
        """Unload every script and stop watching (for callers that did not run to the end)."""
        if not self._closed:
            self._closed = True
            self.scripts.close("shutdown")
            self.services.close_outbox(30.0)
            if self.resolver is not None:
                self.resolver.stop()
