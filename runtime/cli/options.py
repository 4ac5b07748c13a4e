"""The input options of `run`, `items`, `streams` and `kfl match`, defined once: each command adds
the ones it supports (`add_input_options`) and turns the parsed arguments into source specs for
`capture.open_sources`, a `CaptureConfig` and a name table with the helpers below. Every command reports
input problems alike (`capture.print_error`, `capture.print_warning`): an input that cannot be read
at all is an error (exit status 2), a damaged or cut-short input read up to the damage a warning."""

from __future__ import annotations

import argparse
from typing import Any

from capture import CaptureConfig, NameTable


def _ring_mib(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65536:
        raise argparse.ArgumentTypeError("give 1 to 65536 MiB")
    return value


def _options(defaults: CaptureConfig) -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """name -> (flags, `add_argument` keywords) of every input option."""
    return {
        "pcap": (("--pcap",), {
            "action": "append", "default": [], "metavar": "FILE",
            "help": "capture file (pcap, pcapng, .gz too), '-' for stdin; repeatable, read in order "
            "(e.g. --pcap mon.pcap --pcap tue.pcap.gz)"}),
        "interface": (("--interface", "-i"), {
            "action": "append", "default": [], "metavar": "IFACE",
            "help": "capture live on IFACE (AF_PACKET, promiscuous; needs CAP_NET_RAW) until SIGINT/SIGTERM; "
            "repeatable (e.g. -i eth0)"}),
        "ring_mib": (("--ring-mib",), {
            "type": _ring_mib, "default": None, "metavar": "MIB",
            "help": "kernel receive ring per live interface, in MiB (default 32): packets that find it "
            "full are lost and counted as kernel drops (e.g. --ring-mib 256)"}),
        "bpf": (("--bpf",), {
            "default": None, "metavar": "FILTER",
            "help": "BPF filter on the input, tcpdump syntax (e.g. --bpf 'tcp port 80 or udp port 53')"}),
        "names": (("--names",), {
            "default": None, "metavar": "FILE",
            "help": "static name map, YAML or JSON: IP or IP:port -> {name, namespace}, for the src/dst "
            "names in items (e.g. --names pods.yaml)"}),
        "node": (("--node",), {
            "default": None, "metavar": "NAME",
            "help": "node name in items, item ids and repository keys (default: the hostname; "
            "e.g. --node node-7)"}),
        "tcp_idle": (("--tcp-idle",), {
            "type": float, "default": defaults.tcp_idle_s, "metavar": "S",
            "help": "TCP idle timeout without FIN/RST (default %(default)s)"}),
        "udp_idle": (("--udp-idle",), {
            "type": float, "default": defaults.udp_idle_s, "metavar": "S",
            "help": "UDP idle timeout; unanswered DNS queries are emitted then (default %(default)s)"}),
    }


def add_input_options(parser: argparse.ArgumentParser | Any, *names: str, required: bool = False) -> None:
    """Add the input options `names` ("pcap", "interface", "ring_mib", "bpf", "names", "node", "tcp_idle",
    "udp_idle"; in the order given) to a parser or a group; `required`: the command needs `--pcap`."""
    options = _options(CaptureConfig())
    for name in names:
        flags, keywords = options[name]
        parser.add_argument(*flags, **keywords, **({"required": True} if name == "pcap" and required else {}))


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
