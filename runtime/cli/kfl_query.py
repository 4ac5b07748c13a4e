"""`kflpcap kfl check QUERY...` and `kflpcap kfl match QUERY [ITEMS.jsonl|-]`: try KFL queries."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO

import orjson

import kfl
from runtime.cli.options import add_input_options

EXIT_MATCHED, EXIT_NO_MATCH, EXIT_ERROR = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kfl",
        help="check KFL queries, or match them against items",
        description="Check KFL queries (see docs/kfl.md) or run one against items.",
    )
    sub = p.add_subparsers(dest="kfl_command", metavar="ACTION", required=True)
    macro_help = "an extra macro for the queries (repeatable), e.g. --macro 'prod=dst.namespace == \"prod\"'"

    check = sub.add_parser(
        "check",
        help="say whether queries are valid",
        description="Print 'ok' for each valid query, else where and why it is not. Unknown helpers "
        "(always false) are warned about on stderr. Exit 0 when every query is valid, else 1.",
    )
    check.add_argument("queries", nargs="+", metavar="QUERY")
    check.add_argument("--macro", action="append", default=[], metavar="NAME=EXPANSION", help=macro_help)
    check.set_defaults(func=run_check)

    match = sub.add_parser(
        "match",
        help="print the items (JSON lines) that match a query",
        description="Read items as JSON lines (or dissect them from captures with --pcap) and print "
        "those that match QUERY (after redact()), stopping after limit(n) matches. Exit 0 when "
        "something matched, 1 when nothing did, 2 on a bad query, bad input lines (reported on "
        "stderr, the other lines are still matched) or an input that is not a capture.",
    )
    match.add_argument("query", metavar="QUERY")
    match.add_argument(
        "items",
        nargs="?",
        metavar="ITEMS.jsonl",
        help="one item (JSON object) a line; - for stdin (the default without --pcap)",
    )
    add_input_options(match, "pcap")
    match.add_argument("--macro", action="append", default=[], metavar="NAME=EXPANSION", help=macro_help)
    match.add_argument("--count", action="store_true", help="print only the number of matching items")
    match.set_defaults(func=run_match)


def _macros(specs: list[str]) -> dict[str, str]:
    macros = {}
    for spec in specs:
        name, sep, expansion = spec.partition("=")
        if not sep:
            raise ValueError(f"--macro {spec!r}: expected NAME=EXPANSION")
        macros[name.strip()] = expansion.strip()
    return macros


def _compile(query: str, macro_specs: list[str], out: IO[str]) -> kfl.Query | None:
    """The query, or None after printing why it is not one (to `out`; macro errors to stderr)."""
    try:
        return kfl.compile(query, _macros(macro_specs))
    except kfl.KFLSyntaxError as exc:
        print(exc, file=out if exc.query == query else sys.stderr)
    except ValueError as exc:
        print(f"kflpcap kfl: {exc}", file=sys.stderr)
    return None


def run_check(args: argparse.Namespace) -> int:
    try:
        _macros(args.macro)
    except ValueError as exc:
        print(f"kflpcap kfl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    status = 0
    several = len(args.queries) > 1
    for number, text in enumerate(args.queries, 1):
        if several:
            print(f"query {number}: {text}")
        query = _compile(text, args.macro, sys.stdout)
        if query is None:
            status = 1
            continue
        print("ok")
        for name in query.unknown_helpers:
            print(f"warning: unknown helper '{name}()' is always false", file=sys.stderr)
    return status


class _Matcher:
    """Applies the query to items, writes the matches, counts, and says when `limit(n)` is reached."""

    def __init__(self, query: kfl.Query, count_only: bool) -> None:
        self.query = query
        self.count_only = count_only
        self.matched = 0
        self.out = sys.stdout.buffer

    @property
    def done(self) -> bool:
        return self.query.limit is not None and self.matched >= self.query.limit

    def __call__(self, item: dict) -> None:
        if self.done:
            return
        ok, item = self.query.apply(item)
        if ok:
            self.matched += 1
            if not self.count_only:
                self.out.write(orjson.dumps(item) + b"\n")


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    stream: IO[bytes]
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    with stream:
        yield from enumerate(stream, 1)


def _match_lines(path: str, matcher: _Matcher) -> int:
    """Match JSON lines; the number of lines that were not items."""
    name = "<stdin>" if path == "-" else path
    bad = 0
    for number, line in _lines(path):
        if matcher.done:
            break
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            item, problem = None, str(exc)
        else:
            problem = "" if isinstance(item, dict) else f"a JSON {type(item).__name__}, not an object"
        if problem:
            bad += 1
            print(f"{name}:{number}: not an item: {problem}", file=sys.stderr)
            continue
        matcher(item)
    return bad


def _match_pcaps(paths: list[str], matcher: _Matcher) -> bool:
    """Match the items dissected from captures (until `limit(n)`); False when an input was not a capture."""
    from capture.dissect_files import dissect_files

    return not dissect_files(paths, matcher, done=lambda: matcher.done).failed


def run_match(args: argparse.Namespace) -> int:
    query = _compile(args.query, args.macro, sys.stderr)
    if query is None:
        return EXIT_ERROR
    if args.pcap and args.items is not None:
        print("kflpcap kfl match: give ITEMS.jsonl or --pcap, not both", file=sys.stderr)
        return EXIT_ERROR
    matcher = _Matcher(query, args.count)
    failed = False
    try:
        if args.pcap:
            failed = not _match_pcaps(args.pcap, matcher)
        else:
            failed = _match_lines(args.items or "-", matcher) > 0
    except OSError as exc:
        print(f"kflpcap kfl match: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.flush()
    if args.count:
        print(matcher.matched)
    if failed:
        return EXIT_ERROR
    return EXIT_MATCHED if matcher.matched else EXIT_NO_MATCH
