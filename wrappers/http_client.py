"""The one HTTP client for what leaves the process besides object stores (webhooks, Slack).

Policy, the same for every caller: http(s) URLs only; `timeout_s` bounds each socket operation and
the whole exchange (checked while the body is read); the response body is capped at `max_body`
bytes; redirects are followed up to `MAX_REDIRECTS` times and only to http(s) URLs. Every failure
is an `HttpError`: `status` is the HTTP status of a non-2xx answer, None when no answer came.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 5.0
MAX_BODY = 16 << 20
MAX_REDIRECTS = 10
_CHUNK = 64 << 10


class HttpError(Exception):
    """A request that did not succeed: transport failure, timeout, too large an answer, or non-2xx."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            where = f"{req.get_method()} {req.full_url}"
            raise HttpError(f"{where}: redirect to a non-http(s) URL {newurl!r} refused", status=code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_Redirects())


def request(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, Any] | None = None,
    *,
    timeout_s: float = TIMEOUT_S,
    max_body: int = MAX_BODY,
    any_status: bool = False,
) -> Response:
    """Send one request; the answer of any status when `any_status`, else only a 2xx one."""
    method = method.upper()
    where = f"{method} {url}"
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise HttpError(f"URL must be http(s): {url!r}")
    req = urllib.request.Request(
        url, data=body or None, method=method, headers={str(k): str(v) for k, v in (headers or {}).items()}
    )
    try:
        return _exchange(req, where, timeout_s, max_body, any_status)
    except HttpError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise HttpError(f"{where}: {reason}") from exc


def _exchange(
    req: urllib.request.Request, where: str, timeout_s: float, max_body: int, any_status: bool
) -> Response:
    deadline = time.monotonic() + timeout_s
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            return Response(resp.status, dict(resp.headers), _read(resp, where, deadline, max_body))
    except urllib.error.HTTPError as exc:
        answer = b""
        if exc.fp is not None:
            with exc:
                answer = _read(exc, where, deadline, max_body)
        if any_status:
            return Response(exc.code, dict(exc.headers or {}), answer)
        raise HttpError(f"{where}: HTTP {exc.code} {exc.reason}", status=exc.code, body=answer) from exc


def _read(resp: Any, where: str, deadline: float, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := resp.read(min(_CHUNK, max_body + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            raise HttpError(f"{where}: response body larger than {max_body} bytes")
        if time.monotonic() > deadline:
            raise HttpError(f"{where}: timed out reading the response")
    return b"".join(chunks)


def post_json(url: str, doc: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
    """POST `doc` as JSON (Content-Type application/json); keyword options as `request`."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return request("POST", url, json.dumps(doc).encode(), headers, **kwargs)


def post_json_in_background(
    url: str,
    doc: Any,
    headers: dict[str, str] | None = None,
    on_error: Callable[[HttpError], None] | None = None,
    timeout_s: float = 10.0,
) -> threading.Thread:
    """`post_json` on a short-lived daemon thread, so a slow endpoint never blocks the caller."""

    def send() -> None:
        try:
            post_json(url, doc, headers, timeout_s=timeout_s)
        except HttpError as exc:
            if on_error:
                on_error(exc)

    thread = threading.Thread(target=send, name="kflpcap-http", daemon=True)
    thread.start()
    return thread
