"""`wrapper.kflPcapS3(data, options)`: KFL-matched L4 streams → gzipped PCAP repositories → store.

Each query `kflArr[i]` owns a repository. An item matching query i adds its stream (once, pinned in
the stream store) with the item's id. The repository is written when it holds `maxL4Streams`
streams, reaches `maxBytes` of packets, is `maxMinutes` old on the runtime clock (`tick`), or on
`close` (shutdown, unload, reload). Writing takes every packet of its streams captured since the
previous repository (a per-stream packet cursor), in parts of at most `maxL4Streams` streams; the
writer thread (wrappers.repo_writer) merges them by timestamp into one PCAP, gzips it, adds the
manifest (docs/wrapper.md) chained by SHA-256 to the previous manifest of the same node, script and
query (their folder `<prefix>/<node>/<script slug>/kfl_<i>`), and commits both to the outbox in one
atomic bundle. Streams still open continue into the next repository; closed ones are unpinned once
their packets are in a job.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import kfl
from capture.k8s.objects import brief
from wrappers.chain import ChainState
from wrappers.context import ScriptContext
from wrappers.http_client import post_json_in_background
from wrappers.options import Options, parse_options
from wrappers.repo_writer import Destination, Job, JobStream, RepoWriter
from wrappers.stores import describe, store_ident, store_location

NS_PER_MIN = 60_000_000_000
BYTES_CHECK_NS = 5_000_000_000  # how often (runtime clock) maxBytes is recomputed exactly
RETRY_S = 10.0  # wall time between tries of a repository the spool refused (full disk)
# a closed stream stays attached this long after its last packet (a last ACK after FIN/FIN still
# belongs to it), then it is released at the next flush
LINGER_NS = 2_000_000_000
SLACK_API = "https://slack.com/api/chat.postMessage"


@dataclass
class _Stream:
    sid: str
    start: int = 0  # packets of this stream already written by earlier repositories
    start_bytes: int = 0
    items: list[str] = field(default_factory=list)
    protocols: dict[str, None] = field(default_factory=dict)
    added: bool = False  # matched in this repository's window (not only carried over)
    ends: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # client, server identity at capture time


@dataclass
class _Repo:
    start_ns: int
    streams: dict[str, _Stream] = field(default_factory=dict)
    added: int = 0
    bytes_est: int = 0
    bytes_checked_ns: int = 0
    # bytes of the streams that closed (they grow no more) and the streams still open, so the maxBytes
    # check looks up only the open ones (a DNS query keeps thousands of closed UDP flows)
    closed_bytes: int = 0
    open: set[str] = field(default_factory=set)
    lost_at: int = 0  # the capture's lost packets (kernel drops) when the last repository was written


# stream store -> (chain id, query) -> released cursors; outlives a wrapper (unload/reload)
_HANDOVER: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], dict[str, tuple[int, int]]]] = (
    weakref.WeakKeyDictionary()
)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "node"


def script_slug(title: str) -> str:
    """The folder of a script's repositories: its title in lower case, words joined by `-`, at most
    40 characters ("KFL PCAP S3" -> "kfl-pcap-s3"). Titles are unique among loaded scripts."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "script"


