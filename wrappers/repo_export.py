"""`kflpcap repo export`: the streams `find` selected, verified and merged into one pcapng (or one per
stream), with a custody report beside it (JSON and Markdown).

One pcapng interface per (node, link type), named after the node; the first packet of each stream
carries a comment naming its node, repository and query. A packet kept by two queries' repositories
(the same stream of the same run) is written once. Verification is `wrappers.repo_verify`: any
problem stops the export (`ExportRefused`, nothing written) unless `allow_unverified`, which writes
the problems into the custody report.
"""

from __future__ import annotations

import datetime as dt
import getpass
import heapq
import json
import re
import shlex
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wrappers.pcapfile import Interface, Record, write_pcapng
from wrappers.repo_find import FindResult, Hit, RepoEntry
from wrappers.repo_verify import RepoCheck, pull
from wrappers.stores import sha256_file

PULL_WORKERS = 4
Progress = Callable[[str, int, int | None], None]


class ExportRefused(Exception):
    """Verification found problems and unverified exports were not allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} verification problem(s)")
        self.problems = problems


@dataclass
class Output:
    path: Path
    streams: int
    packets: int
    sha256: str = ""
    size: int = 0


@dataclass
class Export:
    checks: list[RepoCheck]
    outputs: list[Output] = field(default_factory=list)
    duplicates: int = 0  # packets skipped: already written from another query's repository
    report_json: Path | None = None
    report_md: Path | None = None

    @property
    def problems(self) -> list[str]:
        return [p for c in self.checks for p in c.problems]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export(
    result: FindResult,
    out: Path,
    *,
    per_stream: bool = False,
    allow_unverified: bool = False,
    command: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Export:
    """Pull, verify and write `result.hits` to `out` (a .pcapng, or a folder with `per_stream`)."""
    started = _now()
    hits = result.hits
    groups: dict[tuple[str, str], tuple[RepoEntry, list[tuple[int, Hit]]]] = {}
    for i, hit in enumerate(hits):
        groups.setdefault((hit.repo.store.identity, hit.repo.key), (hit.repo, []))[1].append((i, hit))
    checks: list[RepoCheck] = []
    with ThreadPoolExecutor(max_workers=PULL_WORKERS, thread_name_prefix="kflpcap-pull") as pool:
        jobs = [pool.submit(pull, repo, result.chain_of(repo), members) for repo, members in groups.values()]
        for n, job in enumerate(jobs, 1):
            checks.append(job.result())
            if progress:
                progress("pull", n, len(jobs))
    done = Export(checks)
    if done.problems and not allow_unverified:
        raise ExportRefused(done.problems)
    packets: dict[int, list] = {i: pkts for c in checks for i, pkts in c.packets.items()}
    snaplens: dict[int, int] = {}
    for c in checks:
        for lt, sl in c.snaplens.items():
            snaplens[lt] = max(snaplens.get(lt, 0), sl)
    done.duplicates = _dedupe(hits, packets)
    if per_stream:
        out.mkdir(parents=True, exist_ok=True)
        for name, members in _per_stream(hits).items():
            done.outputs.append(_write(out / name, hits, members, packets, snaplens))
        base = out / "custody"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        done.outputs.append(_write(out, hits, list(range(len(hits))), packets, snaplens))
        base = out.with_name(out.name + ".custody")
    for o in done.outputs:
        o.sha256, o.size = sha256_file(o.path), o.path.stat().st_size
    report = custody(done, hits, started, command or [], filters or {}, allow_unverified)
    done.report_json = base.with_name(base.name + ".json")
    done.report_md = base.with_name(base.name + ".md")
    done.report_json.write_text(json.dumps(report, indent=2) + "\n")
    done.report_md.write_text(custody_markdown(report))
    return done


def _dedupe(hits: list[Hit], packets: dict[int, list]) -> int:
    """Drop packets of a stream already taken from another repository (same run, same stream id)."""
    seen: dict[tuple, set[int]] = {}
    dropped = 0
    for i, hit in enumerate(hits):
        rec = hit.record
        pkts = packets.get(i, [])
        lo, hi = (rec.get("packet_range") or [0, 0])[:2]
        if hi - lo != len(pkts):
            continue  # counts disagree (reported): keep every packet
        taken = seen.setdefault((hit.repo.node, rec.get("run"), rec["id"]), set())
        kept = [p for n, p in enumerate(pkts, lo) if n not in taken]
        dropped += len(pkts) - len(kept)
        taken.update(range(lo, hi))
        packets[i] = kept
    return dropped


def _per_stream(hits: list[Hit]) -> dict[str, list[int]]:
    """File name → the hits of one stream (its records in every repository that holds a part)."""
    by_stream: dict[tuple, list[int]] = {}
    for i, hit in enumerate(hits):
        by_stream.setdefault((hit.repo.node, hit.record.get("run"), hit.record["id"]), []).append(i)
    names = {}
    for members in by_stream.values():
        rec = hits[members[0]].record
        c, s = rec["client"], rec["server"]
        stem = f"{hits[members[0]].repo.node}_{rec['l4']}_{c['ip']}_{c['port']}-{s['ip']}_{s['port']}"
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
        name, n = f"{stem}.pcapng", 1
        while name in names:
            n += 1
            name = f"{stem}_{n}.pcapng"
        names[name] = members
    return names


def _write(path: Path, hits: list[Hit], members: list[int], packets: dict[int, list],
           snaplens: dict[int, int]) -> Output:
    interfaces: dict[tuple[str, int], int] = {}
    for i in members:
        for p in packets.get(i, []):
            interfaces.setdefault((hits[i].repo.node, p[1]), len(interfaces))

    def records(i: int) -> Iterator[Record]:
        hit = hits[i]
        rec = hit.record
        q = hit.repo.query
        where = hit.repo.where(hit.repo.data_key)
        note = (f"kflpcap stream {rec['id']}: node {hit.repo.node}, repository {where}, "
                f"query kfl_{q.get('index')}: {q.get('kfl')}")
        for n, (ts, lt, data, wire) in enumerate(packets.get(i, [])):
            yield ts, interfaces[(hit.repo.node, lt)], data, wire, note if n == 0 else ""

    merged = heapq.merge(*(records(i) for i in members), key=lambda r: r[0])
    ifaces = [Interface(lt, snaplens.get(lt, 262144), node, f"kflpcap node {node}, link type {lt}")
              for (node, lt) in interfaces]
    with path.open("wb") as f:
        n = write_pcapng(f, ifaces, merged, comment="kflpcap repo export")
    return Output(path, len(members), n)


def custody(done: Export, hits: list[Hit], started: str, command: list[str], filters: dict[str, Any],
            allow_unverified: bool) -> dict[str, Any]:
    """The custody report: who exported what, when, with which command, and what verification found."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    objects = []
    for c in done.checks:
        r = c.repo
        objects.append({
            "store": r.store.url,
            "node": r.node,
            "query": r.query,
            "manifest": {"key": r.key, "sha256": r.sha256, "seq": r.seq, "previous_sha256": r.previous,
                         "store_status": c.manifest_status, "verified": not c.problems_of(r.key)},
            "data": {"key": r.data_key, "sha256": c.data_sha256, "size": c.data_size,
                     "manifest_sha256": r.pcap.get("sha256"), "manifest_size": r.pcap.get("size"),
                     "store_status": c.data_status, "verified": not c.problems_of(r.data_key)},
            "streams": sum(1 for h in hits if h.repo is r),
            "verified": c.verified,
            "problems": c.problems,
        })
    return {
        "kflpcap_custody": 1,
        "command": shlex.join(command),
        "user": user,
        "host": socket.gethostname(),
        "started": started,
        "finished": _now(),
        "filters": filters,
        "verified": not done.problems,
        "allow_unverified": allow_unverified,
        "outputs": [{"path": str(o.path), "sha256": o.sha256, "size": o.size, "streams": o.streams,
                     "packets": o.packets} for o in done.outputs],
        "duplicate_packets_skipped": done.duplicates,
        "objects": objects,
        "problems": done.problems,
    }


def custody_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# kflpcap export: custody report",
        "",
        f"- command: `{report['command']}`",
        f"- by: {report['user']} on {report['host']}",
        f"- started {report['started']}, finished {report['finished']}",
        f"- filters: `{json.dumps(report['filters'])}`",
        "- verification: " + ("every object verified" if report["verified"] else
                              f"**{len(report['problems'])} problem(s)**, exported with --allow-unverified"),
        "",
        "## Outputs",
        "",
        "| file | SHA-256 | bytes | streams | packets |",
        "|---|---|---:|---:|---:|",
        *(f"| {o['path']} | `{o['sha256']}` | {o['size']} | {o['streams']} | {o['packets']} |"
          for o in report["outputs"]),
        "",
        "## Objects",
        "",
        "| node | object | SHA-256 | verified |",
        "|---|---|---|---|",
    ]
    for o in report["objects"]:
        for part in (o["manifest"], o["data"]):
            ok = "yes" if part["verified"] else "**NO**"
            lines.append(f"| {o['node']} | {o['store']}/{part['key']} | `{part['sha256']}` | {ok} |")
    if report["problems"]:
        lines += ["", "## Problems", "", *(f"- {p}" for p in report["problems"])]
    return "\n".join(lines) + "\n"
