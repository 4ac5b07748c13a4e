"""The one HTTP client for what leaves the process besides object stores (webhooks, Slack).

Policy, the same for every caller: http(s) URLs only; `timeout_s` bounds each socket operation and
the whole exchange (checked while the body is read); the response body is capped at `max_body`
bytes; redirects are followed up to `MAX_REDIRECTS` times and only to http(s) URLs. Every failure
is an `HttpError`: `status` is the HTTP status of a non-2xx answer, None when no answer came.

A host that does not answer cannot stall the caller for long: a `HostBreaker` counts consecutive
transport failures (timeouts, refusals) per host and, after `threshold` in a row, fails calls to
it at once (`Throttled`) for a cool-off, after which one call may try again. Fire-and-forget posts
(`post_json_in_background`) go to one worker thread through a bounded queue: when it is full the
post is dropped, counted and reported to its `on_error`.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
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
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN_S = 30.0
BACKGROUND_QUEUE = 256

_log = logging.getLogger("kflpcap.http")


class HttpError(Exception):
    """A request that did not succeed: transport failure, timeout, too large an answer, or non-2xx."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Throttled(HttpError):
    """A call refused at once: its host did not answer the last calls. `first` is True for the first
    refusal of a cool-off (the moment to tell the user)."""

    def __init__(self, message: str, host: str, first: bool) -> None:
        super().__init__(message)
        self.host = host
        self.first = first


class HostBreaker:
    """Consecutive calls per host (`scheme://host:port`), or to any host when not `per_host`, that
    got no answer — or, with `slow_s`, no answer within `slow_s` seconds; thread-safe."""

    def __init__(
        self,
        threshold: int = BREAKER_THRESHOLD,
        cooldown_s: float = BREAKER_COOLDOWN_S,
        per_host: bool = True,
        slow_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.slow_s = slow_s
        self.per_host = per_host
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._told: set[str] = set()
        self.refused = 0

    def host(self, url: str) -> str:
        if not self.per_host:
            return "any host"
        parts = urlsplit(url)
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"

    def check(self, url: str) -> None:
        """Raise `Throttled` while the URL's host is in its cool-off."""
        host = self.host(url)
        with self._lock:
            until = self._open_until.get(host)
            if until is None:
                return
            if self._clock() >= until:
                # the cool-off is over: let this call try (one more failure opens it again)
                del self._open_until[host]
                self._failures[host] = self.threshold - 1
                self._told.discard(host)
                return
            self.refused += 1
            first = host not in self._told
            self._told.add(host)
        who = f"{host} did not answer" if self.per_host else "no host answered"
        within = f" within {self.slow_s:g} s" if self.slow_s is not None else ""
        raise Throttled(
            f"{who}{within} the last {self.threshold} calls; calls fail at once for {self.cooldown_s:g} s",
            host,
            first,
        )

    def record(self, url: str, answered: bool) -> None:
        host = self.host(url)
        with self._lock:
            if answered:
                self._failures.pop(host, None)
                return
            count = self._failures[host] = self._failures.get(host, 0) + 1
            if count >= self.threshold:
                self._open_until[host] = self._clock() + self.cooldown_s


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
    breakers: tuple[HostBreaker, ...] = (),
) -> Response:
    """Send one request; the answer of any status when `any_status`, else only a 2xx one.

    Each of `breakers` may refuse the call at once (`Throttled`) and counts its outcome."""
    method = method.upper()
    where = f"{method} {url}"
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise HttpError(f"URL must be http(s): {url!r}")
    for breaker in breakers:
        breaker.check(url)
    started = time.monotonic()
    req = urllib.request.Request(
        url, data=body or None, method=method, headers={str(k): str(v) for k, v in (headers or {}).items()}
    )
    try:
        answer = _exchange(req, where, timeout_s, max_body, any_status)
    except HttpError as exc:
        took = time.monotonic() - started
        for breaker in breakers:
            answered = exc.status is not None and (breaker.slow_s is None or took <= breaker.slow_s)
            breaker.record(url, answered=answered)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        for breaker in breakers:
            breaker.record(url, answered=False)
        reason = getattr(exc, "reason", None) or exc
        raise HttpError(f"{where}: {reason}") from exc
    took = time.monotonic() - started
    for breaker in breakers:
        breaker.record(url, answered=breaker.slow_s is None or took <= breaker.slow_s)
    return answer


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


class Pending:
    """A background post: `join(timeout)` waits until it was sent or failed (True) or not yet (False)."""

    def __init__(self) -> None:
        self._done = threading.Event()

    def set(self) -> None:
        self._done.set()

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class BackgroundSender:
    """One worker thread sending fire-and-forget posts from a bounded queue (a full queue drops)."""

    def __init__(self, max_queue: int = BACKGROUND_QUEUE) -> None:
        self.max_queue = max_queue
        self.breaker = HostBreaker()
        self.dropped = 0
        self._queue: queue.Queue[tuple[Callable[[], None], Pending]] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropping = False

    def submit(self, send: Callable[[], None]) -> tuple[Pending | None, bool]:
        """Queue `send`: (its Pending, False); when the queue is full (None, True for the first drop
        since a post was last queued — the moment to tell), counted as dropped."""
        pending = Pending()
        try:
            self._queue.put_nowait((send, pending))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                first = not self._dropping
                self._dropping = True
            return None, first
        with self._lock:
            self._dropping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="kflpcap-http", daemon=True)
                self._thread.start()
        return pending, False

    def _work(self) -> None:
        while True:
            send, pending = self._queue.get()
            try:
                send()
            except Exception:
                _log.exception("background HTTP post failed")
            finally:
                pending.set()
                self._queue.task_done()

    def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the queue to empty; returns how many posts are still queued."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._queue.unfinished_tasks


BACKGROUND = BackgroundSender()


def post_json_in_background(
    url: str,
    doc: Any,
    headers: dict[str, str] | None = None,
    on_error: Callable[[HttpError], None] | None = None,
    timeout_s: float = 10.0,
) -> Pending:
    """`post_json` on the background sender, so a slow endpoint never blocks the caller.

    A failure goes to `on_error` — of the posts refused while their host cools off, and of those
    dropped because the queue is full, only the first (the others are counted)."""

    def send() -> None:
        try:
            post_json(url, doc, headers, timeout_s=timeout_s, breakers=(BACKGROUND.breaker,))
        except Throttled as exc:
            if on_error and exc.first:
                on_error(exc)
        except HttpError as exc:
            if on_error:
                on_error(exc)

    pending, tell = BACKGROUND.submit(send)
    if pending is None:
        if tell:
            error = HttpError(
                f"POST {url}: dropped: {BACKGROUND.max_queue} posts are already waiting to be sent "
                "(later drops are counted, not reported, until the queue has room)"
            )
            _log.warning("%s", error)
            if on_error:
                on_error(error)
        pending = Pending()
        pending.set()
    return pending


def drain_background(timeout_s: float) -> int:
    """Let the queued background posts go out (up to `timeout_s`); returns how many are left."""
    return BACKGROUND.drain(timeout_s)
