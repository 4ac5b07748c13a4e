"""The item schema (docs/items.md), as a checker other test packages import.

    from tests.items.schema import check_item, problems
    check_item(item)        # AssertionError listing every problem
    problems(item) -> list  # the same, as strings ([] when the item is well formed)
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from typing import Any

ENDPOINT_TEXT = ("ip", "port", "name", "namespace", "containerId", "processName", "resolutionMechanism")
ENDPOINT_INT = ("cgroupId", "socketId", "processId", "parentProcessId", "hostProcessId",
                "hostParentProcessId")
MECHANISMS = {"none", "ip", "ip-and-port", "dns", "http-header", "cgroup-id", "container-id", "syscall",
              "sidecar-proxy"}
STREAM = re.compile(r"\d{12}(_udp)?\.pcap\Z")
START_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{9})Z\Z")
ERROR_TYPES = {"dissection", "timeout", "connection", "pair-not-found"}
RCODES = {"No Error", "Format Error", "Server Failure", "Non-Existent Domain", "Not Implemented",
          "Query Refused", "Unknown", "Name Exists when it should not", "RR Set Exists when it should not",
          "RR Set that should exist does not", "Server Not Authoritative for zone",
          "Name not contained in zone", "Bad OPT Version", "Key not recognized",
          "Signature out of time window", "Bad TKEY Mode", "Duplicate key name", "Algorithm not supported",
          "Bad Truncation"}
RR_TEXT = ("name", "type", "class", "ip", "ns", "cname", "ptr", "txts", "soa", "srv", "mx", "opt", "uri")
PROTOCOLS = {  # name -> the (abbr, macro) pairs it comes with
    "http": {("HTTP", "http"), ("HTTP/2", "http2"), ("gRPC", "grpc")},
    "dns": {("DNS", "dns")},
    "tcp": {("TCP", "tcp")},
    "udp": {("UDP", "udp")},
    "tls": {("TLS", "tls")},
    "redis": {("REDIS", "redis")},
}

class _Check:
    def __init__(self) -> None:
        self.out: list[str] = []

    def fail(self, path: str, what: str) -> None:
        self.out.append(f"{path}: {what}")

    def typed(self, obj: Any, key: str, kind: type | tuple[type, ...], path: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            self.fail(f"{path}.{key}", "missing")
            return None
        value = obj[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.fail(f"{path}.{key}", f"expected {getattr(kind, '__name__', kind)}, got {value!r:.60}")
            return None
        return value

    def str_map(self, obj: Any, key: str, path: str, lists: bool = False) -> None:
        value = self.typed(obj, key, dict, path)
        for k, v in (value or {}).items():
            ok = isinstance(v, str) or lists and isinstance(v, list) and all(isinstance(x, str) for x in v)
            if not isinstance(k, str) or not ok:
                self.fail(f"{path}.{key}[{k!r}]", f"expected string{' or list of strings' if lists else ''}")

def problems(item: Any) -> list[str]:
    """Every way `item` departs from the docs/items.md shape."""
    c = _Check()
    if not isinstance(item, dict):
        return [f"item: expected dict, got {type(item).__name__}"]
    node = c.typed(item, "node", dict, "item")
    c.typed(node, "name", str, "node")
    c.typed(node, "ip", str, "node")
    index = c.typed(item, "index", int, "item")
    stream = c.typed(item, "stream", str, "item")
    item_id = c.typed(item, "id", str, "item")
    if index is not None and index < 0:
        c.fail("item.index", "negative")
    if stream is not None and not STREAM.match(stream):
        c.fail("item.stream", f"not a stream id: {stream!r}")
    if None not in (node, stream, index, item_id) and item_id != f"{node.get('name')}/{stream}-{index}":
        c.fail("item.id", f"{item_id!r} is not <node>/<stream>-<index>")
    worker = c.typed(item, "worker", str, "item")
    if node and worker is not None and worker != f"{node.get('ip')}:0":
        c.fail("item.worker", f"{worker!r} is not <node ip>:0")
    proto = c.typed(item, "protocol", dict, "item") or {}
    for key in ("name", "version", "abbr", "longName", "macro", "layer4"):
        c.typed(proto, key, str, "protocol")
    ports = c.typed(proto, "ports", list, "protocol")
    if ports is not None and not all(isinstance(p, str) for p in ports):
        c.fail("protocol.ports", "expected strings")
    name = proto.get("name")
    if name not in PROTOCOLS:
        c.fail("protocol.name", f"unknown protocol {name!r}")
    elif (proto.get("abbr"), proto.get("macro")) not in PROTOCOLS[name]:
        c.fail("protocol", f"abbr/macro {proto.get('abbr')!r}/{proto.get('macro')!r} do not fit {name!r}")
    layer4 = proto.get("layer4")
    if layer4 not in ("tcp", "udp"):
        c.fail("protocol.layer4", f"{layer4!r}")
    elif stream and STREAM.match(stream) and (layer4 == "udp") != stream.endswith("_udp.pcap"):
        c.fail("protocol.layer4", f"{layer4} does not fit stream {stream}")
    if c.typed(proto, "layer3", str, "protocol") not in (None, "ipv4", "ipv6"):
        c.fail("protocol.layer3", f"{proto['layer3']!r}")
    for key in ("fontSize", "priority"):
        c.typed(proto, key, int, "protocol")
    if c.typed(item, "tls", bool, "item") is True:
        c.fail("item.tls", "true without TLS decryption")
    for end in ("src", "dst"):
        ep = c.typed(item, end, dict, "item")
        for key in ENDPOINT_TEXT:
            c.typed(ep, key, str, end)
        for key in ENDPOINT_INT:
            c.typed(ep, key, int, end)
        for key in ("pod", "endpointSlice", "service"):
            if ep is not None and key in ep and ep[key] is None:
                continue
            c.typed(ep, key, dict, end)
        if ep and ep.get("resolutionMechanism") not in MECHANISMS:
            c.fail(f"{end}.resolutionMechanism", f"{ep.get('resolutionMechanism')!r}")
        if ep and isinstance(ep.get("port"), str) and not ep["port"].isdigit():
            c.fail(f"{end}.port", f"not a port number: {ep['port']!r}")
    c.typed(item, "outgoing", bool, "item")
    ts = c.typed(item, "timestamp", int, "item")
    start = c.typed(item, "startTime", str, "item")
    if start is not None:
        m = START_TIME.match(start)
        if not m:
            c.fail("item.startTime", f"not RFC 3339 UTC with nanoseconds: {start!r}")
        elif ts is not None:

            y, mo, d, h, mi, s, frac = (int(g) for g in m.groups())
            ms = calendar.timegm((y, mo, d, h, mi, s)) * 1000 + frac // 1_000_000
            if ms != ts:
                c.fail("item.timestamp", f"{ts} is not startTime {start} in ms")
    for key in ("requestSize", "responseSize", "elapsedTime"):
        value = c.typed(item, key, int, "item")
        if value is not None and value < 0:
            c.fail(f"item.{key}", "negative")
    c.typed(item, "passed", bool, "item")
    c.typed(item, "failed", bool, "item")
    _kubeshark_2024(c, item, stream, index)
    err = item.get("error")
    if err is not None:
        etype = c.typed(item, "error", dict, "item") and c.typed(err, "type", str, "error")
        c.typed(err, "msg", str, "error")
        if etype and etype not in ERROR_TYPES:
            c.fail("error.type", f"{etype!r}")
    if name == "http":
        _http(c, item)
    elif name == "dns":
        _dns(c, item)
    elif name in ("tcp", "udp"):
        _generic(c, item)
    elif name == "tls":
        _tls(c, item)
    elif name == "redis":
        _redis(c, item)
    return c.out

def _kubeshark_2024(c: _Check, item: dict, stream: Any, index: Any) -> None:
    """The top-level fields Kubeshark's late-2024 items added (docs/items.md)."""
    entry = c.typed(item, "entryFile", str, "item")
    expected = f"{stream.replace('.', '_')}-{index}_entry.json" if isinstance(stream, str) else None
    if entry is not None and expected is not None and entry != expected:
        c.fail("item.entryFile", f"{entry!r} is not <stream with . as _>-<index>_entry.json")
    if c.typed(item, "pcapFile", str, "item") not in (None, stream):
        c.fail("item.pcapFile", "differs from stream")
    for key in ("requestRef", "responseRef", "eventRef", "dataRef", "record", "duplicate"):
        c.typed(item, key, str, "item")
    for key in ("event", "base"):
        if item.get(key, {}) is not None:
            c.typed(item, key, dict, "item")
    if "data" not in item:
        c.fail("item.data", "missing")
    checksums = c.typed(item, "checksums", list, "item")
    if checksums is not None and not all(isinstance(x, str) for x in checksums):
        c.fail("item.checksums", "expected strings")
    size = c.typed(item, "size", int, "item")
    if size is not None and size != item.get("requestSize", 0) + item.get("responseSize", 0):
        c.fail("item.size", f"{size} is not requestSize + responseSize")
    capture = c.typed(item, "capture", dict, "item")
    c.typed(capture, "backend", str, "capture")
    c.typed(capture, "source", str, "capture")
    proxy = c.typed(capture, "proxy", dict, "capture")
    c.typed(proxy, "name", str, "capture.proxy")
    c.typed(proxy, "pid", int, "capture.proxy")
    vlan = c.typed(capture, "vlan", dict, "capture")
    c.typed(vlan, "id", int, "capture.vlan")
    c.typed(vlan, "dot1q", bool, "capture.vlan")


