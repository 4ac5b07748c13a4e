"""`pcap.path` and `pcap.snapshot` files, made from the stream store (or from PCAP files on disk),
and Kubeshark's `name_resolution_history.json`.

`pcap.path(stream)` names `pcaps/master/<stream>`, Kubeshark's place for a stream's PCAP. The
stream store keeps the packets in memory, so the file is written from the store when a helper
reads it (copy, move, upload), with every packet captured so far.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from runtime.helpers.files import HelperError

PCAPS_PREFIX = "pcaps/"

Packet = tuple[int, int, bytes, int]


def _write(services: Any, rel: str, packets: list[Packet], snaplen: Any) -> None:
    from wrappers.pcapfile import write_pcap

    target = services.data.path(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with tmp.open("wb") as f:
        write_pcap(f, packets, snaplen)
    os.replace(tmp, target)


def _snaplen(services: Any) -> Any:
    store = services.store
    return store.snaplen if store is not None else 262144


def stream_packets(services: Any, stream: str) -> list[Packet]:
    store = services.store
    if store is None or store.info(stream) is None:
        raise HelperError(f"stream {stream!r} is not in the stream store (never seen, or already released)")
    return list(store.packets(stream))


NAME_HISTORY = "name_resolution_history.json"


def materialize(services: Any, rel: str) -> None:
    """Write `pcaps/<context>/<stream>` from the store, or Kubeshark's `name_resolution_history.json`
    from the name table's history, when a helper is about to read it."""
    if rel == NAME_HISTORY:
        target = services.data.path(rel)
        tmp = target.with_name(target.name + ".part")
        tmp.write_text(json.dumps(services.name_history(), sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
        return
    if not rel.startswith(PCAPS_PREFIX) or rel.count("/") != 2:
        return
    stream = rel.rsplit("/", 1)[1]
    _write(services, rel, stream_packets(services, stream), _snaplen(services))


def _read_file(path: str) -> Iterator[Packet]:
    from capture import open_sources

    source = open_sources([path])
    for ts_ns, linktype, data, orig_len in source:
        if data:
            yield ts_ns, linktype, data, orig_len


def snapshot(services: Any, out_rel: str, streams: list[str] | None, from_dir: str | None) -> list[str]:
    """Merge packets in time order into `out_rel`: the selected streams (every stream when none),
    or, with `from_dir`, every `*.pcap` file in that data folder. Returns the selected streams
    that were no longer in the store (left out)."""
    missing: list[str] = []
    sources: list[Iterable[Packet]]
    if from_dir is not None:
        folder = services.data.path(from_dir)
        if not folder.is_dir():
            raise HelperError(f"{from_dir!r} is not a folder")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".pcap")
        sources = [_read_file(str(p)) for p in files]
    else:
        store = services.store
        if store is None:
            raise HelperError("no stream store (no traffic read yet)")
        wanted = streams if streams else list(store.stream_ids())
        missing = [s for s in wanted if store.info(s) is None]
        sources = [stream_packets(services, s) for s in wanted if s not in missing]
    packets = list(heapq.merge(*sources, key=lambda p: p[0]))
    if not packets:
        gone = f" ({len(missing)} selected streams no longer in the store)" if missing else ""
        raise HelperError(f"no packets to write{gone}")
    _write(services, out_rel, packets, _snaplen(services))
    return missing
