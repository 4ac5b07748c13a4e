"""Name resolution for items' `src`/`dst`: a static map file and names learned from DNS answers.

Lookup order: static `IP:port`, static `IP`, then the latest DNS answer that named the IP. The static
file (`--names`, YAML or JSON) maps `IP` or `IP:port` (`[v6]:port` for IPv6) to
`{name, namespace}` (a plain string is a name without namespace).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

Resolution = tuple[str, str]
_NONE: Resolution = ("", "")


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


class NameTable:
    """Static names plus names learned from DNS answers. `version` changes whenever it does."""

    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        self._by_ip: dict[str, Resolution] = {}
        self._by_ipport: dict[tuple[str, int], Resolution] = {}
        self._learned: dict[str, Resolution] = {}
        self.version = 0
        for key, value in (static or {}).items():
            ip, port = _parse_key(key)
            if port is None:
                self._by_ip[ip] = _parse_value(value)
            else:
                self._by_ipport[(ip, port)] = _parse_value(value)

    @classmethod
    def load(cls, path: str | Path) -> NameTable:
        """Read a static map: `.json` as JSON, anything else as YAML."""
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

    def learn(self, ip: str, dns_name: str) -> None:
        """A DNS answer said `dns_name` has address `ip`; the latest answer wins."""
        res = dns_resolution(dns_name)
        if self._learned.get(ip) != res:
            self._learned[ip] = res
            self.version += 1

    def resolve(self, ip: str, port: int) -> Resolution:
        """(name, namespace) of an endpoint, ("", "") when unknown."""
        if self._by_ipport:
            res = self._by_ipport.get((ip, port))
            if res is not None:
                return res
        res = self._by_ip.get(ip)
        if res is not None:
            return res
        return self._learned.get(ip, _NONE)

    def snapshot(self) -> dict[str, dict[str, str]]:
        """The table as of now: `IP` or `IP:port` -> {ip, port, name, namespace, source}."""
        out: dict[str, dict[str, str]] = {}
        for ip, (name, ns) in self._learned.items():
            out[ip] = {"ip": ip, "port": "", "name": name, "namespace": ns, "source": "dns"}
        for ip, (name, ns) in self._by_ip.items():
            out[ip] = {"ip": ip, "port": "", "name": name, "namespace": ns, "source": "static"}
        for (ip, port), (name, ns) in self._by_ipport.items():
            key = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            out[key] = {"ip": ip, "port": str(port), "name": name, "namespace": ns, "source": "static"}
        return out