def _base64(c: _Check, text: Any, path: str) -> None:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        c.fail(path, "not base64")

def _http(c: _Check, item: dict) -> None:
    req = c.typed(item, "request", dict, "item")
    if req is not None:
        for key in ("method", "url", "targetUri", "path", "httpVersion"):
            c.typed(req, key, str, "request")
        if req.get("targetUri") != req.get("url"):
            c.fail("request.targetUri", "differs from url")
        segs = c.typed(req, "pathSegments", list, "request")
        if segs is not None and not all(isinstance(s, str) for s in segs):
            c.fail("request.pathSegments", "expected strings")
        for key in ("headers", "cookies"):
            c.str_map(req, key, "request")
        c.str_map(req, "queryString", "request", lists=True)
        if c.typed(req, "headersSize", int, "request") not in (None, -1):
            c.fail("request.headersSize", "expected -1")
        if (c.typed(req, "bodySize", int, "request") or 0) < 0:
            c.fail("request.bodySize", "negative")
        post = req.get("postData")
        if post is not None:
            c.typed(req, "postData", dict, "request")
            c.typed(post, "mimeType", str, "postData")
            text = c.typed(post, "text", str, "postData")
            if post.get("encoding", "base64") != "base64":
                c.fail("postData.encoding", f"{post.get('encoding')!r}")
            elif "encoding" in post and text is not None:
                _base64(c, text, "postData.text")
    resp = c.typed(item, "response", dict, "item")
    if resp is None:
        return
    status = c.typed(resp, "status", int, "response")
    if status == 0:
        if "error" not in item:
            c.fail("response.status", "0 (no response) without an error")
    elif status is not None and not 100 <= status <= 999:
        c.fail("response.status", f"{status}")
    for key in ("statusText", "httpVersion", "redirectURL"):
        c.typed(resp, key, str, "response")
    for key in ("headers", "cookies"):
        c.str_map(resp, key, "response")
    if c.typed(resp, "headersSize", int, "response") not in (None, -1):
        c.fail("response.headersSize", "expected -1")
    if (c.typed(resp, "bodySize", int, "response") or 0) < 0:
        c.fail("response.bodySize", "negative")
    content = c.typed(resp, "content", dict, "response")
    if content is not None:
        if (c.typed(content, "size", int, "content") or 0) < 0:
            c.fail("content.size", "negative")
        c.typed(content, "mimeType", str, "content")
        if content.get("encoding") != "base64":
            c.fail("content.encoding", f"{content.get('encoding')!r}")
        text = c.typed(content, "text", str, "content")
        if text is not None:
            _base64(c, text, "content.text")

