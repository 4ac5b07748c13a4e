"""HTTP/1.x messages and the Kubeshark `request`/`response` objects built from them.

`Message` is what the parser fills in; `request_obj`/`response_obj` turn a finished one into the
item's maps: Go-canonical header names (repeated headers joined with `,`), cookie and query maps,
the body after Content-Encoding gzip/deflate (capped, base64 for responses, truncation flagged),
Go's status texts.
"""

from __future__ import annotations

import re
import zlib
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from pybase64 import b64encode_as_string

# Go's net/http StatusText, which Kubeshark puts in `statusText`.
STATUS_TEXT = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 414: "Request URI Too Long", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
    425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended",
    511: "Network Authentication Required",
}

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_canon: dict[bytes, str] = {}


class Message:
    """One request or response as parsed; `headers` keep the bytes as sent."""

    __slots__ = ("body", "body_len", "chunk_mark", "done", "error", "exchange", "framing",
                 "head_done", "headers", "method", "missing", "reason", "status", "truncated", "ts", "url",
                 "version")

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.method = b""
        self.url = b""
        self.reason = b""
        self.status = 0
        self.version = "1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.body_len = 0
        self.truncated = False
        self.chunk_mark = 0
        self.framing = 0  # chunk-size lines and CRLFs around chunk data
        self.head_done = False
        self.done = False
        self.missing = 0  # body bytes the capture lacks
        self.error: dict[str, str] | None = None
        self.exchange: Any = None  # the request/response pair it belongs to

    def framing_headers(self) -> tuple[int | None, bool]:
        """(Content-Length, chunked Transfer-Encoding) as the headers say (the last Content-Length;
        None when absent or not a number)."""
        cl = None
        chunked = False
        for name, value in self.headers:
            size = len(name)
            if size == 14 and name.lower() == b"content-length":
                try:
                    cl = int(value)
                except ValueError:
                    cl = None
            elif size == 17 and name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        return cl, chunked


def status_text(status: int) -> str:
    return STATUS_TEXT.get(status, "")


def canonical(name: bytes) -> str:
    """Go's CanonicalMIMEHeaderKey: `content-type` -> `Content-Type`; non-token names unchanged."""
    key = _canon.get(name)
    if key is None:
        text = name.decode("latin-1")
        if _TOKEN.match(name):
            key = "-".join(part[:1].upper() + part[1:].lower() for part in text.split("-"))
        else:
            key = text
        if len(_canon) > 4096:
            _canon.clear()
        _canon[name] = key
    return key


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace")


def headers_and_size(msg: Message) -> tuple[dict[str, str], int]:
    """The header map and the size of the header lines on the wire."""
    out: dict[str, str] = {}
    size = 2
    canon = _canon
    for name, value in msg.headers:
        size += len(name) + len(value) + 4
        key = canon.get(name) or canonical(name)
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = value.decode("utf-8", "replace")
        prev = out.get(key)
        out[key] = text if prev is None else f"{prev},{text}"
    return out, size


def _merge(out: dict[str, Any], name: str, value: str) -> None:
    prev = out.get(name)
    out[name] = value if prev is None else f"{prev},{value}"


def cookies(header: str) -> dict[str, str]:
    """`Cookie: a=1; b=2` -> {"a": "1", "b": "2"} (a repeated name: values joined with `,`)."""
    out: dict[str, str] = {}
    if header:
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if sep and name:
                _merge(out, name, value.strip().strip('"'))
    return out


def set_cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Every `Set-Cookie` header's name=value (attributes dropped)."""
    out: dict[str, str] = {}
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"set-cookie":
            pair = _text(value).split(";", 1)[0]
            cname, sep, cvalue = pair.partition("=")
            cname = cname.strip()
            if sep and cname:
                _merge(out, cname, cvalue.strip().strip('"'))
    return out


