"""`kflpcap repo list|verify|find|export|show`: the repositories in stores, their integrity, and the
responder's side (docs/responder.md): find streams across nodes, export them verified, show one."""

from __future__ import annotations

import argparse
import os
import sys

from wrappers.repos import Report, load_repositories, verify
from wrappers.stores import Store, StoreError, open_store

HELP = """STORE is s3://bucket/prefix (credentials: the AWS default chain, e.g. AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY; endpoint: --s3-endpoint or S3_ENDPOINT for SeaweedFS/MinIO) or a folder
(the local store, e.g. DATA_DIR/repositories)."""

FIND_HELP = """Filters combine with AND; a repeated filter matches any of its values. Times are RFC 3339
(2026-01-27T16:28:17Z) or relative to now (-90s, -15m, -2h, -1d); a stream matches when it overlaps
the window. --kfl is a KFL expression over each stream record (fields: node.name, query.index,
query.kfl, l4, client.ip, client.port, client.name, server.ip, server.port, server.name,
protocol.name, protocols, packets, bytes, first, last, closed, matched_items; see docs/responder.md),
e.g. 'server.port == 5432 and packets > 100'. Manifests are cached in --cache (default
$KFLPCAP_CACHE or ~/.cache/kflpcap), content-addressed by SHA-256."""


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--s3-endpoint", default=os.environ.get("S3_ENDPOINT") or os.environ.get(
        "AWS_ENDPOINT_URL", ""), help="S3 endpoint URL (default: $S3_ENDPOINT)")
    p.add_argument("--s3-region", default=os.environ.get("AWS_REGION", ""), help="default: $AWS_REGION")


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("stores", metavar="STORE", nargs="+", help="s3://bucket/prefix or a folder (several: all)")
    g = p.add_argument_group("filters")
    g.add_argument("--from", dest="start", metavar="TIME", help="streams that end at or after TIME")
    g.add_argument("--to", dest="end", metavar="TIME", help="streams that begin at or before TIME")
    g.add_argument("--ip", action="append", default=[], help="client or server address")
    g.add_argument("--port", action="append", type=int, default=[], help="client or server port")
    g.add_argument("--name", action="append", default=[], help="client or server name (names table)")
    g.add_argument("--namespace", action="append", default=[], help="client or server namespace")
    g.add_argument("--node", action="append", default=[], help="node name")
    g.add_argument("--query", action="append", default=[],
                   help="the query: its index (1 or kfl_1) or a part of its KFL text")
    g.add_argument("--protocol", action="append", default=[], help="e.g. http, dns, tcp, udp")
    g.add_argument("--kfl", default="", metavar="EXPR", help="KFL over the stream records")
    p.add_argument("--cache", default=None, metavar="DIR", help="manifest cache folder")
    _store_options(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    repo = subparsers.add_parser(
        "repo", help="list, verify, find, export and show repositories in stores", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = repo.add_subparsers(dest="repo_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("list", cmd_list, "a table of repositories: time, query, streams, packets, bytes, key"),
        ("verify", cmd_verify, "re-hash every PCAP, recount its packets, check every manifest hash chain; "
         "exit 1 on any mismatch"),
    ):
        p = sub.add_parser(name, help=text, description=f"{text}\n\n{HELP}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("store", metavar="STORE", help="s3://bucket/prefix or a folder")
        _store_options(p)
        if name == "verify":
            p.add_argument("-q", "--quiet", action="store_true", help="print only problems and the summary")
        p.set_defaults(func=func)

    text = "the streams kept in the stores' repositories that match the filters, one line each"
    p = sub.add_parser("find", help=text, description=f"{text}\n\n{FIND_HELP}\n\n{HELP}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _filter_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per stream (JSON Lines)")
    p.set_defaults(func=cmd_find)

    text = ("the streams find selects, verified (SHA-256 against the manifest, manifest against its hash "
            "chain) and merged in time order into one pcapng, with a custody report beside it")
    p = sub.add_parser("export", help=text, description=f"{text}\n\n{FIND_HELP}\n\n{HELP}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _filter_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE|DIR",
                   help="the pcapng (custody report: FILE.custody.json/.md); with --per-stream a folder")
    p.add_argument("--per-stream", action="store_true", help="one pcapng per stream in the folder -o")
    p.add_argument("--allow-unverified", action="store_true",
                   help="export even when verification finds problems (written in the custody report)")
    p.set_defaults(func=cmd_export)

    text = "one repository: manifest summary, streams, names, hash-chain position, Object Lock retention"
    p = sub.add_parser("show", help=text, description=f"{text}\n\nTARGET is the object's full location "
                       f"(s3://bucket/prefix/node/script/kfl_0/….json or a file path), or a STORE followed "
                       f"by the KEY in it (the manifest's or the capture's).\n\n{HELP}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="TARGET", help="object location, or STORE when KEY follows")
    p.add_argument("key", metavar="KEY", nargs="?", help="the key in STORE")
    p.add_argument("--cache", default=None, metavar="DIR", help="manifest cache folder")
    _store_options(p)
    p.set_defaults(func=cmd_show)


def _open(args: argparse.Namespace) -> Store:
    return _open_url(args.store, args)


def _open_url(url: str, args: argparse.Namespace) -> Store:
    store = open_store(url, endpoint=args.s3_endpoint, region=args.s3_region)
    store.check_readable()
    return store


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    try:
        repos = load_repositories(_open(args))
    except StoreError as exc:
        print(f"kflpcap repo list: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"{len(repos)} repositories in {args.store}")
    for col in ("time", "query", "streams", "endpoints", "packets", "bytes", "key"):
        table.add_column(col, justify="right" if col in ("streams", "packets", "bytes") else "left",
                         no_wrap=col in ("time", "key"))  # a key stays whole, to copy or grep
    for r in repos:
        m = r.manifest
        q = m.get("query", {})
        table.add_row(
            m.get("window", {}).get("start", "")[:19] + "Z",
            f"{q.get('index')}: {q.get('kfl')}",
            str(len(m.get("streams", []))),
            _endpoints(m.get("streams", [])),
            str(m.get("pcap", {}).get("packets")),
            str(m.get("pcap", {}).get("size")),
            r.data_key,
        )
    Console(width=200 if not sys.stdout.isatty() else None, markup=False).print(table)
    return 0


def _endpoint(end: dict) -> str:
    name, ns = end.get("name") or "", end.get("namespace") or ""
    if not name:
        return f"{end.get('ip', '')}:{end.get('port', '')}"
    return f"{ns}/{name}" if ns else name


def _endpoints(streams: list[dict]) -> str:
    """Who talked, as the manifest recorded it at capture time: `ns/client -> ns/server`, one line
    per distinct pair (at most 3, then `+N more`)."""
    pairs = list(dict.fromkeys(f"{_endpoint(s.get('client', {}))} -> {_endpoint(s.get('server', {}))}"
                               for s in streams))
    more = f"\n+{len(pairs) - 3} more" if len(pairs) > 3 else ""
    return "\n".join(pairs[:3]) + more


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        report: Report = verify(_open(args), progress=None if args.quiet else print)
    except StoreError as exc:
        print(f"kflpcap repo verify: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    n = len(report.repositories)
    if report.problems:
        print(f"FAILED: {len(report.problems)} problem(s) in {n} repositories, {report.chains} chains")
        return 1
    print(f"OK: {n} repositories in {report.chains} chains verified (SHA-256, packet counts, hash chains)")
    return 0


def _search(args: argparse.Namespace, what: str):
    """(FindResult, Filters) for the find/export arguments, or an exit code after printing why."""
    from kfl import KFLSyntaxError
    from runtime.cli.repo_view import bars
    from wrappers.manifest_cache import ManifestCache
    from wrappers.repo_find import Filters, find, parse_time

    try:
        filters = Filters(
            start_ns=parse_time(args.start) if args.start else None,
            end_ns=parse_time(args.end) if args.end else None,
            ips=args.ip, ports=args.port, names=args.name, namespaces=args.namespace, nodes=args.node,
            queries=args.query, protocols=args.protocol, kfl=args.kfl,
        )
    except (ValueError, KFLSyntaxError) as exc:
        print(f"kflpcap repo {what}: {exc}", file=sys.stderr)
        return 2
    try:
        stores = [open_store(url, endpoint=args.s3_endpoint, region=args.s3_region) for url in args.stores]
        with bars() as progress:
            result = find(stores, filters, ManifestCache(args.cache), progress)
    except StoreError as exc:
        print(f"kflpcap repo {what}: {exc}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    return result, filters


def cmd_find(args: argparse.Namespace) -> int:
    from runtime.cli.repo_view import print_hits

    found = _search(args, "find")
    if isinstance(found, int):
        return found
    result, _filters = found
    print_hits(result, as_json=args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from runtime.cli.repo_view import bars
    from wrappers.repo_export import ExportRefused, export

    found = _search(args, "export")
    if isinstance(found, int):
        return found
    result, filters = found
    if not result.hits:
        print("kflpcap repo export: no stream matches; nothing written", file=sys.stderr)
        return 1
    try:
        with bars() as progress:
            done = export(result, Path(args.output), per_stream=args.per_stream,
                          allow_unverified=args.allow_unverified, command=["kflpcap", *sys.argv[1:]],
                          filters=filters.describe(), progress=progress)
    except ExportRefused as exc:
        for problem in exc.problems:
            print(f"PROBLEM {problem}", file=sys.stderr)
        print(f"kflpcap repo export: STOPPED: {len(exc.problems)} verification problem(s); nothing written "
              "(--allow-unverified exports anyway and records them in the custody report)", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"kflpcap repo export: {exc}", file=sys.stderr)
        return 2
    for problem in done.problems:
        print(f"UNVERIFIED {problem}", file=sys.stderr)
    for o in done.outputs:
        print(f"{o.path}: {o.streams} streams, {o.packets} packets, {o.size} bytes, sha256 {o.sha256}")
    state = "verified" if not done.problems else f"{len(done.problems)} problem(s), exported unverified"
    print(f"custody report: {done.report_json} and {done.report_md} "
          f"({len(done.checks)} repositories, {state})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import posixpath

    from runtime.cli.repo_view import print_shown
    from wrappers.manifest_cache import ManifestCache
    from wrappers.repo_show import show

    url, key = (args.target, args.key) if args.key else posixpath.split(args.target.rstrip("/"))
    try:
        shown = show(_open_url(url, args), key, ManifestCache(args.cache))
    except StoreError as exc:
        print(f"kflpcap repo show: {exc}", file=sys.stderr)
        return 2
    print_shown(shown, url)
    return 0
