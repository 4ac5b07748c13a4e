"""What every dissector shares: node identity, limits, the dissector protocol and the item factory.

An item is a plain dict shaped like Kubeshark's (docs/items.md). `ItemFactory` builds the fields every
item has (id, stream, node, protocol, src/dst, times) so that a dissector only supplies its
`request`/`response` (or `data`) and sizes. Sub-objects that are the same for many items
(`node`, `protocol`, and `src`/`dst` while the names of the stream's endpoints do not change) are
shared between items: treat items as read-only, copy before changing one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from capture.dissect.httpitem import Message
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


@dataclass(frozen=True, slots=True)
class DissectConfig:
    """Limits of the dissectors (docs/items.md defaults) and port hints by dissector name."""

    body_cap: int = 64 * 1024  # bytes of a body kept in an item (after content decoding)
    generic_payload: int = 1024  # bytes of payload in a generic tcp/udp item, and per direction
    probe_limit: int = 64 * 1024  # bytes buffered per direction while choosing a dissector
    ports: Mapping[str, frozenset[int]] = field(default_factory=dict, hash=False)  # name -> port hints

    def ports_of(self, dissector: type[Dissector]) -> frozenset[int]:
        """The port hints of `dissector`: its own `ports` unless this config names others for it."""
        return self.ports.get(dissector.name, dissector.ports)


class Dissector:
    """One protocol; a new one is a module with a subclass and one line in the registry.

    The registry asks `probe` for each new stream of a matching `layer4`; the first dissector that
    claims it gets every later event of that stream (`StreamHandler`). What the rest of kflpcap
    needs to know of a protocol is declared here, not written into other packages:

    - `ports`: port hints (tried first when either port matches; `DissectConfig.ports` overrides).
    - `bodies`: (message, field) pairs of item objects whose `text` is a message body, left out of
      the items sent to scripts that never name them (`registry.BODY_FIELDS`).
    - `tls`: the items' `tls` flag.
    - `upgrades`: upgrade tokens (HTTP/1.1 `Upgrade:`) for which this dissector takes over a stream
      from another one (`ItemFactory.hand_off`).
    - `other_shares`: the handler run on streams whose items another process makes (`shard`), for
      state every process must share (DNS answers teach the name table); None: such streams are
      not looked at.
    """

    __slots__ = ()

    name: ClassVar[str]
    layer4: ClassVar[tuple[str, ...]]
    ports: ClassVar[frozenset[int]] = frozenset()
    bodies: ClassVar[tuple[tuple[str, str], ...]] = ()
    tls: ClassVar[bool] = False
    upgrades: ClassVar[tuple[str, ...]] = ()
    other_shares: ClassVar[type[Dissector] | None] = None

    @classmethod
    def probe(cls, meta: StreamMeta, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        """`CLAIM`, `REJECT` or `MORE` from the first bytes of each direction (before any gap) and the
        direction that sent data first (`leader`, -1 before any data); with `final` (stream closing
        or `probe_limit` reached) `MORE` counts as `REJECT`."""
        raise NotImplementedError

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        raise NotImplementedError

    def upgraded(self, token: str, request: Message, client_dir: int) -> None:
        """Called once when this dissector takes over a stream by `upgrades` token, before the bytes
        that follow the switch: `request` is the parsed request that asked for the upgrade
        (`httpitem.Message`; HTTP/2 answers it on stream 1), `client_dir` the direction it came from."""

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        raise NotImplementedError

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        raise NotImplementedError

    def on_close(self, ts_ns: int, reason: str) -> None:
        raise NotImplementedError


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


# What this product cannot know of an endpoint (no eBPF: no process attribution), and Kubernetes
# identity fields when no resolver or names file fills them (reference: docs/items.md).
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "name": "", "namespace": "", "pod": None, "endpointSlice": None, "service": None,
    "cgroupId": 0, "containerId": "", "socketId": 0, "processId": 0, "parentProcessId": 0,
    "hostProcessId": 0, "hostParentProcessId": 0, "processName": "", "resolutionMechanism": "none",
}

# `capture`: how the packets were captured (not told apart per item here); one object in every item.
CAPTURE = {"backend": "", "source": "", "proxy": {"name": "", "pid": 0}, "vlan": {"id": 0, "dot1q": False}}
_NO_CHECKSUMS: list[str] = []


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
    """Builds and emits the items of one stream; `index` counts them from 0, across dissectors when
    one hands the stream to another. `tls` is the dissector's flag (set by the registry)."""

    __slots__ = ("_ends", "_entry", "_hi", "_layer3", "_lo", "_prefix", "_protos", "_res", "_version",
                 "_worker", "index", "meta", "names", "node", "on_item", "stream", "tls")

    def __init__(self, meta: StreamMeta, node: NodeInfo, names: NameTable, on_item: OnItem) -> None:
        self.meta = meta
        self.node = {"name": node.name, "ip": node.ip}
        self._worker = f"{node.ip}:0"
        self._prefix = f"{node.name}/{meta.stream_id}-"
        self._entry = meta.stream_id.replace(".", "_") + "-"
        self._layer3 = "ipv6" if ":" in meta.client_ip else "ipv4"
        self._protos: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.names = names
        self._version = -1
        self._lo = self._hi = 0  # the capture times [lo, hi) for which the names in _ends hold
        self._ends: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        self._res: tuple[dict[str, Any], dict[str, Any]] | None = None
        self.on_item = on_item
        self.index = 0
        self.tls = False
        # a weak reference (no cycle: streams are freed without the GC) to the registry's holder of
        # the stream, whose `hand_off` does the work; None: the stream cannot change hands
        self.stream: Callable[[], Any] | None = None

    def hand_off(self, token: str, pending: list[tuple[int, bytes]], ts_ns: int, request: Message,
                 client_dir: int) -> bool:
        """Give the rest of this stream (both directions) to the dissector registered for upgrade
        `token` (`Dissector.upgrades`). `pending`: the (direction, bytes) the caller has received
        after the switch, in arrival order, fed to the new dissector first; `request`: the parsed
        request that asked for the switch, from direction `client_dir`. True: the caller gets no
        more events of this stream (not even `on_close`) and emits what it holds now; False: no
        dissector takes `token` (or the stream cannot change hands), the caller keeps the stream."""
        stream = self.stream() if self.stream is not None else None
        return stream is not None and stream.hand_off(token, pending, ts_ns, request, client_dir)

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
                client = {"ip": m.client_ip, "port": str(m.client_port), **ENDPOINT_DEFAULTS, **cres}
                server = {"ip": m.server_ip, "port": str(m.server_port), **ENDPOINT_DEFAULTS, **sres}
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
        known = self._protos.get(id(proto))
        if known is None or known[0] is not proto:
            known = self._protos[id(proto)] = (proto, {**proto, "layer3": self._layer3})
        layered = known[1]
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
            "protocol": layered,
            "tls": self.tls,
            "src": src,
            "dst": dst,
            "outgoing": False,
            "timestamp": ts_ns // 1_000_000,
            "startTime": f"{_sec_cache[1]}.{frac:09d}Z",
            "data": None,
            **body,
            "requestSize": request_size,
            "responseSize": response_size,
            "elapsedTime": (elapsed_ns + 500_000) // 1_000_000 if elapsed_ns > 0 else 0,
            "passed": False,
            "failed": False,
            "entryFile": f"{self._entry}{index}_entry.json",
            "pcapFile": self.meta.stream_id,
            "requestRef": "",
            "responseRef": "",
            "eventRef": "",
            "dataRef": "",
            "record": "",
            "event": None,
            "base": None,
            "capture": CAPTURE,
            "checksums": _NO_CHECKSUMS,
            "duplicate": "",
            "size": request_size + response_size,
        }
        if err is not None:
            item["error"] = err
        self.on_item(item)
        return item
