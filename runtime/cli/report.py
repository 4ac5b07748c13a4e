"""What `kflpcap run` shows a person: the progress bar while reading, the summary at the end, and the
exit code. Everything is built from one plain stats dict (`runtime.engine.stats.RunStats.snapshot()`
gives its shape), which `runtime.cli.metrics` also reads, so this module needs no pipeline to test.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

EXIT_OK = 0
EXIT_FAILED = 1  # some scripts or uploads failed (listed in the summary)
EXIT_USAGE = 2  # bad usage or bad input

Stats = Mapping[str, Any]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _add_row(table: Table, *cells: str, style: str | None = None) -> None:
    """A row of plain text: what a script, a capture or a store said is never read as rich markup."""
    table.add_row(*(Text(c) for c in cells), style=style)


def _total_matches(stats: Stats) -> int:
    return sum(m.get("matches", 0) for m in list(stats.get("matches") or []))


class RunProgress:
    """The progress bar of a run: bytes of the input (when known), packets/s, items, matches.
    Use as a context manager and call `update(stats)` periodically (a few times a second)."""

    def __init__(self, console: Console | None = None, disable: bool = False) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[packets]} packets · {task.fields[rate]} packets/s · "
                       "{task.fields[items]} items · {task.fields[matches]} matches"),
            TimeElapsedColumn(),
            console=console,
            disable=disable,
            transient=False,
        )
        self._task = self._progress.add_task("reading", total=None, packets="0", rate="0", items="0",
                                             matches="0")
        self._last: tuple[float, int] | None = None
        self._rate = 0.0

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, stats: Stats, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        packets = int(stats.get("packets", 0))
        if self._last is not None and now > self._last[0]:
            instant = (packets - self._last[1]) / (now - self._last[0])
            self._rate = instant if self._rate == 0 else 0.5 * self._rate + 0.5 * instant
        self._last = (now, packets)
        source = dict(stats.get("input") or {})
        total = source.get("bytes_total") or None
        self._progress.update(
            self._task,
            description="capturing" if stats.get("live") else "reading",
            total=total,
            completed=source.get("bytes_read", 0) if total else 0,
            packets=f"{packets:,}",
            rate=f"{self._rate:,.0f}",
            items=f"{sum(dict(stats.get('items') or {}).values()):,}",
            matches=f"{_total_matches(stats):,}",
        )


def _overview(stats: Stats) -> Table:
    table = Table(title="kflpcap run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    elapsed = float(stats.get("elapsed_s", 0.0))
    packets = int(stats.get("packets", 0))
    rate = f" ({packets / elapsed:,.0f}/s)" if elapsed > 0 else ""
    streams = dict(stats.get("streams") or {})
    _add_row(table, "source", str(stats.get("source", "")))
    _add_row(table, "elapsed", f"{elapsed:.1f} s")
    _add_row(table, "packets", f"{packets:,}{rate}, {human_bytes(stats.get('bytes', 0))}")
    per_l4 = streams.get("tcp", 0) + streams.get("udp", 0)
    if per_l4:
        tcp, udp = streams.get("tcp", 0), streams.get("udp", 0)
        _add_row(table, "streams", f"{per_l4:,} (tcp {tcp:,}, udp {udp:,})")
    else:
        _add_row(table, "streams", f"{streams.get('total', 0):,}")
    drops = dict(stats.get("drops") or {})
    lost = drops.pop("kernel", 0)
    if lost:
        table.add_row("lost", f"{lost:,} packets dropped by the kernel (ring full "
                              f"{stats.get('ring_freezes', 0):,} times; see --ring-mib)")
    if drops:
        _add_row(table, "not streamed", ", ".join(f"{k} {v:,}" for k, v in sorted(drops.items())))
    store = dict(stats.get("store") or {})
    if store.get("evicted_streams") or store.get("truncated_streams"):
        _add_row(table, "stream store", f"evicted {store.get('evicted_streams', 0):,} streams, "
                                      f"truncated {store.get('truncated_streams', 0):,}")
    items = dict(stats.get("items") or {})
    _add_row(table, "items", ", ".join(f"{k} {v:,}" for k, v in sorted(items.items(), key=lambda kv: -kv[1]))
                  or "0")
    k8s = dict(stats.get("k8s") or {})
    if k8s:
        state = "stale (names as last known)" if k8s.get("stale") else "current"
        _add_row(table, "kubernetes", f"names {state}; {k8s.get('events', 0):,} watch events, "
                                    f"{k8s.get('errors', 0):,} API errors")
    return table


def _matches(stats: Stats) -> Table:
    table = Table(title="Matches per script and query", title_justify="left")
    for col, justify in (("script", "left"), ("#", "right"), ("query", "left"), ("matches", "right"),
                         ("streams", "right")):
        table.add_column(col, justify=justify)
    for m in stats.get("matches") or []:
        _add_row(table, str(m.get("script", "")), str(m.get("index", "")), str(m.get("query", "")),
                      f"{m.get('matches', 0):,}", f"{m.get('streams', 0):,}")
    return table


def _repositories(stats: Stats) -> Table:
    repos = list(stats.get("repositories") or [])
    table = Table(title=f"Repositories written: {len(repos)}", title_justify="left")
    for col, justify in (("script", "left"), ("#", "right"), ("location", "left"), ("streams", "right"),
                         ("packets", "right"), ("PCAP", "right"), ("gzip", "right")):
        table.add_column(col, justify=justify, overflow="fold")
    raw = gz = 0
    for r in repos:
        raw += r.get("bytes_raw", 0)
        gz += r.get("bytes_gz", 0)
        _add_row(table, str(r.get("script", "")), str(r.get("index", "")), _short(str(r.get("location", ""))),
                      f"{r.get('streams', 0):,}", f"{r.get('packets', 0):,}",
                      human_bytes(r.get("bytes_raw", 0)), human_bytes(r.get("bytes_gz", 0)))
    if len(repos) > 1:
        table.add_section()
        _add_row(table, "total", "", "", "", "", human_bytes(raw), human_bytes(gz), style="bold")
    return table


def _problems(stats: Stats) -> Table | None:
    table = Table(title="Errors and uploads", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for kind, n in sorted(dict(stats.get("errors") or {}).items()):
        _add_row(table, f"{kind} errors", f"{n:,}")
    for title, script in sorted(dict(stats.get("scripts") or {}).items()):
        if script.get("status") == "failed":
            _add_row(table, "script failed", f"{title} ({script.get('file', '')}): {script.get('error', '')}")
    for line in dict(stats.get("input") or {}).get("errors") or []:
        _add_row(table, "bad input", str(line))
    for line in dict(stats.get("input") or {}).get("warnings") or []:
        _add_row(table, "input warning", str(line))
    uploads = dict(stats.get("uploads") or {})
    if uploads.get("pending"):
        spooled = human_bytes(uploads.get("spool_bytes", 0))
        _add_row(table, "uploads pending", f"{uploads['pending']:,} ({spooled} spooled, sent at next start)")
    for failed in uploads.get("failed") or []:
        _add_row(table, "upload failed", f"{failed.get('key', '')}: {failed.get('error', '')}")
    return table if table.row_count else None


def _short(location: str) -> str:
    """A local path relative to the working folder when it is below it."""
    if location.startswith("s3://"):
        return location
    path = Path(location)
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return location


def _wireshark_hint(stats: Stats) -> Text | None:
    repos = [str(r.get("location", "")) for r in stats.get("repositories") or [] if r.get("location")]
    if not repos:
        return None
    first = _short(repos[0])
    if first.startswith("s3://"):
        name = first.rsplit("/", 1)[-1]
        pending = dict(stats.get("uploads") or {}).get("pending", 0)
        where = (f"Repositories are spooled for upload to {first.rsplit('/', 4)[0]}/ ({pending} bundle(s) "
                 "still waiting; they are sent at the next start)" if pending
                 else f"Repositories were uploaded to {first.rsplit('/', 4)[0]}/")
        return Text(f"{where}\nOpen one in Wireshark: aws s3 cp {first} . && wireshark {name}")
    root = first.split("/repositories/", 1)[0] + "/repositories" if "/repositories/" in first else str(
        Path(first).parent)
    return Text(f"Repositories were written to {root}/ (list them: kflpcap repo list {root})\n"
                f"Open one in Wireshark: wireshark {first}\n"
                f"  (Wireshark reads .pcap.gz directly; else: wireshark <(zcat {first})\n"
                f"   or zcat {first} > repo.pcap)")


def summary(stats: Stats) -> RenderableType:
    """The end-of-run summary as one renderable."""
    parts: list[RenderableType] = [_overview(stats)]
    if stats.get("matches"):
        parts.append(_matches(stats))
    parts.append(_repositories(stats))
    problems = _problems(stats)
    if problems is not None:
        parts.append(problems)
    hint = _wireshark_hint(stats)
    if hint is not None:
        parts.append(hint)
    return Group(*parts)


def print_summary(stats: Stats, console: Console | None = None) -> None:
    (console or Console(stderr=True)).print(summary(stats))


def failures(stats: Stats) -> list[str]:
    """One line per failed script or upload, and one for uploads still pending at the end, however
    the store failed (refused, never answered, too slow): the reasons for exit code 1."""
    out = [f"script {title}: {script.get('error', '')}"
           for title, script in sorted(dict(stats.get("scripts") or {}).items())
           if script.get("status") == "failed"]
    uploads = dict(stats.get("uploads") or {})
    out += [f"upload {f.get('key', '')}: {f.get('error', '')}" for f in uploads.get("failed") or []]
    if uploads.get("pending"):
        out.append(f"{uploads['pending']:,} upload(s) not confirmed by the store at the end "
                   "(kept in the spool, sent at the next start)")
    return out


def exit_code(stats: Stats, usage_error: bool = False) -> int:
    """2 for bad usage or bad input, else 1 when a script or an upload failed or uploads are still
    pending at the end, else 0."""
    if usage_error or dict(stats.get("input") or {}).get("errors"):
        return EXIT_USAGE
    return EXIT_FAILED if failures(stats) else EXIT_OK
