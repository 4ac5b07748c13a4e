"""`kflpcap streams`: list the L4 streams of captures or of a live interface, with the counters."""

from __future__ import annotations

import argparse
import contextlib
import resource
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from capture import Capture, CaptureConfig, NameTable, StreamInfo, open_sources, print_error, print_warning
from capture.model import NS
from runtime.cli import k8s
from runtime.cli.options import add_input_options, capture_config, source_specs


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = CaptureConfig()
    p = subparsers.add_parser(
        "streams",
        help="list the TCP/UDP streams of captures or a live interface",
        description="One line per stream (client first), then the counters. Exit status 2 when an "
        "input is not a capture at all, else 0 (damaged files are read up to the damage).",
    )
    add_input_options(p, "pcap", "interface", "ring_mib", "bpf")
    p.add_argument("--duration", type=float, metavar="S", help="stop a live capture after S seconds")
    p.add_argument("--json", action="store_true", help='JSON lines; the counters as a last {"summary": ...}')
    add_input_options(p, "tcp_idle", "udp_idle")
    p.add_argument("--budget-mb", type=float, default=defaults.budget_bytes / (1 << 20), metavar="MB",
                   help="stream store memory budget (default %(default)s)")
    k8s.add_options(p)  # Kubernetes identity: its own block, apart from the shared input options
    p.set_defaults(func=run)


@lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _rfc3339(ts_ns: int) -> str:
    sec, frac = divmod(ts_ns, NS)
    return f"{_second(sec)}.{frac:09d}Z"


def _row(info: StreamInfo) -> dict:
    return {
        "stream": info.stream_id,
        "l4": info.l4,
        "src_ip": info.client_ip,
        "src_port": info.client_port,
        "dst_ip": info.server_ip,
        "dst_port": info.server_port,
        "packets": info.packets,
        "bytes": info.wire_bytes,
        "first_ts": _rfc3339(info.first_ts_ns),
        "last_ts": _rfc3339(info.last_ts_ns),
        "first_ts_ns": info.first_ts_ns,
        "last_ts_ns": info.last_ts_ns,
        "truncated_packets": info.truncated_packets,
        "evicted": info.evicted,
        "ip_fragments": info.ip_fragments,
        "reassembled_datagrams": info.reassembled_datagrams,
    }


def _named(row: dict, info: StreamInfo, names: NameTable) -> str:
    """Adds the endpoints' names as of the stream's first packet; the text for a line."""
    text = []
    ends = (("src", info.client_ip, info.client_port), ("dst", info.server_ip, info.server_port))
    for end, ip, port in ends:
        fields = names.endpoint(ip, port, info.first_ts_ns)[0]
        name, ns = fields["name"], fields["namespace"]
        row[f"{end}_name"], row[f"{end}_namespace"] = name, ns
        text.append(f"{ns}/{name}" if ns else name or "-")
    return f" names={text[0]}->{text[1]}"


class _Printer:
    def __init__(self, as_json: bool, names: NameTable | None = None) -> None:
        self.as_json = as_json
        self.out = sys.stdout.buffer
        self.names = names

    def stream(self, info: StreamInfo) -> None:
        row = _row(info)
        named = _named(row, info, self.names) if self.names is not None else ""
        if self.as_json:
            self.out.write(orjson.dumps(row) + b"\n")
        else:
            self.out.write(
                (f"{row['stream']} {row['l4']} {row['src_ip']}:{row['src_port']} -> "
                 f"{row['dst_ip']}:{row['dst_port']} packets={row['packets']} bytes={row['bytes']} "
                 f"first={row['first_ts']} last={row['last_ts']}"
                 + (f" truncated={row['truncated_packets']}" if row["truncated_packets"] else "")
                 + (" evicted" if row["evicted"] else "") + named + "\n").encode()
            )

    def summary(self, counters: dict) -> None:
        if self.as_json:
            self.out.write(orjson.dumps({"summary": counters}) + b"\n")
        else:
            self.out.write(b"# " + " ".join(f"{k}={v}" for k, v in counters.items()).encode() + b"\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    specs = source_specs(args)
    if not specs:
        print("kflpcap streams: give --pcap FILE (or -) and/or --interface NAME", file=sys.stderr)
        return 2
    try:
        source = open_sources(specs, bpf=args.bpf, on_error=print_error, on_warning=print_warning,
                              ring_mib=args.ring_mib)
    except ValueError as exc:  # capture.bpf.BpfError
        print_error(str(exc))
        return 2
    config = capture_config(args, budget_bytes=int(args.budget_mb * (1 << 20)))
    cap = Capture(config)
    cap.warn = print_warning
    try:
        resolver = k8s.start(args, lambda text: print(f"kflpcap streams: {text}", file=sys.stderr))
    except k8s.ConfigError as exc:
        print(f"kflpcap streams: kubernetes: {exc}", file=sys.stderr)
        return 2
    printer = _Printer(args.json, NameTable(k8s=resolver.history) if resolver is not None else None)
    try:
        return _stream(cap, source, printer, args)
    finally:
        if resolver is not None:
            resolver.stop()


def _stream(cap: Capture, source: Any, printer: _Printer, args: argparse.Namespace) -> int:
    cap.store.on_release = printer.stream
    if source.live:
        source.heartbeat = lambda: cap.tick(time.time_ns())
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda _s, _f: source.stop())
        if args.duration:
            timer = threading.Timer(args.duration, source.stop)
            timer.daemon = True
            timer.start()
    cap.consume(source)
    cap.finish()
    for sid in cap.store.stream_ids():
        info = cap.store.info(sid)
        if info is not None:
            printer.stream(info)
    counters = {**cap.counters, **source.counters()}
    counters["input_errors"] = len(source.errors)
    counters["inputs_not_captures"] = len(source.failed)
    counters["peak_rss_mb"] = round(_peak_rss_kib() / 1024, 1)
    printer.summary(counters)
    return 2 if source.failed else 0


def _peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM of its own memory (ru_maxrss would also count the process that
    forked it: Linux carries the high-water mark across fork and exec)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
