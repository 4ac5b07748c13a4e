"""Text helpers for HTTP items: Go's canonical header names and status texts, cookie maps."""

from __future__ import annotations

import re

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


def _merge(out: dict[str, str], name: str, value: str) -> None:
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
            pair = value.decode("utf-8", "replace").split(";", 1)[0]
            cname, sep, cvalue = pair.partition("=")
            cname = cname.strip()
            if sep and cname:
                _merge(out, cname, cvalue.strip().strip('"'))
    return out
