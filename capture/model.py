"""Shapes shared by the capture package: packets, stream metadata, handlers, configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# (ts_ns, linktype, captured bytes, length on the wire)
Packet = tuple[int, int, bytes, int]

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """Who talks to whom in one stream; direction 0 is client->server, 1 is server->client."""

    stream_id: str
    l4: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    first_ts_ns: int


class StreamHandler(Protocol):
    """What a dissector implements; `Capture` calls it for one stream."""

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None: ...

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None: ...

    def on_close(self, ts_ns: int, reason: str) -> None: ...


@dataclass(slots=True)
class CaptureConfig:
    """Limits of the flow table, the reassembler and the stream store (docs/architecture.md defaults)."""

    tcp_idle_s: float = 300.0
    udp_idle_s: float = 60.0
    retention_s: float = 30.0
    stream_cap_bytes: int = 16 << 20
    # not 512 MiB: a 1 GB capture must stay under 400 MB RSS with the default;
    # measured (bench_streams --memory, 1.05 GB at 67 Mbit/s) 200 MiB gives a 356 MB peak, 256 MiB 405 MB.
    budget_bytes: int = 200 << 20
    ooo_max_bytes: int = 1 << 20
    fragment_timeout_s: float = 30.0
