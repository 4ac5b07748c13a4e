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
cached_key = _canon.get  # header name -> canonical name, None until `canonical` saw it


class Message:
    """One request or response as parsed: `headers` by canonical name (repeats joined with `,`),
    `head_size` the bytes of the header lines, `set_cookie` each Set-Cookie value."""

    __slots__ = ("body", "body_len", "chunk_mark", "done", "error", "exchange", "framing", "head_done",
                 "head_size", "headers", "method", "missing", "reason", "set_cookie", "status", "truncated",
                 "ts", "url", "version")

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.method = b""
        self.url = b""
        self.reason = b""
        self.status = 0
        self.version = "1.1"
        self.headers: dict[str, str] = {}
        self.head_size = 2  # the empty line
        self.set_cookie: list[str] | None = None
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
        headers = self.headers
        cl: int | None = None
        text = headers.get("Content-Length")
        if text is not None:
            try:
                cl = int(text.rpartition(",")[2])
            except ValueError:
                cl = None
        te = headers.get("Transfer-Encoding")
        return cl, te is not None and "chunked" in te.lower()


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


def set_cookies(values: list[str]) -> dict[str, str]:
    """Every `Set-Cookie` header's name=value (attributes dropped)."""
    out: dict[str, str] = {}
    for value in values:
        cname, sep, cvalue = value.split(";", 1)[0].partition("=")
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


def add_value(out: dict[str, Any], key: str, value: Any) -> None:
    """`out[key] = value`; a key seen again maps to the list of its values."""
    prev = out.get(key)
    if prev is None:
        out[key] = value
    elif isinstance(prev, list):
        prev.append(value)
    else:
        out[key] = [prev, value]


def query_map(query: str) -> dict[str, Any]:
    """Query parameters; a repeated name maps to the list of its values."""
    out: dict[str, Any] = {}
    for key, value in query_pairs(query):
        add_value(out, key, value)
    return out


def append_body(msg: Message, data: bytes, cap: int) -> None:
    """Add body bytes to `msg` up to `cap` bytes; what is cut marks it truncated."""
    room = cap - len(msg.body)
    if room >= len(data):
        msg.body += data
    else:
        if room > 0:
            msg.body += data[:room]
        msg.truncated = True


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
    headers = msg.headers
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
    if not msg.method:
        return req, 0
    return req, len(msg.method) + len(msg.url) + 12 + msg.head_size + msg.body_len + msg.framing


def response_obj(msg: Message, cap: int) -> tuple[dict[str, Any], int]:
    """(Kubeshark `response`, its size on the wire)."""
    headers = msg.headers
    data = msg.body
    if data and "Content-Encoding" in headers:
        data, cut, decoded = decoded_body(msg, headers["Content-Encoding"], cap)
        size = len(data) if decoded else msg.body_len
    else:
        cut = msg.truncated
        size = msg.body_len
    content: dict[str, Any] = {"size": size, "mimeType": headers.get("Content-Type", ""),
                               "encoding": "base64", "text": b64encode_as_string(data) if data else ""}
    if cut:
        content["truncated"] = True
    status = msg.status
    resp = {
        "status": status,
        "statusText": STATUS_TEXT.get(status, ""),
        "httpVersion": f"HTTP/{msg.version}",
        "headers": headers,
        "cookies": set_cookies(msg.set_cookie) if msg.set_cookie else {},
        "content": content,
        "redirectURL": headers.get("Location", "") if 300 <= status < 400 else "",
        "headersSize": -1,
        "bodySize": msg.body_len,
    }
    return resp, len(msg.reason) + 15 + msg.head_size + msg.body_len + msg.framing


def no_response() -> dict[str, Any]:
    """The `response` of a request that got none (the reason is in the item's `error`): every field
    present, zero or empty."""
    return {"status": 0, "statusText": "", "httpVersion": "", "headers": {}, "cookies": {},
            "content": {"size": 0, "mimeType": "", "encoding": "base64", "text": ""},
            "redirectURL": "", "headersSize": -1, "bodySize": 0}