def _dns(c: _Check, item: dict) -> None:
    req = c.typed(item, "request", dict, "item")
    if req is not None:
        c.typed(req, "opCode", str, "request")
        for i, q in enumerate(c.typed(req, "questions", list, "request") or []):
            for key in ("name", "type", "class"):
                c.typed(q, key, str, f"request.questions[{i}]")
    resp = c.typed(item, "response", dict, "item")
    if resp is None:
        return
    code = c.typed(resp, "code", str, "response")
    if code == "":
        if "error" not in item:
            c.fail("response.code", "empty (no answer) without an error")
    elif code is not None and code not in RCODES:
        c.fail("response.code", f"{code!r} is not a Kubeshark RCODE text")
    for section in ("answers", "authorities", "additionals"):
        for i, rr in enumerate(c.typed(resp, section, list, "response") or []):
            path = f"response.{section}[{i}]"
            for key in RR_TEXT:
                c.typed(rr, key, str, path)
            c.typed(rr, "ttl", int, path)

def _generic(c: _Check, item: dict) -> None:
    for key in ("request", "response"):
        if key in item:
            c.fail(f"item.{key}", "present in a generic item")
    data = c.typed(item, "data", dict, "item")
    payload = c.typed(data, "payload", str, "data")
    if payload is not None and len(payload) > 1024:
        c.fail("data.payload", f"{len(payload)} characters, more than 1 KiB")
    for key in ("bytes", "packets"):
        if (c.typed(data, key, int, "data") or 0) < 0:
            c.fail(f"data.{key}", "negative")

