"""The one HTTP client (wrappers.http_client) against a real local http.server: answers, non-2xx,
timeouts, the body cap, redirects, and every failure as one HttpError."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wrappers.http_client import (
    BackgroundSender,
    HostBreaker,
    HttpError,
    Throttled,
    post_json,
    post_json_in_background,
    request,
)

RELEASE = threading.Event()  # the slow handler waits for this (the test sets it once it saw the timeout)


class _Handler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.command, self.path, dict(self.headers), body))
        if self.path == "/sleep":
            time.sleep(0.2)
            self._answer(200, b"slept")
        elif self.path == "/slow":
            RELEASE.wait(10)
            self._answer(200, b"late")
        elif self.path == "/fail":
            self._answer(503, b"try later")
        elif self.path.startswith("/big/"):
            self._answer(200, b"x" * int(self.path.removeprefix("/big/")))
        elif self.path.startswith("/to-"):
            self._answer(302, b"", {"Location": self.path.removeprefix("/to-").replace("_", "/")})
        else:
            self._answer(200, b"ok:" + body)

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.received = []
    RELEASE.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()


def test_a_2xx_answer_and_json_posts(base: str) -> None:
    answer = request("post", f"{base}/echo", b"hello", {"X-Tag": 7})
    assert (answer.status, answer.body) == (200, b"ok:hello")
    method, path, headers, body = _Handler.received[0]
    assert (method, path, headers["X-Tag"], body) == ("POST", "/echo", "7", b"hello")
    post_json(f"{base}/json", {"a": [1, 2]}, {"Authorization": "Bearer t"})
    _m, _p, headers, body = _Handler.received[1]
    assert json.loads(body) == {"a": [1, 2]}
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer t"


def test_non_2xx_is_an_error_unless_any_status(base: str) -> None:
    with pytest.raises(HttpError, match=r"POST .*/fail: HTTP 503") as err:
        request("POST", f"{base}/fail", b"x")
    assert err.value.status == 503 and err.value.body == b"try later"
    answer = request("POST", f"{base}/fail", b"x", any_status=True)
    assert (answer.status, answer.body) == (503, b"try later")


def test_a_slow_server_times_out(base: str) -> None:
    with pytest.raises(HttpError, match="timed out") as err:
        request("GET", f"{base}/slow", timeout_s=0.3)
    assert err.value.status is None
    RELEASE.set()


def test_the_response_body_is_capped(base: str) -> None:
    assert request("GET", f"{base}/big/1000", max_body=1000).body == b"x" * 1000
    with pytest.raises(HttpError, match="larger than 1000 bytes"):
        request("GET", f"{base}/big/1001", max_body=1000)
    with pytest.raises(HttpError, match="larger than 1000 bytes"):
        request("GET", f"{base}/big/5000000", max_body=1000, any_status=True)


def test_redirects_are_followed_to_http_only(base: str) -> None:
    assert request("GET", f"{base}/to-_ok").body == b"ok:"
    assert [p for _m, p, _h, _b in _Handler.received] == ["/to-_ok", "/ok"]
    for target, refusal in (("ftp:__127.0.0.1_x", "refused"), ("file:___etc_passwd", "not allowed")):
        with pytest.raises(HttpError, match=refusal) as err:
            request("GET", f"{base}/to-{target}")
        assert err.value.status == 302
    assert len(_Handler.received) == 4  # nothing was fetched from the refused targets


def test_bad_urls_and_refused_connections_are_http_errors() -> None:
    with pytest.raises(HttpError, match="URL must be http"):
        request("GET", "file:///etc/passwd")
    with pytest.raises(HttpError, match=r"^POST http://127.0.0.1:1/x: ") as err:
        request("POST", "http://127.0.0.1:1/x", b"x")
    assert err.value.status is None


def test_background_posts_report_failures_to_on_error(base: str) -> None:
    errors: list[HttpError] = []
    post_json_in_background(f"{base}/fail", {"n": 1}, on_error=errors.append).join(10)
    post_json_in_background(f"{base}/ok", {"n": 2}, on_error=errors.append).join(10)
    assert [e.status for e in errors] == [503]
    assert sorted(json.loads(b)["n"] for _m, _p, _h, b in _Handler.received) == [1, 2]


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_breaker_fails_calls_to_a_silent_host_at_once(base: str, silent: str) -> None:
    breaker = HostBreaker(threshold=3, cooldown_s=60.0)
    errors = []
    for _ in range(5):
        with pytest.raises(HttpError) as err:
            request("POST", f"{silent}/x", b"x", timeout_s=0.2, breakers=(breaker,))
        errors.append(err.value)
    assert [type(e).__name__ for e in errors] == ["HttpError"] * 3 + ["Throttled"] * 2
    assert all("timed out" in str(e) for e in errors[:3])
    assert [e.first for e in errors[3:]] == [True, False]  # type: ignore[attr-defined]
    assert str(errors[3]) == f"{silent} did not answer the last 3 calls; calls fail at once for 60 s"
    # other hosts are not affected
    assert request("GET", f"{base}/ok", breakers=(breaker,)).body == b"ok:"
    assert breaker.refused == 2


def test_a_breaker_counts_slow_answers_as_none(base: str) -> None:
    breaker = HostBreaker(threshold=2, cooldown_s=60.0, slow_s=0.05)
    assert request("GET", f"{base}/sleep", breakers=(breaker,)).body == b"slept"  # 0.2 s: slow
    assert request("GET", f"{base}/sleep", breakers=(breaker,)).body == b"slept"
    with pytest.raises(Throttled, match=r"did not answer within 0.05 s the last 2 calls"):
        request("GET", f"{base}/ok", breakers=(breaker,))
    assert [p for _m, p, _h, _b in _Handler.received] == ["/sleep", "/sleep"]


def test_background_posts_go_through_a_bounded_queue() -> None:
    sender = BackgroundSender(max_queue=2)
    sent: list[int] = []
    gate = threading.Event()
    results = [sender.submit(lambda: (gate.wait(10), sent.append(1))) for _ in range(5)]
    # one is being sent (or queued), two wait in the queue; the rest are dropped, the first told
    dropped = [tell for pending, tell in results if pending is None]
    assert len(dropped) in (2, 3) and dropped[0] is True and not any(dropped[1:])
    assert sender.dropped == len(dropped)
    gate.set()
    assert sender.drain(10) == 0 and len(sent) == 5 - len(dropped)
    pending, tell = sender.submit(lambda: sent.append(2))
    assert pending is not None and pending.join(10) and not tell