def query_pairs(query: str) -> list[tuple[str, str]]:
    """`a=1&b=&a=2` -> [(a, 1), (b, ""), (a, 2)], `+` and %-escapes decoded (Go's ParseQuery)."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key, value = unquote_plus(key), unquote_plus(value)
        pairs.append((key, value))
    return pairs


def query_map(query: str) -> dict[str, Any]:
    """Query parameters; a repeated name maps to the list of its values."""
    out: dict[str, Any] = {}
    for key, value in query_pairs(query):
        prev = out.get(key)
        if prev is None:
            out[key] = value
        elif isinstance(prev, list):
            prev.append(value)
        else:
            out[key] = [prev, value]
    return out


def decoded_body(msg: Message, coding: str, cap: int) -> tuple[bytes | bytearray, bool, bool]:
    """(body after Content-Encoding gzip/deflate, at most `cap` bytes; is it cut; was it decoded)."""
    body = msg.body
    if not body or not coding:
        return body, msg.truncated, False
    coding = coding.strip().lower()
    if coding not in ("gzip", "x-gzip", "deflate"):
        return body, msg.truncated, False
    for wbits in ((47,) if coding != "deflate" else (15, -15)):
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, cap)
        except zlib.error:
            continue
        return out, msg.truncated or bool(d.unconsumed_tail) or (not d.eof and len(out) >= cap), True
    return body, msg.truncated, False


def request_obj(msg: Message, cap: int) -> tuple[dict[str, Any], int]:
    """(Kubeshark `request`, its size on the wire)."""
    url = msg.url.decode("utf-8", "replace")
    if url.startswith("/") or "://" not in url:
        path, _, query = url.partition("?")
        if "#" in path:
            path = path.partition("#")[0]
    else:
        parts = urlsplit(url)
        path, query = parts.path, parts.query
    if "%" in path:
        path = unquote(path)
    headers, head_size = headers_and_size(msg)
    cookie = headers.get("Cookie")
    req: dict[str, Any] = {
        "method": msg.method.decode("latin-1"),
        "url": url,
        "targetUri": url,
        "path": path,
        "pathSegments": path.split("/")[1:],
        "httpVersion": f"HTTP/{msg.version}",
        "headers": headers,
        "cookies": cookies(cookie) if cookie else {},
        "queryString": query_map(query) if query else {},
        "headersSize": -1,
        "bodySize": msg.body_len,
    }
    if msg.body_len:
        data, cut, _ = decoded_body(msg, headers.get("Content-Encoding", ""), cap)
        mime = headers.get("Content-Type", "")
        post: dict[str, Any] = {"mimeType": mime, "params": []}
        try:
            post["text"] = text = data.decode("utf-8")
            if mime.startswith("application/x-www-form-urlencoded"):
                post["params"] = [{"name": k, "value": v} for k, v in query_pairs(text)]
        except UnicodeDecodeError:
            post["text"] = b64encode_as_string(data)
            post["encoding"] = "base64"
        if cut:
            post["truncated"] = True
        req["postData"] = post
    size = len(msg.method) + len(msg.url) + 12 + head_size + msg.body_len + msg.framing if msg.method else 0
    return req, size


def response_obj(msg: Message, cap: int) -> tuple[dict[str, Any], int]:
    """(Kubeshark `response`, its size on the wire)."""
    headers, head_size = headers_and_size(msg)
    data = msg.body
    if data and "Content-Encoding" in headers:
        data, cut, decoded = decoded_body(msg, headers["Content-Encoding"], cap)
        size = len(data) if decoded else msg.body_len
    else:
        cut = msg.truncated
        size = msg.body_len
    content: dict[str, Any] = {"size": size, "mimeType": headers.get("Content-Type", ""),
                               "encoding": "base64"}
    if data:
        content["text"] = b64encode_as_string(data)
    if cut:
        content["truncated"] = True
    status = msg.status
    resp = {
        "status": status,
        "statusText": STATUS_TEXT.get(status, ""),
        "httpVersion": f"HTTP/{msg.version}",
        "headers": headers,
        "cookies": set_cookies(msg.headers) if "Set-Cookie" in headers else {},
        "content": content,
        "redirectURL": headers.get("Location", "") if 300 <= status < 400 else "",
        "headersSize": -1,
        "bodySize": msg.body_len,
    }
    return resp, len(msg.reason) + 15 + head_size + msg.body_len + msg.framing
