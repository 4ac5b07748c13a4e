"""`wrapper.kflPcapS3(data, options)`: KFL-matched L4 streams → gzipped PCAP repositories → store.

Each query `kflArr[i]` owns a repository. An item matching query i adds its stream (once, pinned in
the stream store) with the item's id. The repository is written when it holds `maxL4Streams`
streams, reaches `maxBytes` of packets, is `maxMinutes` old on the runtime clock (`tick`), or on
`close` (shutdown, unload, reload). Writing takes every packet of its streams captured since the
previous repository (a per-stream packet cursor), merged by timestamp into one PCAP, gzipped, plus a
manifest (SPEC §7) chained by SHA-256 to the previous manifest of the same node and query; both go to
the outbox in one atomic bundle. Streams still open continue into the next repository; closed ones
are unpinned. If the spool cannot take a repository (full disk), it stays in memory and is retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Any

import orjson

import kfl
from wrappers.artifacts import (
    GZIP_LEVEL,
    key_time,
    rfc1123,
    rfc3339,
    write_kubeshark_tar,
    write_pcap_gz,
)
from wrappers.chain import ChainState, Link
from wrappers.context import ScriptContext
from wrappers.options import Options, parse_options
from wrappers.outbox import SpoolError

NS_PER_MIN = 60_000_000_000
BYTES_CHECK_NS = 5_000_000_000  # how often (runtime clock) maxBytes is recomputed exactly
RETRY_S = 10.0
# a closed stream stays attached this long after its last packet (a last ACK after FIN/FIN still
# belongs to it), then it is released at the next flush
LINGER_NS = 2_000_000_000  # wall time before a repository the spool refused is tried again
SLACK_API = "https://slack.com/api/chat.postMessage"
RUN_ID = uuid.uuid4().hex  # stream ids are per run: (run, stream id) names a stream across manifests


@dataclass
class _Stream:
    sid: str
    start: int = 0  # packets of this stream already written by earlier repositories
    start_bytes: int = 0
    items: list[str] = field(default_factory=list)
    protocols: dict[str, None] = field(default_factory=dict)
    added: bool = False  # matched in this repository's window (not only carried over)


@dataclass
class _Repo:
    start_ns: int
    streams: dict[str, _Stream] = field(default_factory=dict)
    added: int = 0
    bytes_est: int = 0
    bytes_checked_ns: int = 0
    retry_at: float = 0.0


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "node"


class KflPcapS3:
    """The Python side of `wrapper.kflPcapS3`, one per loaded script (docs/architecture.md)."""

    def __init__(self, ctx: ScriptContext) -> None:
        self.ctx = ctx
        self.opts: Options | None = None
        self.configured = False
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
        # so a late item of such a stream continues it instead of writing its packets again
        self.released: list[dict[str, tuple[int, int]]] = []
        self._warned: set[str] = set()
        self.retry_s = RETRY_S

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
        self.released = [{} for _ in opts.kfl_arr]
        self.active = True
        where = opts.store.get("root") if opts.local else _describe_s3(opts.store)
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
            self._configure(options)
        if not self.active:
            return
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
        entry = repo.streams.get(sid)
        if entry is None:
            if not self.ctx.store.pin(sid):
                self._error_once(f"gone:{sid}", f"kflPcapS3: stream {sid} is no longer in the stream store")
                return
            info = self.ctx.store.info(sid)
            start, start_bytes = self.released[i].pop(sid, (0, 0))
            entry = repo.streams[sid] = _Stream(sid, start, start_bytes)
            repo.bytes_est += info.bytes - start_bytes if info else 0
        if not entry.added:
            entry.added = True
            repo.added += 1
        if isinstance(item.get("id"), str):
            entry.items.append(item["id"])
        proto = item.get("protocol")
        if isinstance(proto, dict) and proto.get("name"):
            entry.protocols[str(proto["name"])] = None
        if self.opts.verbose:
            self.ctx.console(
                f"KFL/PCAP MATCH: KFL={self.opts.kfl_arr[i]}; PCAP={sid}; Idx={i}; files={len(repo.streams)}"
            )
        if repo.retry_at and time.monotonic() < repo.retry_at:
            return
        limit = self.opts.max_l4_streams
        if repo.added >= limit or (len(repo.streams) >= limit and self._active(repo) >= limit):
            self._flush(i, "maxL4Streams")
        elif repo.bytes_est >= self.opts.max_bytes:
            self._flush(i, "maxBytes")

    # ---- clock and shutdown --------------------------------------------------------------------------

    def tick(self, now_ns: int) -> None:
        """Rotation on the runtime clock: maxMinutes, maxBytes (rechecked every 5 s), spool retries."""
        if not self.active or self.closed:
            return
        assert self.opts is not None
        max_age = int(self.opts.max_minutes * NS_PER_MIN)
        for i, repo in enumerate(self.repos):
            if repo.retry_at and time.monotonic() < repo.retry_at:
                continue
            if now_ns - repo.start_ns >= max_age:
                if repo.streams:
                    self._flush(i, "maxMinutes", now_ns)
                else:
                    repo.start_ns = now_ns
            elif repo.retry_at:
                self._flush(i, "retry", now_ns)
            elif repo.streams and now_ns - repo.bytes_checked_ns >= BYTES_CHECK_NS:
                repo.bytes_checked_ns = now_ns
                repo.bytes_est = self._held_bytes(repo)
                if repo.bytes_est >= self.opts.max_bytes:
                    self._flush(i, "maxBytes", now_ns)

    def close(self, reason: str = "shutdown") -> None:
        """Write every repository and release its streams (shutdown, unload, reload)."""
        if self.closed:
            return
        if self.active:
            for i in range(len(self.repos)):
                self._flush(i, reason, final=True)
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
        total = 0
        for s in repo.streams.values():
            info = self.ctx.store.info(s.sid)
            if info:
                total += info.bytes - s.start_bytes
        return total

    # ---- writing ---------------------------------------------------------------------------------------

    def _flush(self, i: int, reason: str, now_ns: int | None = None, final: bool = False) -> bool:
        """Write repository i (in parts of at most maxL4Streams streams) and start the next one."""
        assert self.opts is not None
        now = self.ctx.clock() if now_ns is None else now_ns
        repo = self.repos[i]
        store = self.ctx.store
        parts = []
        for s in repo.streams.values():
            info = store.info(s.sid)
            parts.append((s, info, store.packets(s.sid, s.start) if info else []))
        written = [p for p in parts if p[2]]
        size = self.opts.max_l4_streams
        done: set[str] = set()
        failure: Exception | None = None
        try:
            for k in range(0, len(written), size):
                chunk = written[k : k + size]
                self._write(i, repo, chunk, now, reason)
                done.update(s.sid for s, _info, _pkts in chunk)
        except (SpoolError, OSError) as exc:
            failure = exc
            lost = len(written) - len(done)
            if final:
                self.ctx.error(f"kflPcapS3: {lost} streams of kfl_{i} not written at {reason}: {exc}")
            else:
                self.ctx.error(f"kflPcapS3: {lost} streams of kfl_{i} kept in memory, retried in "
                               f"{self.retry_s:.0f} s: {exc}")
        nxt = _Repo(now, bytes_checked_ns=now)
        if failure and not final:
            nxt.start_ns = repo.start_ns
            nxt.retry_at = time.monotonic() + self.retry_s
        for s, info, pkts in parts:
            wrote = s.sid in done
            if failure and not final and pkts and not wrote:
                nxt.streams[s.sid] = s
            elif final or info is None or info.evicted or (info.closed and now - info.last_ts_ns > LINGER_NS):
                store.unpin(s.sid)
                if info is not None and not final:
                    self.released[i][s.sid] = (s.start + len(pkts) if wrote else s.start, info.bytes)
            else:
                start = s.start + len(pkts) if wrote else s.start
                nxt.streams[s.sid] = _Stream(s.sid, start, info.bytes if wrote else s.start_bytes,
                                             protocols=s.protocols)
        self.repos[i] = nxt
        released = self.released[i]
        for sid in [sid for sid in released if store.info(sid) is None]:
            del released[sid]
        return failure is None

    def _write(self, i: int, repo: _Repo, written: list, now: int, reason: str) -> None:
        assert self.opts is not None
        opts, ctx = self.opts, self.ctx
        began = time.perf_counter()
        packets = [p for _s, _info, pkts in written for p in pkts]
        packets.sort(key=itemgetter(0))
        node = ctx.node.get("name") or "node"
        folder = "/".join(x for x in (opts.prefix, _safe(str(node)), f"kfl_{i}") if x)
        chain_id = f"{_store_ident(opts.store)}|{folder}"
        with self.chains.lock, ctx.outbox.stage() as bundle:
            link = self.chains.get(chain_id)
            unix = link.unix
            if opts.format == "tar.gz":
                unix = max(now // 1_000_000_000, link.unix + 1)
                base = f"kfl_{i}_kubeshark_{unix}"
                data_name = f"{base}.tar.gz"
                content = {
                    "pcap_file_name": f"{unix}.pcap",
                    "time": rfc1123(now),
                    "kfl_index": i,
                    "kfl_query": opts.kfl_arr[i],
                    "l4_streams": [s.sid for s, _info, _p in written],
                }
                history = {str(unix): ctx.names()}
                sha, size, raw_size = write_kubeshark_tar(
                    bundle.path(data_name), unix, packets, ctx.store.snaplen, content, history
                )
            else:
                base = f"{key_time(repo.start_ns)}_{link.seq:06d}"
                data_name = f"{base}.pcap.gz"
                sha, size, raw_size = write_pcap_gz(bundle.path(data_name), packets, ctx.store.snaplen)
            manifest = self._manifest(i, repo, written, packets, now, reason, link)
            manifest["pcap"].update(key=f"{folder}/{data_name}", size=size, sha256=sha)
            manifest["key"] = f"{folder}/{base}.json"
            body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            msha = hashlib.sha256(body).hexdigest()
            bundle.path(f"{base}.json").write_bytes(body)
            bundle.add(f"{folder}/{data_name}", data_name, sha)
            bundle.add(manifest["key"], f"{base}.json", msha)
            nxt = Link(link.seq + 1, msha, unix)
            summary = (
                f"{len(written)} L4 streams, {len(packets)} packets, {size} bytes; "
                f'KFL: "{opts.kfl_arr[i]}"; {reason}'
            )
            ctx.outbox.commit(
                bundle,
                opts.store,
                meta={"chain": {"id": chain_id, "next": asdict(nxt)}, "kind": "kflpcaps3"},
                before_upload=lambda: self.chains.advance(chain_id, nxt),
                on_done=lambda urls: self._uploaded(urls, summary),
            )
        self.counters["repositories"] += 1
        self.counters["packets"] += len(packets)
        self.counters["bytes"] += size
        self.written.append({
            "index": i, "query": opts.kfl_arr[i], "location": _location(opts.store, f"{folder}/{data_name}"),
            "streams": len(written), "packets": len(packets), "bytes_raw": raw_size, "bytes_gz": size,
        })
        ms = (time.perf_counter() - began) * 1000
        ctx.console(f"kflPcapS3: New PCAP: {folder}/{data_name}; {summary}; snapshot time: {ms:.0f}ms")

    def _manifest(
        self, i: int, repo: _Repo, written: list, packets: list, now: int, reason: str, link: Link
    ) -> dict[str, Any]:
        assert self.opts is not None
        ctx = self.ctx
        streams = []
        for s, info, pkts in written:
            streams.append(
                {
                    "id": s.sid,
                    "l4": info.l4,
                    "client": {"ip": info.client_ip, "port": info.client_port},
                    "server": {"ip": info.server_ip, "port": info.server_port},
                    "protocols": list(s.protocols),
                    "first": rfc3339(pkts[0][0]),
                    "last": rfc3339(pkts[-1][0]),
                    "packets": len(pkts),
                    "bytes": sum(len(p[2]) for p in pkts),
                    "wire_bytes": sum(p[3] for p in pkts),
                    "packet_range": [s.start, s.start + len(pkts)],
                    "continued": s.start > 0,
                    "closed": bool(info.closed),
                    "truncated_packets": info.truncated_packets,
                    "evicted": bool(info.evicted),
                    "items": s.items,
                }
            )
        return {
            "kflpcap_manifest": 1,
            "seq": link.seq,
            "run": RUN_ID,
            "query": {"index": i, "kfl": self.opts.kfl_arr[i]},
            "script": {"title": ctx.title, "sha256": ctx.source_sha256},
            "node": ctx.node,
            "reason": reason,
            "window": {
                "start": rfc3339(repo.start_ns),
                "end": rfc3339(now),
                "start_ns": repo.start_ns,
                "end_ns": now,
            },
            "pcap": {
                "format": self.opts.format,
                "gzip_level": GZIP_LEVEL,
                "packets": len(packets),
                "linktypes": sorted({p[1] for p in packets}),
                "first": rfc3339(packets[0][0]),
                "last": rfc3339(packets[-1][0]),
            },
            "streams": streams,
            "names": ctx.names(),
            "previous_manifest_sha256": link.head,
        }

    # ---- after upload ---------------------------------------------------------------------------------

    def _uploaded(self, urls: list[str], summary: str) -> None:
        assert self.opts is not None
        msg = f"New PCAP: {urls[0]}; {summary}"
        if self.opts.verbose:
            self.ctx.console(f"kflPcapS3: uploaded {urls[0]}")
        if self.opts.slack_webhook:
            body = {"color": "#ff0000", "pretext": "Notification", "text": msg}
            _post(self.opts.slack_webhook, body, {})
        if self.opts.slack_auth_token and self.opts.slack_channel_id:
            body = {
                "channel": self.opts.slack_channel_id,
                "attachments": [{"pretext": "Notification (kflPcapS3)", "text": msg, "color": "#ff0000"}],
            }
            _post(SLACK_API, body, {"Authorization": f"Bearer {self.opts.slack_auth_token}"})

    def _error_once(self, tag: str, text: str) -> None:
        if tag not in self._warned:
            self._warned.add(tag)
            self.ctx.error(text)


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """POST JSON on a short-lived thread; a failing notification never blocks uploads."""

    def send() -> None:
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    threading.Thread(target=send, name="kflpcap-slack", daemon=True).start()


def _store_ident(store: dict[str, Any]) -> str:
    if store.get("kind") == "s3":
        return f"s3://{store['bucket']}/{store.get('prefix', '')}@{store.get('endpoint', '')}"
    return f"file://{store.get('root')}"


def _location(store: dict[str, Any], key: str) -> str:
    if store.get("kind") == "s3":
        prefix = store.get("prefix", "")
        return f"s3://{store['bucket']}/{prefix + '/' if prefix else ''}{key}"
    return f"{store['root']}/{key}"


def _describe_s3(store: dict[str, Any]) -> str:
    where = f"s3://{store['bucket']}"
    if store.get("endpoint"):
        where += f" at {store['endpoint']}"
    if store.get("object_lock_mode"):
        where += f" (Object Lock {store['object_lock_mode']}, {store['object_lock_days']} days)"
    return where
