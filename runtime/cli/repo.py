"""`kflpcap repo list|verify STORE`: the repositories in a store, and their integrity."""

from __future__ import annotations

import argparse
import os
import sys

from wrappers.repos import Report, load_repositories, verify
from wrappers.stores import StoreError, open_store

HELP = """STORE is s3://bucket/prefix (credentials: the AWS default chain, e.g. AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY; endpoint: --s3-endpoint or S3_ENDPOINT for SeaweedFS/MinIO) or a folder
(the local store, e.g. DATA_DIR/repositories)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    repo = subparsers.add_parser(
        "repo", help="list and verify repositories in a store", description=HELP,
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
        p.add_argument("--s3-endpoint", default=os.environ.get("S3_ENDPOINT") or os.environ.get(
            "AWS_ENDPOINT_URL", ""), help="S3 endpoint URL (default: $S3_ENDPOINT)")
        p.add_argument("--s3-region", default=os.environ.get("AWS_REGION", ""), help="default: $AWS_REGION")
        if name == "verify":
            p.add_argument("-q", "--quiet", action="store_true", help="print only problems and the summary")
        p.set_defaults(func=func)


def _open(args: argparse.Namespace):
    if not args.store.startswith("s3://") and not os.path.isdir(args.store):
        raise StoreError(f"{args.store}: no such folder (STORE is s3://bucket/prefix or a folder)")
    return open_store(args.store, endpoint=args.s3_endpoint, region=args.s3_region)


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
        table.add_column(col, justify="right" if col in ("streams", "packets", "bytes") else "left")
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
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
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
