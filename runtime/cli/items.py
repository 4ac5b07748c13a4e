"""`kflpcap items`: dissect captures into Kubeshark-shaped items, one JSON line each."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.cli import k8s
from runtime.cli.items_jsonl import default_jobs, write_items
from runtime.cli.options import add_input_options, capture_config, name_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "items",
        help="dissect captures into items (HTTP/1.x, DNS, generic tcp/udp) as JSON lines",
        description="Prints one JSON line per item (docs/items.md shape: HTTP request/response pairs, DNS "
        "query/answer pairs, one tcp/udp item per stream no dissector claims) in the order the items "
        "complete. Exit status 2 when an input is not a capture or the filter is invalid, else 0.",
    )
    add_input_options(p, "pcap", required=True)
    p.add_argument("--filter", metavar="KFL", help="print only the items this KFL query matches")
    add_input_options(p, "names", "node", "udp_idle", "tcp_idle")
    p.add_argument("--jobs", type=int, default=default_jobs(), metavar="N",
                   help="worker processes that share the streams of the input files, same output as one "
                   "(default: the CPUs available, at most 4: %(default)s); each reads every packet and "
                   "keeps its own stream store, so memory grows with N; 1: a single process; stdin is read "
                   "by one")
    k8s.add_options(p)  # Kubernetes identity: its own block, apart from the shared input options
    p.set_defaults(func=run)


def _query(text: str | None) -> Any:
    if not text:
        return None
    import kfl

    return kfl.compile(text)


def run(args: argparse.Namespace) -> int:
    try:
        query = _query(args.filter)
    except ValueError as exc:
        print(f"kflpcap items: invalid --filter:\n{exc}", file=sys.stderr)
        return 2
    try:
        names = name_table(args)
    except ValueError as exc:
        print(f"kflpcap items: {exc}", file=sys.stderr)
        return 2
    try:
        resolver = k8s.start(args, lambda text: print(f"kflpcap items: {text}", file=sys.stderr))
    except k8s.ConfigError as exc:
        print(f"kflpcap items: kubernetes: {exc}", file=sys.stderr)
        return 2
    if resolver is not None:
        names.attach(resolver.history)
    config = capture_config(args)
    limit = query.limit if query is not None else None
    try:
        return write_items(list(args.pcap), sys.stdout.buffer, query.match if query is not None else None,
                           config=config, node=args.node, names=names, jobs=args.jobs if limit is None else 1,
                           limit=limit)
    finally:
        if resolver is not None:
            resolver.stop()
