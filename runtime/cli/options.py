"""The input options of `run`, `items`, `streams` and `kfl match`, defined once: each command adds
the ones it supports (`add_input_options`) and turns the parsed arguments into source specs for
`capture.open_sources`, a `CaptureConfig` and a name table with the helpers below. Every command reports
input problems alike (`capture.print_error`, `capture.print_warning`): an input that cannot be read
at all is an error (exit status 2), a damaged or cut-short input read up to the damage a warning."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from capture import CaptureConfig, NameTable

Adder = Callable[[Any, CaptureConfig, bool], None]


def _pcap(group: Any, _defaults: CaptureConfig, required: bool) -> None:
    group.add_argument("--pcap", action="append", default=[], metavar="FILE", required=required,
                       help="capture file (pcap, pcapng, .gz too), '-' for stdin; repeatable, read in order "
                       "(e.g. --pcap mon.pcap --pcap tue.pcap.gz)")


def _interface(group: Any, _defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--interface", "-i", action="append", default=[], metavar="IFACE",
                       help="capture live on IFACE (AF_PACKET, promiscuous; needs CAP_NET_RAW) until "
                       "SIGINT/SIGTERM; repeatable (e.g. -i eth0)")


def _bpf(group: Any, _defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--bpf", default=None, metavar="FILTER",
                       help="BPF filter on the input, tcpdump syntax "
                       "(e.g. --bpf 'tcp port 80 or udp port 53')")


def _names(group: Any, _defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--names", default=None, metavar="FILE",
                       help="static name map, YAML or JSON: IP or IP:port -> {name, namespace}, for the "
                       "src/dst names in items (e.g. --names pods.yaml)")


def _node(group: Any, _defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--node", default=None, metavar="NAME",
                       help="node name in items, item ids and repository keys "
                       "(default: the hostname; e.g. --node node-7)")


def _tcp_idle(group: Any, defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--tcp-idle", type=float, default=defaults.tcp_idle_s, metavar="S",
                       help="TCP idle timeout without FIN/RST (default %(default)s)")


def _udp_idle(group: Any, defaults: CaptureConfig, _required: bool) -> None:
    group.add_argument("--udp-idle", type=float, default=defaults.udp_idle_s, metavar="S",
                       help="UDP idle timeout; unanswered DNS queries are emitted then (default %(default)s)")


OPTIONS: dict[str, Adder] = {
    "pcap": _pcap,
    "interface": _interface,
    "bpf": _bpf,
    "names": _names,
    "node": _node,
    "tcp_idle": _tcp_idle,
    "udp_idle": _udp_idle,
}


def add_input_options(parser: argparse.ArgumentParser | Any, *names: str, required: bool = False) -> None:
    """Add the input options `names` (keys of `OPTIONS`, in that order) to a parser or a group;
    `required`: the command needs `--pcap`."""
    defaults = CaptureConfig()
    for name in names:
        OPTIONS[name](parser, defaults, required)


def source_specs(args: argparse.Namespace) -> list[str]:
    """The `capture.open_sources` specs of `--pcap` and `--interface`, in that order."""
    return list(args.pcap) + [f"iface:{name}" for name in getattr(args, "interface", [])]


def capture_config(args: argparse.Namespace, **more: Any) -> CaptureConfig:
    """The capture configuration of `--tcp-idle` and `--udp-idle` (plus `more` fields)."""
    return CaptureConfig(tcp_idle_s=args.tcp_idle, udp_idle_s=args.udp_idle, **more)


def name_table(args: argparse.Namespace) -> NameTable:
    """The table of `--names` (empty without it); ValueError says what is wrong with the file."""
    if not args.names:
        return NameTable()
    try:
        return NameTable.load(args.names)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--names {args.names}: {exc}") from exc
