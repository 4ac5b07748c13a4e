"""`kflpcap repo find`: the streams kept in the repositories of one or more stores that match filters.

Every manifest under every store is listed (S3: paginated, folders in parallel), fetched once into
the local `ManifestCache` and read from there afterwards. Each stream record of a manifest becomes a
small dict (`stream_record`) that the filters — time window, endpoints, names, node, query,
protocol and a KFL expression — are asked about. Memory stays bounded: manifests are read one at a
time and only the matching stream records and a few fields per repository (for the hash chains) are
kept.
"""

from __future__ import annotations

import calendar
import ipaddress
import posixpath
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from wrappers.manifest_cache import ManifestCache
from wrappers.stores import ObjectInfo, Store

FETCH_WORKERS = 8
# (stage, done, total): "list" counts objects listed (total unknown), "read" manifests read
Progress = Callable[[str, int, int | None], None]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9})\d*)?)?)?\s*(Z|z|[+-]\d\d:?\d\d)?$"
)
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ABBR = {"http": "HTTP", "http2": "HTTP/2", "grpc": "gRPC", "dns": "DNS", "tcp": "TCP", "udp": "UDP"}


def parse_time(text: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch of RFC 3339 (`2026-01-27T16:28:17.5Z`, a date, an offset), `now`,
    or a time relative to now (`-90s`, `-15m`, `-2h`, `-1d`, `-1w`). Raises ValueError."""
    text = text.strip()
    now = time.time_ns() if now_ns is None else now_ns
    if text == "now":
        return now
    rel = _RELATIVE.match(text)
    if rel:
        return now - int(float(rel.group(1)) * _UNITS[rel.group(2)] * 1_000_000_000)
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a time (RFC 3339 like 2026-01-27T16:28:17Z, or relative like -2h)")
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), 0, 0, 0))
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return secs * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


@dataclass
class Filters:
    """What `find` keeps; empty lists and None match everything."""

    start_ns: int | None = None
    end_ns: int | None = None
    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # `kfl_1` / `1`: the index; else part of the KFL text
    protocols: list[str] = field(default_factory=list)
    kfl: str = ""
    streams: bool = True  # False: list the repositories (hash chains) only, match no stream

    def __post_init__(self) -> None:
        import kfl

        self.ips = [_ip(i) for i in self.ips]
        self._query = kfl.compile(self.kfl) if self.kfl else None

    def describe(self) -> dict[str, Any]:
        from wrappers.artifacts import rfc3339

        out: dict[str, Any] = {
            k: v for k, v in (
                ("from", rfc3339(self.start_ns) if self.start_ns is not None else None),
                ("to", rfc3339(self.end_ns) if self.end_ns is not None else None),
                ("ip", self.ips), ("port", self.ports), ("name", self.names), ("namespace", self.namespaces),
                ("node", self.nodes), ("query", self.queries), ("protocol", self.protocols),
                ("kfl", self.kfl),
            ) if v not in (None, [], "")
        }
        return out

    def repository_may_match(self, manifest: dict[str, Any]) -> bool:
        """A cheap test on the manifest alone: its node, query and time span."""
        if not self.streams:
            return False
        if self.nodes and str(manifest.get("node", {}).get("name")) not in self.nodes:
            return False
        if self.queries and not any(_query_matches(q, manifest.get("query", {})) for q in self.queries):
            return False
        pcap = manifest.get("pcap", {})
        if self.start_ns is not None and pcap.get("last") and parse_time(pcap["last"]) < self.start_ns:
            return False
        return not (self.end_ns is not None and pcap.get("first") and parse_time(pcap["first"]) > self.end_ns)

    def stream_matches(self, rec: dict[str, Any]) -> bool:
        if self.start_ns is not None and rec["last_ns"] < self.start_ns:
            return False
        if self.end_ns is not None and rec["first_ns"] > self.end_ns:
            return False
        ends = (rec["client"], rec["server"])
        if self.ips and not any(e["ip"] in self.ips for e in ends):
            return False
        if self.ports and not any(e["port"] in self.ports for e in ends):
            return False
        if self.names and not any(e["name"] in self.names for e in ends):
            return False
        if self.namespaces and not any(e["namespace"] in self.namespaces for e in ends):
            return False
        if self.protocols:
            have = {p.lower() for p in rec["protocols"]} | {rec["l4"].lower()}
            if not have & {p.lower() for p in self.protocols}:
                return False
        return self._query is None or self._query.match(rec)


def _query_matches(wanted: str, query: dict[str, Any]) -> bool:
    index = wanted.removeprefix("kfl_")
    if index.isdigit():
        return int(index) == query.get("index")
    return wanted in str(query.get("kfl", ""))


def stream_record(manifest: dict[str, Any], stream: dict[str, Any], data_key: str) -> dict[str, Any]:
    """The dict filters and KFL see for one stream of a manifest (docs/responder.md lists its fields)."""
    names = manifest.get("names") or {}

    def end(side: dict[str, Any]) -> dict[str, Any]:
        ip = _ip(str(side.get("ip", "")))
        known = names.get(ip) or names.get(side.get("ip")) or {}
        return {"ip": ip, "port": side.get("port"), "name": side.get("name") or known.get("name", ""),
                "namespace": side.get("namespace") or known.get("namespace", "")}

    protocols = list(stream.get("protocols") or [])
    first = protocols[0] if protocols else stream.get("l4", "")
    first_ns = parse_time(stream["first"])
    return {
        "node": manifest.get("node", {}),
        "query": manifest.get("query", {}),
        "run": manifest.get("run"),
        "repository": data_key,
        "id": stream.get("id"),
        "l4": stream.get("l4", ""),
        "client": end(stream.get("client", {})),
        "server": end(stream.get("server", {})),
        "protocol": {"name": first, "abbr": _ABBR.get(first, first.upper())},
        "protocols": protocols,
        "first": stream["first"],
        "last": stream["last"],
        "first_ns": first_ns,
        "last_ns": parse_time(stream["last"]),
        "timestamp": first_ns // 1_000_000,
        "packets": stream.get("packets", 0),
        "bytes": stream.get("bytes", 0),
        "wire_bytes": stream.get("wire_bytes", 0),
        "packet_range": stream.get("packet_range"),
        "closed": stream.get("closed", False),
        "evicted": stream.get("evicted", False),
        "truncated_packets": stream.get("truncated_packets", 0),
        "continued": stream.get("continued", False),
        "items": list(stream.get("items") or []),
        "matched_items": len(stream.get("items") or []),
    }


@dataclass
class RepoEntry:
    """The few fields of one manifest kept for every repository listed (hash chains, export)."""

    store: Store
    key: str
    sha256: str
    seq: int
    previous: str | None
    node: str
    query: dict[str, Any]
    pcap: dict[str, Any]

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.key)

    @property
    def data_key(self) -> str:
        return posixpath.join(self.folder, posixpath.basename(str(self.pcap.get("key", ""))))

    def where(self, key: str) -> str:
        """The full location of `key` in this repository's store (how problems name objects)."""
        return f"{self.store.url.rstrip('/')}/{key}"


@dataclass
class Hit:
    repo: RepoEntry
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        rec = {k: v for k, v in self.record.items() if k not in ("first_ns", "last_ns", "timestamp")}
        return {"store": self.repo.store.url, "manifest": self.repo.key, "manifest_sha256": self.repo.sha256,
                **rec}


@dataclass
class FindResult:
    hits: list[Hit] = field(default_factory=list)
    chains: dict[tuple[str, str], list[RepoEntry]] = field(default_factory=dict)  # (store, folder)
    problems: list[str] = field(default_factory=list)
    repositories: int = 0
    fetched: int = 0  # .json objects downloaded
    cached: int = 0  # .json objects read from the cache

    def chain_of(self, repo: RepoEntry) -> list[RepoEntry]:
        return self.chains.get((repo.store.identity, repo.folder), [])


def find(
    stores: Iterable[Store],
    filters: Filters,
    cache: ManifestCache,
    progress: Progress | None = None,
    prefix: str = "",
) -> FindResult:
    """The matching streams of every repository under `stores` (and `prefix`), in time order."""
    result = FindResult()
    for store in stores:
        _find_in(store, prefix, filters, cache, result, progress)
    for chain in result.chains.values():
        chain.sort(key=lambda r: (r.seq, r.key))
    result.hits.sort(key=lambda h: (h.record["first_ns"], h.repo.node, h.repo.key, str(h.record["id"])))
    return result


def _find_in(store: Store, prefix: str, filters: Filters, cache: ManifestCache, result: FindResult,
             progress: Progress | None) -> None:
    store.check_readable()
    index = cache.index(store.identity)
    listed = 0

    def on_listed(n: int) -> None:
        nonlocal listed
        listed += n
        if progress:
            progress("list", listed, None)

    infos = [i for i in store.scan(prefix, on_listed=on_listed) if i.key.endswith(".json")]
    missing = [i for i in infos if (sha := index.lookup(i)) is None or not cache.has(sha)]

    def fetch(info: ObjectInfo) -> tuple[ObjectInfo, str]:
        return info, cache.put(store.get(info.key))

    fetched = {i.key for i in missing}
    done = 0
    total = len(infos)
    if missing:
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="kflpcap-fetch") as pool:
            for info, sha in pool.map(fetch, missing):
                index.record(info, sha)
                done += 1
                if progress:
                    progress("read", done, total)
        result.fetched += len(missing)
        index.save()
    result.cached += len(infos) - len(missing)
    for info in infos:
        sha = index.lookup(info)
        body = cache.get(sha) if sha else None
        if body is None:  # lost or damaged in the cache since: fetch it again
            body = store.get(info.key)
            sha = cache.put(body)
            index.record(info, sha)
        _read_manifest(store, info.key, body, str(sha), filters, result)
        if progress and info.key not in fetched:
            done += 1
            progress("read", done, total)
    index.save()


def _read_manifest(
    store: Store, key: str, body: bytes, sha: str, filters: Filters, result: FindResult
) -> None:
    try:
        manifest = orjson.loads(body)
    except orjson.JSONDecodeError:
        if "/kfl_" in f"/{key}":
            result.problems.append(f"{store.url}: {key}: manifest is not valid JSON")
        return
    if not isinstance(manifest, dict) or not manifest.get("kflpcap_manifest"):
        return
    try:
        repo = RepoEntry(
            store, key, sha, int(manifest.get("seq", -1)), manifest.get("previous_manifest_sha256"),
            str(manifest.get("node", {}).get("name", "")), dict(manifest.get("query", {})),
            dict(manifest.get("pcap", {})),
        )
        result.repositories += 1
        result.chains.setdefault((store.identity, repo.folder), []).append(repo)
        if not filters.repository_may_match(manifest):
            return
        for stream in manifest.get("streams", []):
            rec = stream_record(manifest, stream, repo.data_key)
            if filters.stream_matches(rec):
                result.hits.append(Hit(repo, rec))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        result.problems.append(
            f"{store.url}: {key}: manifest lacks or mangles a field ({type(exc).__name__}: {exc})"
        )

