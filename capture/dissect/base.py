"""What every dissector shares: node identity, limits, the dissector protocol and the item factory.

An item is a plain dict shaped like Kubeshark's (SPEC §4). `ItemFactory` builds the fields every
item has (id, stream, node, protocol, src/dst, times) so that a dissector only supplies its
`request`/`response` (or `data`) and sizes. Sub-objects that are the same for many items
(`node`, `protocol`, and `src`/`dst` while the names of the stream's endpoints do not change) are
shared between items: treat items as read-only, copy before changing one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from capture.model import StreamMeta
    from capture.names import NameTable

NS = 1_000_000_000

# What `Dissector.probe` answers.
REJECT = 0
CLAIM = 1
MORE = 2

Item = dict[str, Any]
OnItem = Callable[[Item], None]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """The runtime's node: `name` goes into item ids, `ip` into `node` and `worker`."""

    name: str
    ip: str

    @classmethod
    def local(cls, name: str | None = None) -> NodeInfo:
        """This host: `name` (default the hostname) and the address the hostname resolves to."""
        host = socket.gethostname()
        try:
            ip = socket.gethostbyname(host)
        except OSError:
            ip = "127.0.0.1"
        return cls(name or host, ip)


HTTP_PORTS = frozenset({80, 3128, 8000, 8008, 8080, 8081, 8888})


@dataclass(frozen=True, slots=True)
class DissectConfig:
    """Limits of the dissectors (SPEC §4 defaults)."""

    body_cap: int = 64 * 1024  # bytes of a body kept in an item (after content decoding)
    generic_payload: int = 1024  # bytes of payload in a generic tcp/udp item, and per direction
    probe_limit: int = 64 * 1024  # bytes buffered per direction while choosing a dissector
    http_ports: frozenset[int] = field(default=HTTP_PORTS)  # HTTP claimed at the first request line


class Dissector(Protocol):
    """One protocol. The registry asks `probe` for each new stream of a matching `layer4`; the
    first dissector that claims it gets every later event of that stream (`StreamHandler`)."""

    name: ClassVar[str]
    layer4: ClassVar[tuple[str, ...]]
    ports: ClassVar[frozenset[int]]  # port hints: tried first when either port matches

    @classmethod
    def probe(cls, meta: StreamMeta, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        """`CLAIM`, `REJECT` or `MORE` from the first bytes of each direction (before any gap) and the
        direction that sent data first (`leader`, -1 before any data); with `final` (stream closing
        or `probe_limit` reached) `MORE` counts as `REJECT`."""
        ...

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None: ...

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None: ...

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None: ...

    def on_close(self, ts_ns: int, reason: str) -> None: ...


def protocol(
    name: str,
    version: str,
    abbr: str,
    long_name: str,
    macro: str,
    layer4: str,
    ports: list[str],
    priority: int,
    reference: str = "",
    background: str = "#606060",
) -> dict[str, Any]:
    """A Kubeshark `protocol` object (field names and order as Kubeshark's dissectors)."""
    return {
        "name": name,
        "version": version,
        "abbr": abbr,
        "longName": long_name,
        "macro": macro,
        "backgroundColor": background,
        "foregroundColor": "#ffffff",
        "fontSize": 12,
        "referenceLink": reference,
        "ports": ports,
        "layer4": layer4,
        "priority": priority,
    }


_sec_cache: list = [-1, ""]  # startTime: the last second formatted (items come mostly in time order)


def error(kind: str, msg: str) -> dict[str, str]:
    """An item's `error`: kind is `dissection`, `timeout`, `connection` or `pair-not-found`."""
    return {"type": kind, "msg": msg}


def _named_by_host(dst: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Reference §5.4: an HTTP item's unresolved `dst.name` is the request's `:authority`, else
    `Host` (without a port)."""
    headers = (body.get("request") or {}).get("headers") or {}
    host = headers.get(":authority") or headers.get("Host") or ""
    if not isinstance(host, str) or not host:
        return dst
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    named = dict(dst, name=host)
    if "resolutionMechanism" in named:
        named["resolutionMechanism"] = "http-header"
    return named


class ItemFactory:
    """Builds and emits the items of one stream; `index` counts them from 0."""

    __slots__ = ("_ends", "_hi", "_lo", "_prefix", "_res", "_version", "_worker", "index", "meta", "names",
                 "node", "on_item")

    def __init__(self, meta: StreamMeta, node: NodeInfo, names: NameTable, on_item: OnItem) -> None:
        self.meta = meta
        self.node = {"name": node.name, "ip": node.ip}
        self._worker = f"{node.ip}:0"
        self._prefix = f"{node.name}/{meta.stream_id}-"
        self.names = names
        self._version = -1
        self._lo = self._hi = 0  # the capture times [lo, hi) for which the names in _ends hold
        self._ends: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        self._res: tuple[dict[str, Any], dict[str, Any]] | None = None
        self.on_item = on_item
        self.index = 0

    def ends(self, swapped: bool, ts_ns: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(`src`, `dst`): the client and the server, resolved with the name table as of capture time
        `ts_ns`. `swapped` when the stream's direction 1 turned out to be the client."""
        names = self.names
        if names.version != self._version or not self._lo <= ts_ns < self._hi:
            self._version = names.version
            m = self.meta
            cres, clo, chi = names.endpoint(m.client_ip, m.client_port, ts_ns)
            sres, slo, shi = names.endpoint(m.server_ip, m.server_port, ts_ns)
            self._lo, self._hi = max(clo, slo), min(chi, shi)
            res = (cres, sres)
            if res != self._res:  # the table changed for these endpoints: new shared sub-objects
                self._res = res
                client = {"ip": m.client_ip, "port": str(m.client_port), **cres}
                server = {"ip": m.server_ip, "port": str(m.server_port), **sres}
                self._ends = (client, server)
        client, server = self._ends
        return (server, client) if swapped else (client, server)

    def emit(
        self,
        proto: dict[str, Any],
        ts_ns: int,
        swapped: bool,
        body: dict[str, Any],
        request_size: int,
        response_size: int,
        elapsed_ns: int,
        err: dict[str, str] | None = None,
    ) -> Item:
        """Build the item (common fields + `body`: request/response or data) and hand it on."""
        index = self.index
        self.index = index + 1
        if self.names.version != self._version or not self._lo <= ts_ns < self._hi:
            self.ends(False, ts_ns)
        if swapped:
            dst, src = self._ends
        else:
            src, dst = self._ends
        if not dst["name"] and proto["name"] == "http":
            dst = _named_by_host(dst, body)
        sec, frac = divmod(ts_ns, NS)
        if sec != _sec_cache[0]:
            _sec_cache[0] = sec
            _sec_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        item: Item = {
            "id": f"{self._prefix}{index}",
            "index": index,
            "stream": self.meta.stream_id,
            "node": self.node,
            "worker": self._worker,
            "protocol": proto,
            "tls": False,
            "src": src,
            "dst": dst,
            "outgoing": False,
            "timestamp": ts_ns // 1_000_000,
            "startTime": f"{_sec_cache[1]}.{frac:09d}Z",
            **body,
            "requestSize": request_size,
            "responseSize": response_size,
            "elapsedTime": (elapsed_ns + 500_000) // 1_000_000 if elapsed_ns > 0 else 0,
            "passed": False,
            "failed": False,
        }
        if err is not None:
            item["error"] = err
        self.on_item(item)
        return item