class KflPcapS3:
    """The Python side of `wrapper.kflPcapS3`, one per loaded script (docs/architecture.md)."""

    def __init__(self, ctx: ScriptContext) -> None:
        self.ctx = ctx
        self.opts: Options | None = None
        self.configured = False
        self._first_options: Any = None
        self.active = False
        self.closed = False
        self.queries: list[Any] = []
        self.repos: list[_Repo] = []
        self.chains = ChainState.for_data_dir(ctx.data_dir)
        self.chains.recover(ctx.outbox.recovered)
        self.counters: dict[str, int] = {"items": 0, "repositories": 0, "packets": 0, "bytes": 0}
        self.matches: list[int] = []
        self.written: list[dict[str, Any]] = []  # one entry per repository written (for reports)
        # per query: cursors of streams already written and released, while the store still has them,
        # so a late item of such a stream (or the same query after a reload) continues it instead of
        # writing its packets again; shared through _HANDOVER by wrappers with the same destination
        self.released: list[dict[str, tuple[int, int]]] = []
        self._warned: set[str] = set()
        self.retry_s = RETRY_S
        self.writer: RepoWriter | None = None

    # ---- configuration (first call, as in Kubeshark) -------------------------------------------------

    def _configure(self, options: Any) -> None:
        self.configured = True
        opts, problems = parse_options(options, self.ctx.env, self.ctx.data_dir)
        for problem in problems:
            self.ctx.error(f"kflPcapS3: {problem}")
        if opts is None:
            return
        self.opts = opts
        if not opts.active:
            self.ctx.console("kflPcapS3: Inactive")
            return
        for i, query in enumerate(opts.kfl_arr):
            try:
                self.queries.append(kfl.compile(query))
            except kfl.KFLSyntaxError as exc:
                self.ctx.error(f"kflPcapS3: kflArr[{i}] is not valid KFL (this query is skipped):\n{exc}")
                self.queries.append(None)
        now = self.ctx.clock()
        self.repos = [_Repo(now) for _ in opts.kfl_arr]
        self.matches = [0] * len(opts.kfl_arr)
        self.ctx.events.configured(list(opts.kfl_arr))
        dest = self._destination(opts)
        handover = _HANDOVER.setdefault(self.ctx.store, {})
        self.released = [handover.setdefault((dest.chain_id_of(i), query), {})
                         for i, query in enumerate(opts.kfl_arr)]
        self.writer = RepoWriter(self.ctx.outbox, self.chains, dest, self.retry_s)
        self.writer.on_uploaded = self._uploaded
        self.writer.on_spooled = self.ctx.console
        self.active = True
        where = describe(opts.store)
        if opts.local:
            self.ctx.console(
                f"kflPcapS3: no S3 bucket configured (s3Bucket / S3_BUCKET): repositories go to the "
                f"local store {where}"
            )
        elif opts.verbose:
            self.ctx.console(f"kflPcapS3: repositories go to {where}")

    # ---- per item ------------------------------------------------------------------------------------

    def handle(self, item: Any, options: Any = None) -> None:
        """One `wrapper.kflPcapS3(data, options)` call."""
        if self.closed:
            return
        if not self.configured:
            self._first_options = options
            self._configure(options)
        elif options is not None and options is not self._first_options and options != self._first_options:
            self._error_once("options", "kflPcapS3: these options differ from the first call's and are "
                             "ignored: the first call configures the wrapper (reload the script to change "
                             f"them); first {_brief(self._first_options)}, now {_brief(options)}")
        if not self.active:
            return
        if self.writer is not None and self.writer.messages:
            self._drain()
        if not isinstance(item, dict) or not isinstance(item.get("stream"), str):
            self._error_once("data", "kflPcapS3: expected an item with a stream id as data")
            return
        self.counters["items"] += 1
        for i, query in enumerate(self.queries):
            if query is None:
                continue
            try:
                hit = query.match(item)
            except Exception as exc:
                self._error_once(f"match{i}", f"kflPcapS3: kflArr[{i}]: {type(exc).__name__}: {exc}")
                continue
            if hit:
                self._add(i, item)

    def _add(self, i: int, item: dict[str, Any]) -> None:
        assert self.opts is not None
        repo = self.repos[i]
        sid = item["stream"]
        self.matches[i] += 1
        self.ctx.events.matched(i)
        entry = repo.streams.get(sid)
        if entry is None:
            if not self.ctx.store.pin(sid):
                self._error_once(f"gone:{sid}", f"kflPcapS3: stream {sid} is no longer in the stream store")
                return
            info = self.ctx.store.info(sid)
            start, start_bytes = self.released[i].pop(sid, (0, 0))
            entry = repo.streams[sid] = _Stream(sid, start, start_bytes)
            repo.bytes_est += info.bytes - start_bytes if info else 0
            repo.open.add(sid)
        if not entry.added:
            entry.added = True
            repo.added += 1
        if isinstance(item.get("id"), str):
            entry.items.append(item["id"])
        if not entry.ends[0]:
            entry.ends = _ends(item)
        proto = item.get("protocol")
        if isinstance(proto, dict) and proto.get("name"):
            entry.protocols[str(proto["name"])] = None
        if self.opts.verbose:
            self.ctx.console(
                f"KFL/PCAP MATCH: KFL={self.opts.kfl_arr[i]}; PCAP={sid}; Idx={i}; files={len(repo.streams)}"
            )
        limit = self.opts.max_l4_streams
        if repo.added >= limit or (len(repo.streams) >= limit and self._active(repo) >= limit):
            self._flush(i, "maxL4Streams")
        elif repo.bytes_est >= self.opts.max_bytes:
            self._flush(i, "maxBytes")

    # ---- clock and shutdown --------------------------------------------------------------------------

    def tick(self, now_ns: int) -> None:
        """Rotation on the runtime clock: maxMinutes, maxBytes (rechecked every 5 s)."""
        if not self.active or self.closed:
            return
        assert self.opts is not None
        self._drain()
        max_age = int(self.opts.max_minutes * NS_PER_MIN)
        for i, repo in enumerate(self.repos):
            if now_ns - repo.start_ns >= max_age:
                if repo.streams:
                    self._flush(i, "maxMinutes", now_ns)
                else:
                    repo.start_ns = now_ns
            elif repo.streams and now_ns - repo.bytes_checked_ns >= BYTES_CHECK_NS:
                repo.bytes_checked_ns = now_ns
                repo.bytes_est = self._held_bytes(repo)
                if repo.bytes_est >= self.opts.max_bytes:
                    self._flush(i, "maxBytes", now_ns)

    def close(self, reason: str = "shutdown") -> None:
        """Write every repository and release its streams (shutdown, unload, reload)."""
        if self.closed:
            return
        if self.active and self.writer is not None:
            for i in range(len(self.repos)):
                self._flush(i, reason, final=True)
            self.writer.close()
            self._drain()
        self.closed = True

    def _active(self, repo: _Repo) -> int:
        """Streams the repository would write now: matched in its window, or carried and grown."""
        n = 0
        for s in repo.streams.values():
            if s.added:
                n += 1
            else:
                info = self.ctx.store.info(s.sid)
                n += bool(info and info.packets > s.start)
        return n

    def _held_bytes(self, repo: _Repo) -> int:
        held_bytes = self.ctx.store.held_bytes
        streams = repo.streams
        total = 0
        for sid in list(repo.open):
            held = held_bytes(sid)
            if held is None:
                repo.open.discard(sid)
                continue
            grown = held[0] - streams[sid].start_bytes
            if held[1]:
                repo.open.discard(sid)
                repo.closed_bytes += grown
            else:
                total += grown
        return repo.closed_bytes + total

    # ---- writing ---------------------------------------------------------------------------------------

    def _flush(self, i: int, reason: str, now_ns: int | None = None, final: bool = False) -> None:
        """Hand repository i to the writer (in parts of at most maxL4Streams) and start the next one."""
        assert self.opts is not None and self.writer is not None
        now = self.ctx.clock() if now_ns is None else now_ns
        repo = self.repos[i]
        store = self.ctx.store
        lost = self.ctx.events.lost()
        parts = []
        for s in repo.streams.values():
            info = store.info(s.sid)
            parts.append((s, info, store.packets(s.sid, s.start) if info else []))
        written = [JobStream(s.sid, s.start, s.items, list(s.protocols), info, pkts, s.ends)
                   for s, info, pkts in parts if pkts]
        if written:
            names = self.ctx.names()
            snaplens = dict(store.snaplens)  # the writer thread reads a copy
            size = self.opts.max_l4_streams
            for k in range(0, len(written), size):
                job = Job(i, self.opts.kfl_arr[i], reason, repo.start_ns, now, written[k : k + size], names,
                          snaplens, lost - repo.lost_at)
                self.writer.submit(job, self._drain)
        nxt = _Repo(now, bytes_checked_ns=now, lost_at=lost if written else repo.lost_at)
        for s, info, pkts in parts:
            start = s.start + len(pkts)
            if final or info is None or info.evicted or (info.closed and now - info.last_ts_ns > LINGER_NS):
                store.unpin(s.sid)
                if info is not None:
                    self.released[i][s.sid] = (start, info.bytes)
            else:
                nxt.streams[s.sid] = _Stream(s.sid, start, info.bytes, protocols=s.protocols, ends=s.ends)
                nxt.open.add(s.sid)
        self.repos[i] = nxt
        released = self.released[i]
        for sid in [sid for sid in released if store.info(sid) is None]:
            del released[sid]

    def _drain(self) -> None:
        """Apply what the writer reported, on the pipeline thread."""
        if self.writer is None:
            return
        for kind, value in self.writer.drain():
            if kind == "written":
                self.written.append(value)
                self.ctx.events.written(value)
                self.counters["repositories"] += 1
                self.counters["packets"] += value["packets"]
                self.counters["bytes"] += value["bytes_gz"]
            elif kind == "error":
                self.ctx.error(value)
            else:
                self.ctx.console(value)

    def _destination(self, opts: Options) -> Destination:
        node = _safe(str(self.ctx.node.get("name") or "node"))
        slug = script_slug(self.ctx.title)
        ident = store_ident(opts.store)

        def folder_of(i: int) -> str:  # one folder and hash chain per (node, script, query)
            return "/".join(x for x in (opts.prefix, node, slug, f"kfl_{i}") if x)

        return Destination(
            store=opts.store,
            folder_of=folder_of,
            chain_id_of=lambda i: f"{ident}|{folder_of(i)}",
            fmt=opts.format,
            title=self.ctx.title,
            source_sha256=self.ctx.source_sha256,
            node=self.ctx.node,
            location_of=lambda key: store_location(opts.store, key),
        )

    # ---- after upload ---------------------------------------------------------------------------------

    def _uploaded(self, urls: list[str], summary: str) -> None:
        """On the upload thread, once the store confirmed the repository (the console is thread-safe;
        this runs after `close` too, while the outbox drains at shutdown)."""
        assert self.opts is not None
        msg = f"New PCAP: {urls[0]}; {summary}"
        self.ctx.console(f"kflPcapS3: Uploaded: {urls[0]}; {summary}")
        if self.opts.slack_webhook:
            body = {"color": "#ff0000", "pretext": "Notification", "text": msg}
            post_json_in_background(self.opts.slack_webhook, body)
        if self.opts.slack_auth_token and self.opts.slack_channel_id:
            body = {
                "channel": self.opts.slack_channel_id,
                "attachments": [{"pretext": "Notification (kflPcapS3)", "text": msg, "color": "#ff0000"}],
            }
            auth = {"Authorization": f"Bearer {self.opts.slack_auth_token}"}
            post_json_in_background(SLACK_API, body, auth)

    def _error_once(self, tag: str, text: str) -> None:
        if tag not in self._warned:
            self._warned.add(tag)
            self.ctx.error(text)


def _brief(options: Any) -> str:
    """Options for a message, secrets left out."""
    if not isinstance(options, dict):
        return repr(options)
    secret = ("awsSecretAccessKey", "slackAuthToken", "slackWebhook")
    return repr({k: "…" if k in secret else v for k, v in options.items()})


def _ends(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(client, server) identity of an item's stream, brief (names, namespace, pod labels, node,
    service), from its src/dst as resolved at capture time."""
    src, dst = item.get("src"), item.get("dst")
    return (brief(src) if isinstance(src, dict) else {}, brief(dst) if isinstance(dst, dict) else {})
