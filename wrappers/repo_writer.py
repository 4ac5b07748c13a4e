"""Writing repositories off the pipeline thread: PCAP.gz (or tar.gz) + manifest → one spool bundle.

The pipeline thread snapshots a repository (its streams' packets since their cursors, the stream
infos, the name table, the snaplens) into a `Job` and goes on capturing; one writer thread per
wrapper merges, compresses (zlib releases the GIL, so this runs on the second core), builds the
manifest, links it into the hash chain and commits the bundle to the outbox, in flush order. The
queue is short, so a writer that falls behind slows the pipeline down instead of piling up memory.
A job the spool refuses (full disk) stays in memory and is retried (the pipeline pauses once the
queue is full, rather than drop streams it decided to keep); only `close` gives up, and says so.
Messages and results go back through `drain()`, called on the pipeline thread, so the script's
console, its error counters and the wrapper's counters are only touched there.
"""

from __future__ import annotations

import collections
import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from capture.store import DEFAULT_SNAPLEN
from wrappers.artifacts import GZIP_LEVEL, key_time, rfc1123, rfc3339, write_kubeshark_tar, write_pcap_gz
from wrappers.chain import ChainState, Link
from wrappers.outbox import Outbox, SpoolError

QUEUE_JOBS = 1  # jobs waiting beside the one being written: at most 2 repositories in memory
RUN_ID = uuid.uuid4().hex  # stream ids are per run: (run, stream id) names a stream across manifests


@dataclass
class JobStream:
    sid: str
    start: int
    items: list[str]
    protocols: list[str]
    info: Any  # capture.StreamInfo at flush time
    packets: list  # Packet tuples from `start` on
    ends: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # client, server identity (capture.k8s brief)


@dataclass
class Job:
    index: int
    query: str
    reason: str
    window_start: int
    now: int
    streams: list[JobStream]
    names: dict[str, Any]
    snaplens: dict[int, int]
    kernel_drops: int = 0  # packets the live capture lost during the window (the repository may lack some)
    attempts: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Destination:
    """Where and how a wrapper writes (fixed at configuration)."""

    store: dict[str, Any]
    folder_of: Callable[[int], str]  # query index -> `<prefix>/<node>/<script slug>/kfl_<i>`
    chain_id_of: Callable[[int], str]
    fmt: str
    title: str
    source_sha256: str
    node: dict[str, Any]
    location_of: Callable[[str], str]