def _tls(c: _Check, item: dict) -> None:
    req = c.typed(item, "request", dict, "item")
    if c.typed(req, "type", str, "request") not in (None, "ClientHello"):
        c.fail("request.type", f"{req['type']!r}")
    complete = "sni" in (req or {})
    if complete:
        c.typed(req, "sni", str, "request")
        for key in ("alpn", "supportedVersions", "cipherSuites", "extensions"):
            c.typed(req, key, list, "request")
        for key in ("ja3", "ja3Full", "ja4", "ja4Raw", "maxVersion"):
            c.typed(req, key, str, "request")
    elif "error" not in item:
        c.fail("item.request", "no ClientHello fields without an error")
    resp = item.get("response")
    if resp is None:
        if "error" not in item:
            c.fail("item.response", "missing without an error")
        return
    kind = c.typed(resp, "type", str, "response")
    if kind == "ServerHello":
        for key in ("version", "cipherSuite", "cipherSuiteCode", "alpn", "ja3s"):
            c.typed(resp, key, str, "response")
    elif kind == "Alert":
        alert = c.typed(resp, "alert", dict, "response")
        c.typed(alert, "code", int, "alert")
        c.typed(alert, "description", str, "alert")
    else:
        c.fail("response.type", f"{kind!r}")

def _redis(c: _Check, item: dict) -> None:
    req, resp = item.get("request"), item.get("response")
    if req is None and resp is None:
        c.fail("item", "neither request nor response")
    if req is not None:
        for key in ("type", "command", "key", "value", "keyword"):
            c.typed(req, key, str, "request")
        args = c.typed(req, "args", list, "request")
        if args is not None and not all(isinstance(a, str) for a in args):
            c.fail("request.args", "expected strings")
    elif not (resp or {}).get("push") and "error" not in item:
        c.fail("item.request", "missing in an item that is neither a push nor an error")
    if resp is not None:
        c.typed(resp, "type", str, "response")
        c.typed(resp, "keyword", str, "response")
        if "value" not in resp:
            c.fail("response.value", "missing")
        if resp.get("type") == "Error":
            c.typed(resp, "error", str, "response")
    elif "error" not in item:
        c.fail("item.response", "missing without an error")

def check_item(item: Any) -> None:
    """Raise AssertionError listing every problem of `item` (None when it is well formed)."""
    found = problems(item)
    if found:
        raise AssertionError(f"item {item.get('id') if isinstance(item, dict) else item!r} is malformed:\n  "
                             + "\n  ".join(found))
