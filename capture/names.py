"""Name resolution for items' `src`/`dst`: a static map file, Kubernetes identities and names
learned from DNS answers.

Lookup order: static `IP:port`, static `IP`, Kubernetes `IP:port` then `IP` as of the item's
capture time, then the latest DNS answer that named the IP. The static file (`--names`, YAML or
JSON) maps `IP` or `IP:port` (`[v6]:port` for IPv6) to `{name, namespace}` (a plain string is a
name without namespace) or to a list of time-indexed Kubernetes identities
`[{since, until, name, namespace, pod, service, endpointSlice, resolutionMechanism}]` as
`kflpcap k8s snapshot` writes them (times in ns or RFC 3339; `until` null while current).

With Kubernetes identities (a resolver attached or such a file loaded) every endpoint carries the
full shape: `name`, `namespace`, `pod`, `service`, `endpointSlice`, `resolutionMechanism`.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from capture.k8s.history import FOREVER, History, key_of
from capture.k8s.objects import brief as brief_identity
from capture.k8s.objects import timestamp_ns

Resolution = tuple[str, str]
_NONE: Resolution = ("", "")
Window = tuple[dict[str, Any], int, int]


def _norm_ip(text: str) -> str:
    return str(ipaddress.ip_address(text.strip().strip("[]")))


def _parse_key(key: str) -> tuple[str, int | None]:
    """`10.0.0.1` / `10.0.0.1:80` / `fd00::1` / `[fd00::1]:80` -> (normalised ip, port or None)."""
    key = str(key).strip()
    if key.startswith("["):
        host, _, rest = key[1:].partition("]")
        return _norm_ip(host), int(rest[1:]) if rest.startswith(":") else None
    if key.count(":") == 1:
        host, port = key.split(":")
        return _norm_ip(host), int(port)
    return _norm_ip(key), None


def _parse_value(value: Any) -> Resolution:
    if isinstance(value, str):
        return value, ""
    if isinstance(value, Mapping):
        return str(value.get("name") or ""), str(value.get("namespace") or "")
    raise ValueError(f"expected a name or {{name, namespace}}, got {value!r}")


def dns_resolution(dns_name: str) -> Resolution:
    """A Kubernetes service/pod DNS name gives (name, namespace); any other name is the name."""
    labels = dns_name.rstrip(".").split(".")
    for i in range(2, len(labels)):
        if labels[i] in ("svc", "pod") and i + 1 < len(labels):
            return labels[0], labels[i - 1]
    return dns_name.rstrip("."), ""


def _time(value: Any) -> int | None:
    if value is None or isinstance(value, int):
        return value
    ns = timestamp_ns(value)
    if ns is None:
        raise ValueError(f"not a time: {value!r}")
    return ns


def _load_intervals(history: History, key: str, entries: list[Any]) -> None:
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValueError(f"{key}: expected {{since, until, name, ...}} entries, got {entry!r}")
    for entry in sorted(entries, key=lambda e: _time(e.get("since")) or 0):
        ident = {k: v for k, v in entry.items() if k not in ("since", "until")}
        ident.setdefault("name", "")
        ident.setdefault("namespace", "")
        history.set(key, ident, _time(entry.get("since")) or 0)
        until = _time(entry.get("until"))
        if until is not None:
            history.set(key, None, until)


def _k8s_shape(name: str, namespace: str, mechanism: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "pod": None, "service": None, "endpointSlice": None,
            "resolutionMechanism": mechanism}


class NameTable:
    """Static names, Kubernetes identities and names learned from DNS answers. `version` changes
    whenever any of them does."""

    def __init__(self, static: Mapping[str, Any] | None = None, k8s: History | None = None) -> None:
        self._by_ip: dict[str, Resolution] = {}
        self._by_ipport: dict[tuple[str, int], Resolution] = {}
        # the names DNS answers gave, per IP in the order learned: (packets read then, name); the
        # last one holds now, `snapshot(upto=...)` finds the one that held then
        self._answers: dict[str, list[tuple[int, Resolution]]] = {}
        # the capture's count of packets read (set by whoever feeds it): when an answer was learned
        self.seq: Callable[[], int] = lambda: 0
        self._version = 0
        self.k8s = k8s
        for key, value in (static or {}).items():
            ip, port = _parse_key(key)
            if isinstance(value, list):
                if self.k8s is None:
                    self.k8s = History()
                _load_intervals(self.k8s, key_of(ip, port), value)
            elif port is None:
                self._by_ip[ip] = _parse_value(value)
            else:
                self._by_ipport[(ip, port)] = _parse_value(value)

    @classmethod
    def load(cls, path: str | Path) -> NameTable:
        """Read a static map: `.json` as JSON, anything else as YAML."""
        import yaml  # here, not at start-up: most runs read no YAML

        text = Path(path).read_text()
        try:
            data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a mapping of IP or IP:port to names")
        return cls(data)

    @property
    def version(self) -> int:
        return self._version if self.k8s is None else self._version + self.k8s.version

    def attach(self, history: History) -> None:
        """Resolve with Kubernetes identities from `history` (a resolver's) from now on."""
        self.k8s = history
        self._version += 1

    def learn(self, ip: str, dns_name: str) -> None:
        """A DNS answer said `dns_name` has address `ip`; the latest answer wins."""
        res = dns_resolution(dns_name)
        answers = self._answers.setdefault(ip, [])
        if not answers or answers[-1][1] != res:
            answers.append((self.seq(), res))
            self._version += 1

    def _learned_now(self, ip: str) -> Resolution:
        answers = self._answers.get(ip)
        return answers[-1][1] if answers else _NONE

    def endpoint(self, ip: str, port: int, ts_ns: int) -> Window:
        """(the name fields of an endpoint as of `ts_ns`, lo, hi): the answer holds for capture times
        in [lo, hi) while `version` stays the same."""
        res = self._by_ipport.get((ip, port)) if self._by_ipport else None
        if res is None:
            res = self._by_ip.get(ip)
        if self.k8s is None:
            if res is not None:
                return {"name": res[0], "namespace": res[1], "resolutionMechanism": "ip"}, 0, FOREVER
            name, ns = self._learned_now(ip)
            return {"name": name, "namespace": ns, "resolutionMechanism": "dns" if name else "none"}, 0, \
                FOREVER
        if res is not None:
            return _k8s_shape(res[0], res[1], "ip"), 0, FOREVER
        ident, lo, hi = self.k8s.lookup(key_of(ip, port), ts_ns)
        if ident is None:
            ident, lo2, hi2 = self.k8s.lookup(ip, ts_ns)
            lo, hi = max(lo, lo2), min(hi, hi2)
        if ident is not None:
            return dict(ident), lo, hi
        name, ns = self._learned_now(ip)
        return _k8s_shape(name, ns, "dns" if name else "none"), lo, hi

    def resolve(self, ip: str, port: int) -> Resolution:
        """(name, namespace) of an endpoint now, ("", "") when unknown."""
        fields = self.endpoint(ip, port, time.time_ns())[0]
        return fields["name"], fields["namespace"]

    def snapshot(self, brief: bool = False, upto: int | None = None) -> dict[str, dict[str, Any]]:
        """The table as of now: `IP` or `IP:port` -> {ip, port, name, namespace, source} (Kubernetes
        identities add pod, service, endpointSlice and resolutionMechanism, or with `brief` the
        few fields of `capture.k8s.objects.brief`). With `upto`, the DNS names are those learned by
        the time the capture had read `upto` packets."""
        out: dict[str, dict[str, Any]] = {}
        for ip, answers in self._answers.items():
            if upto is None or answers[-1][0] <= upto:
                name, ns = answers[-1][1]
            else:
                known = [res for seq, res in answers if seq <= upto]
                if not known:
                    continue
                name, ns = known[-1]
            out[ip] = {"ip": ip, "port": "", "name": name, "namespace": ns, "source": "dns"}
        for key, ident in self.k8s.open_keys() if self.k8s is not None else ():
            ip, port = _parse_key(key)
            fields = brief_identity(ident) if brief else ident
            out[key] = {"ip": ip, "port": "" if port is None else str(port), **fields, "source": "k8s"}
        for ip, (name, ns) in self._by_ip.items():
            out[ip] = {"ip": ip, "port": "", "name": name, "namespace": ns, "source": "static"}
        for (ip, port), (name, ns) in self._by_ipport.items():
            key = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            out[key] = {"ip": ip, "port": str(port), "name": name, "namespace": ns, "source": "static"}
        return out