class RepoWriter:
    """One writer thread per wrapper; `submit` jobs in flush order, `drain` on the pipeline thread."""

    def __init__(self, outbox: Outbox, chains: ChainState, dest: Destination, retry_s: float) -> None:
        self.outbox = outbox
        self.chains = chains
        self.dest = dest
        self.retry_s = retry_s
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_JOBS)
        self.messages: collections.deque[tuple[str, Any]] = collections.deque()
        self.giving_up = False
        self.on_uploaded: Callable[[list[str], str], None] | None = None
        # the "New PCAP (spooled)" line, on the writer thread (a queued message could be printed after
        # the upload thread's "Uploaded" line)
        self.on_spooled: Callable[[str], None] = lambda text: self.messages.append(("console", text))
        self.thread = threading.Thread(target=self._run, name="kflpcap-repo-writer", daemon=True)
        self.thread.start()

    def submit(self, job: Job, while_waiting: Callable[[], None]) -> None:
        """Queue a job; while the queue is full (the writer behind, or stuck on a full spool) the
        caller waits here, calling `while_waiting` (to show the writer's messages) twice a second."""
        while True:
            try:
                self.jobs.put(job, timeout=0.5)
                return
            except queue.Full:
                while_waiting()

    def drain(self) -> list[tuple[str, Any]]:
        """Messages from the writer: ("console", text), ("error", text), ("written", entry dict)."""
        out = []
        while self.messages:
            out.append(self.messages.popleft())
        return out

    def close(self) -> None:
        """Write what is queued (a job the spool keeps refusing is given up on after one more try)."""
        self.giving_up = True
        self.jobs.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            while True:
                try:
                    self._write(job)
                    break
                except (SpoolError, OSError) as exc:
                    job.attempts += 1
                    n = len(job.streams)
                    what = f"kflPcapS3: {n} streams of kfl_{job.index}"
                    if self.giving_up and job.attempts > 1:
                        self.messages.append(("error", f"{what} not written at {job.reason}: {exc}"))
                        break
                    if job.attempts == 1:
                        self.messages.append(
                            ("error", f"{what} kept in memory, retried every {self.retry_s:g} s: {exc}")
                        )
                    time.sleep(max(self.retry_s, 0.05))
                except Exception as exc:
                    self.messages.append(("error", f"kflPcapS3: repository kfl_{job.index} lost: "
                                                    f"{type(exc).__name__}: {exc}"))
                    break
            job.done.set()

    def _write(self, job: Job) -> None:
        dest = self.dest
        began = time.perf_counter()
        packets = [p for s in job.streams for p in s.packets]
        packets.sort(key=itemgetter(0))
        folder = dest.folder_of(job.index)
        chain_id = dest.chain_id_of(job.index)
        snaplens = job.snaplens

        def snaplen(linktype: int) -> int:
            return snaplens.get(linktype, DEFAULT_SNAPLEN)

        with self.chains.lock, self.outbox.stage() as bundle:
            link = self.chains.get(chain_id)
            unix = link.unix
            if dest.fmt == "tar.gz":
                unix = max(job.now // 1_000_000_000, link.unix + 1)
                base = f"kfl_{job.index}_kubeshark_{unix}"
                data_name = f"{base}.tar.gz"
                content = {
                    "pcap_file_name": f"{unix}.pcap",
                    "time": rfc1123(job.now),
                    "kfl_index": job.index,
                    "kfl_query": job.query,
                    "l4_streams": [s.sid for s in job.streams],
                }
                sha, size, raw_size = write_kubeshark_tar(
                    bundle.path(data_name), unix, packets, snaplen, content,
                    {str(unix): job.names},
                )
            else:
                base = f"{key_time(job.window_start)}_{link.seq:06d}"
                data_name = f"{base}.pcap.gz"
                sha, size, raw_size = write_pcap_gz(
                    bundle.path(data_name), packets, snaplen
                )
            manifest = self._manifest(job, packets, link)
            manifest["pcap"].update(key=f"{folder}/{data_name}", size=size, sha256=sha)
            manifest["key"] = f"{folder}/{base}.json"
            body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            msha = hashlib.sha256(body).hexdigest()
            bundle.path(f"{base}.json").write_bytes(body)
            bundle.add(f"{folder}/{data_name}", data_name, sha)
            bundle.add(manifest["key"], f"{base}.json", msha)
            nxt = Link(link.seq + 1, msha, unix)
            summary = (
                f"{len(job.streams)} L4 streams, {len(packets)} packets, {size} bytes; "
                f'KFL: "{job.query}"; {job.reason}'
            )
            on_uploaded = self.on_uploaded
            ms = (time.perf_counter() - began) * 1000
            spooled = (f"kflPcapS3: New PCAP (spooled): {folder}/{data_name}; {summary}; "
                       f"snapshot time: {ms:.0f}ms")

            def before_upload() -> None:
                self.chains.advance(chain_id, nxt)
                # said here, once the bundle is durable and before its upload can start (and say so)
                self.on_spooled(spooled)

            self.outbox.commit(
                bundle,
                dest.store,
                meta={"chain": {"id": chain_id, "next": asdict(nxt)}, "kind": "kflpcaps3"},
                before_upload=before_upload,
                on_done=(lambda urls: on_uploaded(urls, summary)) if on_uploaded else None,
            )
        self.messages.append(("written", {
            "index": job.index, "query": job.query, "location": dest.location_of(f"{folder}/{data_name}"),
            "streams": len(job.streams), "packets": len(packets), "bytes_raw": raw_size, "bytes_gz": size,
        }))

    def _manifest(self, job: Job, packets: list, link: Link) -> dict[str, Any]:
        dest = self.dest
        streams = []
        for s in job.streams:
            info, pkts = s.info, s.packets
            streams.append(
                {
                    "id": s.sid,
                    "l4": info.l4,
                    "client": {"ip": info.client_ip, "port": info.client_port, **s.ends[0]},
                    "server": {"ip": info.server_ip, "port": info.server_port, **s.ends[1]},
                    "protocols": s.protocols,
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
        manifest = {
            "kflpcap_manifest": 1,
            "seq": link.seq,
            "run": RUN_ID,
            "query": {"index": job.index, "kfl": job.query},
            "script": {"title": dest.title, "sha256": dest.source_sha256},
            "node": dest.node,
            "reason": job.reason,
            "window": {
                "start": rfc3339(job.window_start),
                "end": rfc3339(job.now),
                "start_ns": job.window_start,
                "end_ns": job.now,
            },
            "pcap": {
                "format": dest.fmt,
                "gzip_level": GZIP_LEVEL,
                "packets": len(packets),
                "linktypes": sorted({p[1] for p in packets}),
                "first": rfc3339(packets[0][0]),
                "last": rfc3339(packets[-1][0]),
            },
            "streams": streams,
            "names": job.names,
            "previous_manifest_sha256": link.head,
        }
        if job.kernel_drops:
            manifest["capture"] = {"kernel_drops": job.kernel_drops}
        return manifest

