"""Items built by hand in the docs/items.md shape (HTTP/1.1 and DNS), for runtime tests and the bench."""

from __future__ import annotations

import base64
import random
from typing import Any

NODE = {"name": "node-1", "ip": "10.0.0.1"}


def _identity(stream: str) -> dict[str, Any]:
    """The fields that say which item of which stream on which node (its first item)."""
    return {"id": f"{NODE['name']}/{stream}-0", "index": 0, "stream": stream, "node": dict(NODE),
            "worker": f"{NODE['ip']}:0"}


def http_item(
    n: int,
    status: int = 200,
    method: str = "GET",
    path: str = "/api/v1/users/1",
    body: bytes = b'{"ok":true}',
    ts_ms: int = 1_700_000_000_000,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_identity(f"{n:012d}.pcap"),
        "protocol": {
            "name": "http",
            "version": "1.1",
            "abbr": "HTTP",
            "longName": "Hypertext Transfer Protocol -- HTTP/1.1",
            "macro": "http",
            "layer4": "tcp",
            "ports": ["80", "8080"],
        },
        "tls": False,
        "src": {
            "ip": f"10.1.{n % 250}.{n % 200 + 1}",
            "port": str(30000 + n % 30000),
            "name": "",
            "namespace": "",
        },
        "dst": {"ip": "10.2.0.5", "port": "80", "name": "catalogue", "namespace": "shop"},
        "outgoing": False,
        "timestamp": ts_ms + n,
        "startTime": "2023-11-14T22:13:20.123456789Z",
        "request": {
            "method": method,
            "url": path + "?size=5",
            "targetUri": path + "?size=5",
            "path": path,
            "pathSegments": path.strip("/").split("/"),
            "httpVersion": "HTTP/1.1",
            "headers": {"Accept": "application/json", "Host": "catalogue", "User-Agent": "curl/8.1.2"},
            "cookies": {},
            "queryString": {"size": "5"},
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "OK" if status < 400 else "Error",
            "httpVersion": "HTTP/1.1",
            "headers": {"Content-Length": str(len(body)), "Content-Type": "application/json"},
            "cookies": {},
            "content": {
                "size": len(body),
                "mimeType": "application/json",
                "encoding": "base64",
                "text": base64.b64encode(body).decode(),
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(body),
        },
        "requestSize": 112,
        "responseSize": 178,
        "elapsedTime": 12,
        "passed": False,
        "failed": False,
    }
    return item


def dns_item(
    n: int, name: str = "catalogue.shop.svc.cluster.local", code: str = "No Error"
) -> dict[str, Any]:
    return {
        **_identity(f"{n:012d}_udp.pcap"),
        "protocol": {
            "name": "dns",
            "version": "0",
            "abbr": "DNS",
            "longName": "Domain Name System",
            "macro": "dns",
            "layer4": "udp",
            "ports": [],
        },
        "tls": False,
        "src": {"ip": f"10.1.0.{n % 200 + 1}", "port": "40512", "name": f"pod-{n % 7}", "namespace": "shop"},
        "dst": {"ip": "10.2.0.10", "port": "53", "name": "kube-dns", "namespace": "kube-system"},
        "outgoing": False,
        "timestamp": 1_700_000_000_500 + n,
        "startTime": "2023-11-14T22:13:20.500000000Z",
        "request": {"opCode": "Query", "questions": [{"name": name, "type": "A", "class": "IN"}]},
        "response": {
            "code": code,
            "answers": [
                {
                    "name": name,
                    "type": "A",
                    "class": "IN",
                    "ttl": 5,
                    "ip": "10.2.40.11",
                    "ns": "",
                    "cname": "",
                    "ptr": "",
                    "txts": "",
                    "soa": "",
                    "srv": "",
                    "mx": "",
                }
            ],
            "authorities": [],
            "additionals": [],
        },
        "requestSize": 90,
        "responseSize": 154,
        "elapsedTime": 0,
        "passed": False,
        "failed": False,
    }


def http_mix(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A realistic HTTP-heavy mix: 85 % HTTP (about 5 % of them 500s), 15 % DNS, varied bodies."""
    rnd = random.Random(seed)
    out = []
    for n in range(count):
        if rnd.random() < 0.15:
            out.append(dns_item(n, name=f"svc-{rnd.randrange(40)}.shop.svc.cluster.local"))
            continue
        status = rnd.choices([200, 201, 204, 301, 404, 500], weights=[70, 5, 5, 3, 12, 5])[0]
        path = (
            "/api/v1/"
            + rnd.choice(["users", "orders", "catalogue", "cart", "health"])
            + f"/{rnd.randrange(9999)}"
        )
        body = rnd.randbytes(rnd.randrange(16, 600))
        out.append(
            http_item(
                n,
                status=status,
                method=rnd.choice(["GET", "GET", "GET", "POST", "PUT"]),
                path=path,
                body=body,
            )
        )
    return out
