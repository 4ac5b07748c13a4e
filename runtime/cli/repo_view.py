"""What `kflpcap repo find|export|show` print: progress bars on a terminal, the lines of `find`, the
summary of `show`."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from wrappers.repo_find import FindResult
from wrappers.repo_show import Shown

_STAGES = {"list": "listing objects", "read": "reading manifests", "pull": "pulling repositories"}


@contextlib.contextmanager
def bars() -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A progress callback drawing rich bars on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(_STAGES.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


def _end(e: dict[str, Any]) -> str:
    host = f"[{e['ip']}]" if ":" in str(e["ip"]) else e["ip"]
    return f"{host}:{e['port']}" + (f" ({e['name']})" if e.get("name") else "")


def print_hits(result: FindResult, as_json: bool) -> None:
    out = sys.stdout
    for hit in result.hits:
        if as_json:
            out.write(json.dumps(hit.to_json()) + "\n")
            continue
        r = hit.record
        items = ",".join(r["items"][:3]) + (f",…(+{len(r['items']) - 3})" if len(r["items"]) > 3 else "")
        out.write(
            f"{r['first']}  {hit.repo.node}  {hit.repo.store.url.rstrip('/')}/{hit.repo.data_key}  "
            f"{r['l4']} {_end(r['client'])} -> {_end(r['server'])}  {'/'.join(r['protocols'])}  "
            f"packets={r['packets']} bytes={r['bytes']}  kfl_{r['query'].get('index')}  items={items}\n"
        )
    if not as_json:
        print(f"{len(result.hits)} stream(s) in {result.repositories} repositories "
              f"({result.fetched} manifests fetched, {result.cached} read from the cache)", file=sys.stderr)


def print_shown(shown: Shown, where: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200 if not sys.stdout.isatty() else None, highlight=False, markup=False)
    m = shown.manifest
    pcap, q, node, win = m.get("pcap", {}), m.get("query", {}), m.get("node", {}), m.get("window", {})
    chain = shown.chain
    rows = [
        ("manifest", f"{shown.key}  sha256 {shown.sha256}"),
        ("capture", f"{shown.data_key}  {pcap.get('format')}, {pcap.get('size')} bytes, "
                    f"{pcap.get('packets')} packets, link types {pcap.get('linktypes')}, "
                    f"sha256 {pcap.get('sha256')}"),
        ("node", f"{node.get('name')} ({node.get('ip', '')})  run {m.get('run')}"),
        ("query", f"kfl_{q.get('index')}: {q.get('kfl')}  (script {m.get('script', {}).get('title')!r})"),
        ("window", f"{win.get('start')} .. {win.get('end')}  (written at {m.get('reason')})"),
    ]
    if shown.position >= 0:
        prev = chain[shown.position - 1].key if shown.position > 0 else "none (first)"
        nxt = chain[shown.position + 1].key if shown.position + 1 < len(chain) else "none (latest)"
        links = "links ok" if not shown.chain_problems else "; ".join(shown.chain_problems)
        rows.append(("chain", f"seq {m.get('seq')}: {shown.position + 1} of {len(chain)} in "
                              f"{shown.chain[0].folder or where}; previous {prev}; next {nxt}; {links}"))
    for label, st in (("manifest lock", shown.manifest_status), ("capture lock", shown.data_status)):
        if st is None:
            continue
        lock = f"{st.lock_mode} until {st.retain_until}" if st.lock_mode else "none"
        extra = ["legal hold ON"] if st.legal_hold else []
        if st.versions is not None:
            extra.append(f"{st.versions} version(s)")
        if st.recorded_sha256:
            extra.append(f"recorded sha256 {st.recorded_sha256}")
        rows.append((label, lock + (f"  ({', '.join(extra)})" if extra else "")))
    rows += [("store error", e) for e in shown.status_errors]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in rows:
        summary.add_row(label, value)
    console.print(f"Repository {shown.key} in {where}")
    console.print(summary)
    names = m.get("names") or {}
    streams = Table(title=f"{len(m.get('streams', []))} streams")
    for col in ("id", "l4", "client", "server", "protocols", "first", "last", "packets", "bytes", "items"):
        streams.add_column(col, justify="right" if col in ("packets", "bytes", "items") else "left")
    for s in m.get("streams", []):
        ends = []
        for side in (s.get("client", {}), s.get("server", {})):
            name = (names.get(side.get("ip")) or {}).get("name")
            ends.append(f"{side.get('ip')}:{side.get('port')}" + (f" ({name})" if name else ""))
        streams.add_row(str(s.get("id")), s.get("l4", ""), *ends, "/".join(s.get("protocols", [])),
                        s.get("first", ""), s.get("last", ""), str(s.get("packets")), str(s.get("bytes")),
                        str(len(s.get("items", []))))
    console.print(streams)
    if names:
        table = Table(title=f"{len(names)} names")
        for col in ("ip", "name", "namespace", "source"):
            table.add_column(col)
        for ip, n in names.items():
            table.add_row(ip, str(n.get("name", "")), str(n.get("namespace", "")), str(n.get("source", "")))
        console.print(table)
