"""`kflpcap run`: run the scripts over captured traffic (the basic command; see runtime.pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.env import EnvError, build_env
from runtime.services import MIB, Limits


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run scripts over capture files",
        description="Read the captures, dissect their streams into items and run every script's hooks "
        "on them (Kubeshark-style JavaScript, one V8 isolate per script). Exits when the input ends, "
        "after the last batch, the jobs that fell due and the repository flushes.",
    )
    p.add_argument(
        "--pcap",
        action="append",
        required=True,
        metavar="FILE",
        help="capture file (pcap, pcapng, .gz), '-' for stdin; repeatable, read in order",
    )
    p.add_argument(
        "--scripts",
        action="append",
        default=[],
        metavar="DIR|FILE",
        help="folder of *.js scripts (watched for changes) or one .js file; repeatable",
    )
    p.add_argument(
        "--data-dir",
        default="kflpcap-data",
        metavar="DIR",
        help="folder for script files, the spool and local repositories (default: %(default)s)",
    )
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="script env entry; repeatable"
    )
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="script env from a .env, JSON or YAML file; repeatable (--env wins)",
    )
    p.add_argument(
        "--clock",
        choices=("wall", "capture"),
        default=None,
        help="time for jobs, timers and rotation (default: capture time for files, wall time live)",
    )
    p.add_argument(
        "--node", default=None, metavar="NAME", help="node name in items and keys (default: hostname)"
    )
    p.add_argument(
        "--call-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="time budget of one call into a script (default: %(default)s)",
    )
    p.add_argument(
        "--heap-mib",
        type=int,
        default=256,
        metavar="MIB",
        help="V8 heap limit per script (default: %(default)s)",
    )
    p.add_argument(
        "--batch", type=int, default=1000, metavar="N", help="items per batch (default: %(default)s)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime.pipeline import Pipeline, PipelineConfig
    from runtime.scripts import ScriptsError

    try:
        env = build_env(args.env_file, args.env)
    except EnvError as exc:
        print(f"kflpcap run: {exc}", file=sys.stderr)
        return 2
    config = PipelineConfig(
        sources=args.pcap,
        scripts=args.scripts,
        data_dir=Path(args.data_dir),
        env=env,
        clock=args.clock,
        node=args.node,
        limits=Limits(call_timeout_s=args.call_timeout, heap_bytes=args.heap_mib * MIB),
        batch_items=max(1, args.batch),
        watch=True,
    )
    try:
        pipeline = Pipeline(config)
    except ScriptsError as exc:
        print(f"kflpcap run: {exc}", file=sys.stderr)
        return 2
    try:
        return pipeline.run()
    finally:
        pipeline.close()
