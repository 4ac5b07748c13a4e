"""`pcap.path` and `pcap.snapshot` files, made from the stream store (or from PCAP files on disk),
and Kubeshark's `name_resolution_history.json`.

`pcap.path(stream)` names `pcaps/master/<stream>`, Kubeshark's place for a stream's PCAP. The
stream store keeps the packets in memory, so the file is written from the store when a helper
reads it (copy, move, upload), with every packet captured so far — from a hook, every packet
captured up to the moment its item was made (the capture clock then), whatever the batch size.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from typing import Any

from runtime.helpers.files import HelperError

PCAPS_PREFIX = "pcaps/"

Packet = tuple[int, int, bytes, int]


def _write(services: Any, rel: str, packets: list[Packet], snaplen: Any) -> None:
    from wrappers.pcapfile import write_pcap

    with services.data.replace(rel) as f:  # a private temporary file renamed over `rel`
        write_pcap(f, packets, snaplen)


def _snaplen(services: Any) -> Any:
    store = services.store
    return store.snaplen if store is not None else 262144


def stream_packets(services: Any, stream: str) -> list[Packet]:
    """The stream's packets in the store; from a hook, those read up to its item (`cut_seq`)."""
    store = services.store
    if store is None or store.info(stream) is None:
        raise HelperError(f"stream {stream!r} is not in the stream store (never seen, or already released)")
    return store.packets(stream, 0, services.cut_seq)


NAME_HISTORY = "name_resolution_history.json"


def materialize(services: Any, rel: str) -> None:
    """Write `pcaps/<context>/<stream>` from the store, or Kubeshark's `name_resolution_history.json`
    from the name table's history, when a helper is about to read it."""
    if rel == NAME_HISTORY:
        services.data.write(rel, json.dumps(services.name_history(), sort_keys=True))
        return
    if not rel.startswith(PCAPS_PREFIX) or rel.count("/") != 2:
        return
    stream = rel.rsplit("/", 1)[1]
    _write(services, rel, stream_packets(services, stream), _snaplen(services))


def _read_file(services: Any, rel: str) -> list[Packet]:
    """The packets of data file `rel`, opened without following links (read through its descriptor)."""
    from capture import open_sources

    with services.data.open_read(rel) as f:
        return [p for p in open_sources([f"/proc/self/fd/{f.fileno()}"]) if p[2]]


def snapshot(services: Any, out_rel: str, streams: list[str] | None, from_dir: str | None) -> list[str]:
    """Merge packets in time order into `out_rel`: the selected streams (every stream when none),
    or, with `from_dir`, every `*.pcap` file in that data folder. Returns the selected streams
    that were no longer in the store (left out)."""
    missing: list[str] = []
    sources: list[Iterable[Packet]]
    if from_dir is not None:
        try:
            names = services.data.entries(from_dir)
        except (FileNotFoundError, NotADirectoryError):
            raise HelperError(f"{from_dir!r} is not a folder") from None
        folder = from_dir.rstrip("/")
        sources = [_read_file(services, f"{folder}/{name}") for name in names if name.endswith(".pcap")]
    else:
        store = services.store
        if store is None:
            raise HelperError("no stream store (no traffic read yet)")
        cut = services.cut_ns
        if streams:
            wanted = streams
        elif cut is None:
            wanted = list(store.stream_ids())
        else:  # from a hook: the streams the store held when its item was made
            wanted = [s for s in store.stream_ids() if store.retained_at(s, cut)]
        missing = [s for s in wanted if store.info(s) is None]
        sources = [stream_packets(services, s) for s in wanted if s not in missing]
    packets = list(heapq.merge(*sources, key=lambda p: p[0]))
    if not packets:
        gone = f" ({len(missing)} selected streams no longer in the store)" if missing else ""
        raise HelperError(f"no packets to write{gone}")
    _write(services, out_rel, packets, _snaplen(services))
    return missing
