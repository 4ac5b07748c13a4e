"""Kubernetes identity on the command line: the options of `run`/`items`/`streams` and
`kflpcap k8s snapshot` (docs/kubernetes.md).

With `--k8s`, `--kubeconfig` or `--context` (or inside a pod, where the service account is found
automatically; `--no-k8s` turns that off) items' src/dst carry pods, services and namespaces from
the API server. `kflpcap k8s snapshot -o names.json` writes the identity table in the format
`--names` reads, so that a capture replayed away from the cluster resolves the same.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capture.k8s import ConfigError
from capture.k8s.objects import rfc3339

__all__ = ["ConfigError", "add_options", "register", "start", "table", "wanted", "write_table"]

WAIT_S = 10.0


def add_options(p: argparse.ArgumentParser) -> None:
    """The Kubernetes options of a sub-command that resolves names (run, items, streams)."""
    g = p.add_argument_group("kubernetes identity")
    g.add_argument("--k8s", action="store_true",
                   help="name src/dst after pods, services and namespaces from the Kubernetes API server "
                   "(on by itself inside a pod; e.g. --k8s)")
    g.add_argument("--no-k8s", action="store_true", help="do not ask the API server, even inside a pod")
    g.add_argument("--kubeconfig", metavar="FILE",
                   help="kubeconfig to use (implies --k8s; default $KUBECONFIG, then ~/.kube/config)")
    g.add_argument("--context", metavar="NAME", help="kubeconfig context (implies --k8s; default: current)")
    g.add_argument("--k8s-wait", type=float, default=WAIT_S, metavar="S",
                   help="seconds to wait for the first lists before reading files (default %(default)s); "
                   "capture never waits longer, names catch up")


def wanted(args: argparse.Namespace) -> bool:
    from capture.k8s import in_cluster

    if getattr(args, "no_k8s", False):
        return False
    return bool(args.k8s or args.kubeconfig or args.context) or in_cluster()


def start(args: argparse.Namespace, log: Callable[[str], None], wait: bool = True) -> Any:
    """A started `Resolver` when wanted (waited for up to --k8s-wait), else None.
    Raises capture.k8s.ConfigError for an unusable configuration."""
    from capture.k8s import Resolver, load_config

    if not wanted(args):
        return None
    resolver = Resolver(load_config(args.kubeconfig, args.context), log=log).start()
    if wait and not resolver.wait_synced(args.k8s_wait):
        log(f"the Kubernetes API server did not answer within {args.k8s_wait:g} s: going on, names catch up")
    return resolver


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "k8s",
        help="Kubernetes identity: snapshot the cluster's names for replays away from it",
        description="kflpcap k8s snapshot -o names.json [--watch]: write the identity of every pod, "
        "service, endpoint and node address (time-indexed: since/until) in the format --names reads.",
    )
    sub = p.add_subparsers(dest="k8s_command", metavar="COMMAND")
    s = sub.add_parser("snapshot", help="write the cluster's identity table (--names format)")
    s.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="JSON file to write (e.g. names.json)")
    s.add_argument("--watch", action="store_true",
                   help="keep watching and rewrite the file on every change (with since/until times) "
                   "until SIGINT/SIGTERM")
    s.add_argument("--kubeconfig", metavar="FILE",
                   help="kubeconfig (default $KUBECONFIG, then ~/.kube/config)")
    s.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    s.add_argument("--k8s-wait", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the first lists (default %(default)s)")
    s.set_defaults(func=snapshot, k8s=True, no_k8s=False)
    p.set_defaults(func=lambda _args: p.print_help() or 2)


def table(history: Any) -> dict[str, list[dict[str, Any]]]:
    """The history as `--names` reads it: key -> [{since, until, name, namespace, ...}] (RFC 3339)."""
    out = {}
    for key, intervals in sorted(history.dump().items()):
        out[key] = [{**iv, "since": rfc3339(iv["since"]),
                     "until": None if iv["until"] is None else rfc3339(iv["until"])} for iv in intervals]
    return out


def write_table(history: Any, path: Path) -> int:
    data = table(history)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return len(data)


def snapshot(args: argparse.Namespace) -> int:
    def log(text: str) -> None:
        print(f"kflpcap k8s: {text}", file=sys.stderr)

    try:
        resolver = start(args, log, wait=False)
    except ConfigError as exc:
        log(str(exc))
        return 2
    out = Path(args.output)
    try:
        if not resolver.wait_synced(args.k8s_wait):
            log(f"no complete list within {args.k8s_wait:g} s")
            return 1
        n = write_table(resolver.history, out)
        log(f"{out}: {n} addresses")
        if args.watch:
            _watch(resolver, out, log)
        return 0
    finally:
        resolver.stop()


def _watch(resolver: Any, out: Path, log: Callable[[str], None]) -> None:
    changed = threading.Event()
    done = threading.Event()
    resolver.on_change.append(changed.set)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _s, _f: done.set())
    while not done.is_set():
        if changed.wait(0.5):
            changed.clear()
            write_table(resolver.history, out)
    n = write_table(resolver.history, out)
    log(f"{out}: {n} addresses (watch ended)")
