"""HTTP/1.x: requests and responses parsed with httptools (llhttp) and paired in order into items.

Each direction has its own parser. A request opens an exchange; the next response that begins is
paired with the oldest exchange still waiting, so keep-alive and pipelining pair in order. Interim
1xx responses (except 101) are dropped. The parser cannot know that a response answers HEAD (or a
CONNECT that succeeded), so while such a request waits, response data is fed in pieces that end
at header ends and the message is cut there. A gap in the capture either lies inside a body of
known length (filled, the item carries an error) or breaks the message in flight, which is then
emitted with an error; the direction resyncs at the next message start. Whatever is still open when
the stream closes is emitted with an error (`timeout`/`connection` for a request never answered).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, ClassVar

import httptools

from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol
from capture.dissect.httpitem import (
    Message,
    append_body,
    cached_key,
    canonical,
    no_response,
    request_obj,
    response_obj,
)

HTTP11 = protocol("http", "1.1", "HTTP", "Hypertext Transfer Protocol -- HTTP/1.1", "http", "tcp",
                  ["80", "443", "8080"], 0, "https://datatracker.ietf.org/doc/html/rfc2616", "#326de6")
HTTP10 = protocol("http", "1.0", "HTTP", "Hypertext Transfer Protocol -- HTTP/1.0", "http", "tcp",
                  ["80", "443", "8080"], 0, "https://datatracker.ietf.org/doc/html/rfc1945", "#326de6")

# set_dangerous_leniencies, all on, positionally (cheaper than keywords): lenient_headers,
# _chunked_length, _keep_alive, _transfer_encoding, _version, _data_after_close,
# _optional_lf_after_cr, _optional_cr_before_lf, _optional_crlf_after_chunk, _spaces_after_chunk_size
LENIENT = (True,) * 10

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_REQUEST_LINE = re.compile(_TOKEN + rb"{1,32} [^ \r\n]+ HTTP/1\.[0-9]\r?\n")
_REQUEST_PREFIX = re.compile(_TOKEN + rb"{1,32}( [^ \r\n]*( H(T(T(P(/(1(\.[0-9]?)?)?)?)?)?)?)?)?")
_RESYNC = (re.compile(rb"(?:^|\n)(HTTP/1\.[0-9] [0-9]{3})"),
           re.compile(rb"(?:^|\n)(" + _TOKEN + rb"{1,32} [^ \r\n]+ HTTP/1\.[0-9]\r?\n)"))
_HEAD_END = re.compile(rb"\n\r?\n")
_FILLER = memoryview(bytes(64 * 1024))
_NO_BODY_METHODS = (b"HEAD", b"CONNECT")
MAX_WAITING = 256  # requests waiting for a response; beyond, the oldest is given up (bounded memory)

EMPTY, REQ, RESP, PARTIAL, OTHER = range(5)


def _kind(data: bytes) -> int:
    """What the first bytes of a direction look like."""
    if not data:
        return EMPTY
    if data.startswith(b"HTTP/1."):
        return RESP
    if len(data) < 7 and b"HTTP/1.".startswith(data):
        return PARTIAL
    if _REQUEST_LINE.match(data):
        return REQ
    m = _REQUEST_PREFIX.match(data)
    if m and m.end() == len(data) and len(data) < 8192:
        return PARTIAL
    return OTHER


def _on_port(meta: Any, ports: frozenset[int]) -> bool:
    return meta.server_port in ports or meta.client_port in ports


def _later_start(data: bytes) -> bool:
    """A status line or request line after a newline (a capture picked up mid-message)?"""
    return bool(_RESYNC[0].search(data, 1) or _RESYNC[1].search(data, 1))


class _NoBody(Exception):
    """Raised from `on_headers_complete` to end a response at its head (HEAD, CONNECT)."""


class _Exchange:
    __slots__ = ("req", "resp")

    def __init__(self, req: Message | None, resp: Message | None = None) -> None:
        self.req = req
        self.resp = resp


class _Side:
    """One direction: an llhttp parser and the message it is in."""

    __slots__ = ("at_boundary", "begun", "broken", "conn", "filling", "first_line", "head_bytes",
                 "is_request", "msg", "nobody", "parser", "suspended", "ts")

    def __init__(self, conn: Http1, is_request: bool) -> None:
        self.conn = conn
        self.is_request = is_request
        self.msg: Message | None = None
        self.ts = 0
        self.broken = False  # skipping to the next message start
        self.filling = False  # feeding filler for a gap inside a body of known length
        self.nobody = False  # on_headers_complete cut the message at its head
        self.suspended: bytearray | None = None  # request data after an upgrade request, until answered
        self.at_boundary = True  # the current feed began between messages
        self.begun = 0  # messages begun during the current feed
        self.head_bytes = b""  # raw bytes of the current head, when its start is known
        self.first_line = True  # head_bytes starts at the message start
        self.parser = self._new_parser()

    def _new_parser(self) -> httptools.HttpRequestParser | httptools.HttpResponseParser:
        parser = (httptools.HttpRequestParser if self.is_request else httptools.HttpResponseParser)(self)
        parser.set_dangerous_leniencies(*LENIENT)
        return parser

    # -- llhttp callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        msg = self.msg = Message(self.ts)
        self.first_line = self.at_boundary and not self.begun
        self.head_bytes = b""
        self.begun += 1
        if self.is_request:
            self.conn.request_begins(msg)
        else:
            self.conn.response_begins(msg)

    def on_url(self, url: bytes) -> None:
        self.msg.url += url

    def on_status(self, reason: bytes) -> None:
        self.msg.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        msg = self.msg
        key = cached_key(name) or canonical(name)
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = value.decode("utf-8", "replace")
        headers = msg.headers
        headers[key] = f"{headers[key]},{text}" if key in headers else text
        msg.head_size += len(name) + len(value) + 4
        if key == "Set-Cookie":
            if msg.set_cookie is None:
                msg.set_cookie = [text]
            else:
                msg.set_cookie.append(text)

    def on_headers_complete(self) -> None:
        msg = self.msg
        parser = self.parser
        msg.head_done = True
        self.head_bytes = b""
        msg.version = parser.get_http_version()
        if self.is_request:
            msg.method = parser.get_method()
        else:
            msg.status = parser.get_status_code()
        if not self.is_request and self.conn.nobody_waiting and self.conn.ends_at_head(msg):
            self.nobody = True
            raise _NoBody

    def on_body(self, data: bytes) -> None:
        msg = self.msg
        msg.body_len += len(data)
        if self.filling:
            return
        append_body(msg, data, self.conn.cap)

    def on_chunk_header(self) -> None:
        self.msg.chunk_mark = self.msg.body_len

    def on_chunk_complete(self) -> None:
        msg = self.msg
        size = msg.body_len - msg.chunk_mark
        msg.framing += len(f"{size:x}") + 4

    def on_message_complete(self) -> None:
        msg = self.msg
        self.msg = None
        self.conn.message_done(self, msg)

    # -- feeding -----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Data while an upgrade request waits (kept) or a HEAD/CONNECT answer may end at its head
        (fed in pieces that end at header ends); everything else goes straight to `_feed`."""
        if self.suspended is not None:
            if len(self.suspended) < self.conn.cap:
                self.suspended += data
            return
        if not self.is_request and self.conn.nobody_waiting:
            start = 0
            for m in _HEAD_END.finditer(data):
                self._feed(data[start:m.end()])
                start = m.end()
            if start < len(data):
                self._feed(data[start:])
        else:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        start = 0  # 1 after a parse error: the message at data[0] failed, resync after a newline
        while data:
            if self.conn.tunnel:
                return
            if self.broken:
                data = self._resync(data, start)
                if not data:
                    return
            msg = self.msg
            self.at_boundary = msg is None
            self.begun = 0
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade as up:
                data = self._upgraded(data[up.args[0]:])
                continue
            except httptools.HttpParserError as exc:
                data = self._failed(data, exc)
                start = 1
                continue
            msg = self.msg
            if msg is not None and not msg.head_done and self.first_line and len(self.head_bytes) < 65536:
                self.head_bytes += data
            return

    def _upgraded(self, rest: bytes) -> bytes:
        """The parser stopped after an upgrade/CONNECT request or a 101 response (`rest` follows it)."""
        self.parser = self._new_parser()
        if not self.is_request:
            self.conn.tunnel = True
            if self.conn.switching is not None:
                self.conn.hand_off(rest, self.ts)
            return b""
        self.suspended = bytearray(rest)
        return b""

    def resume(self) -> None:
        """The upgrade request was refused: parse what the client sent meanwhile."""
        data = self.suspended
        self.suspended = None
        if data:
            self._feed(bytes(data))

    def _failed(self, data: bytes, exc: Exception) -> bytes:
        """The parser refused the data: cut the message in flight, resync after it."""
        msg = self.msg
        failed = self.parser
        self.parser = self._new_parser()
        if self.nobody:
            self.nobody = False
            self.msg = None
            self.conn.message_done(self, msg)
            return b""
        self.broken = True
        if msg is None:
            return data
        rest = data if self.first_line else b""  # else where the message began is unknown
        if not msg.head_done:
            self._salvage(msg, failed)
            if self.first_line:
                self._from_first_line(msg, self.head_bytes + data)
        part = "head" if not msg.head_done else "body"
        kind = "request" if self.is_request else "response"
        msg.error = error("dissection", f"invalid HTTP {kind} {part}: {exc}")
        self.msg = None
        self.conn.message_done(self, msg)
        return rest

    def _salvage(self, msg: Message, parser: Any) -> None:
        """What llhttp had read of a head that will not complete: method or status, version."""
        if self.is_request:
            if msg.url and not msg.method:
                msg.method = parser.get_method()
        elif not msg.status:
            msg.status = parser.get_status_code()
        if msg.url or msg.status:
            msg.version = parser.get_http_version()

    def _from_first_line(self, msg: Message, raw: bytes) -> None:
        """Method, target and version (or status) from a first line llhttp would not take."""
        line = raw.split(b"\n", 1)[0].rstrip(b"\r")
        parts = line.split(b" ", 2)
        if self.is_request:
            msg.method = parts[0][:64]
            msg.url = parts[1] if len(parts) > 1 else b""
            version = parts[2] if len(parts) > 2 else b""
        elif parts[0].startswith(b"HTTP/"):
            version = parts[0]
            if len(parts) > 1 and len(parts[1]) == 3 and parts[1].isdigit() and parts[1][0] != 0x30:
                msg.status = int(parts[1])
            msg.reason = parts[2] if len(parts) > 2 else b""
        else:
            return
        if version.startswith(b"HTTP/"):
            msg.version = version[5:].decode("latin-1")

    def _resync(self, data: bytes, start: int) -> bytes:
        m = _RESYNC[self.is_request].search(data, start)
        if m is None:
            return b""
        self.broken = False
        return data[m.start(1):]

    def _lost_start(self, length: int) -> None:
        """A gap between messages: the next message's head is lost. Stand in for it so that the
        messages after it still pair with the right partner."""
        self.broken = True
        lost = Message(self.ts)
        kind = "request" if self.is_request else "response"
        lost.error = error("dissection", f"{length} bytes missing from the capture where a {kind} began")
        if self.is_request:
            self.conn.request_begins(lost)
        elif self.conn.awaiting:
            self.conn.response_begins(lost)
        else:
            return
        self.conn.message_done(self, lost)

    def gap(self, length: int) -> None:
        msg = self.msg
        if self.broken or self.suspended is not None or self.conn.tunnel:
            return
        if msg is None:
            self._lost_start(length)
            return
        cl, chunked = msg.framing_headers() if msg.head_done else (None, False)
        if msg.head_done and not chunked:
            if cl is not None:
                if length <= cl - msg.body_len:
                    msg.missing += length
                    self.filling = True
                    try:
                        while length > 0:
                            piece = min(length, len(_FILLER))
                            self.parser.feed_data(_FILLER[:piece])
                            length -= piece
                    except httptools.HttpParserError:
                        self.parser = self._new_parser()
                        self.broken = True
                    finally:
                        self.filling = False
                    return
            elif not self.is_request:
                msg.missing += length
                msg.body_len += length
                return
        if not msg.head_done:
            self._salvage(msg, self.parser)
        part = "body" if msg.head_done else "head"
        kind = "request" if self.is_request else "response"
        msg.error = error("dissection", f"{length} bytes of the {kind} {part} missing from the capture")
        self.msg = None
        self.broken = True
        self.parser = self._new_parser()
        self.conn.message_done(self, msg)


class Http1(Dissector):
    """The HTTP/1.x dissector of one TCP stream. After a `101 Switching Protocols` it hands the
    stream to the dissector registered for the upgrade token (`Upgrade:` of the response, else of
    the request), if any; else, as after a CONNECT, the rest of the stream is not parsed."""

    name: ClassVar[str] = "http"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    # port hints; on these ports HTTP is also claimed at the first request line
    ports: ClassVar[frozenset[int]] = frozenset({80, 3128, 8000, 8008, 8080, 8081, 8888})
    bodies: ClassVar[tuple[tuple[str, str], ...]] = (("request", "postData"), ("response", "content"))

    __slots__ = ("awaiting", "cap", "items", "nobody_waiting", "order", "req_dir", "sides", "swapped",
                 "switching", "tunnel")

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        a, b = _kind(first[0]), _kind(first[1])
        if a == EMPTY and b == EMPTY:
            return REJECT if final else MORE
        if a == RESP or b == RESP:
            return CLAIM
        if a == REQ or b == REQ:
            req = 0 if a == REQ else 1
            other = b if req == 0 else a
            if other == OTHER:
                # Not HTTP when the peer answered the request with something else (an SSH banner);
                # bytes before the request are the tail of an earlier message (mid-stream pickup).
                return REJECT if leader == req else CLAIM
            if other == REQ:
                return CLAIM
            return CLAIM if final or _on_port(meta, config.ports_of(cls)) else MORE
        if _later_start(first[0]) or _later_start(first[1]):
            return CLAIM  # picked up inside a message; a message start follows
        if final:
            return REJECT
        if a == PARTIAL or b == PARTIAL:
            return MORE
        if _on_port(meta, config.ports_of(cls)):
            return MORE  # an HTTP port: wait for the answer or a message start (up to probe_limit)
        return REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.cap = config.body_cap
        self.req_dir = -1
        self.swapped = False
        self.sides: list[_Side] = []
        self.order: deque[_Exchange] = deque()  # exchanges not yet emitted, in request order
        self.awaiting: deque[_Exchange] = deque()  # exchanges whose response has not begun
        self.nobody_waiting = 0  # HEAD/CONNECT requests among `awaiting`
        self.tunnel = False  # upgraded (101, CONNECT): nothing more to parse
        self.switching: _Exchange | None = None  # the exchange whose 101 response was just parsed

    # -- StreamHandler -----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if self.req_dir < 0:
            self._orient(direction, data)
        if not self.tunnel:
            side = self.sides[direction ^ self.req_dir]
            side.ts = ts_ns
            if side.suspended is None and (side.is_request or not self.nobody_waiting):
                side._feed(data)
            else:
                side.feed(data)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if self.req_dir >= 0:
            side = self.sides[direction ^ self.req_dir]
            side.ts = ts_ns
            side.gap(length)

    def on_close(self, ts_ns: int, reason: str) -> None:
        for side in self.sides:
            msg = side.msg
            if msg is None:
                continue
            side.msg = None
            if not msg.head_done:
                side._salvage(msg, side.parser)
            if not side.is_request and msg.head_done and msg.framing_headers() == (None, False):
                pass  # body delimited by the end of the connection: complete
            else:
                part = "body" if msg.head_done else "head"
                kind = "request" if side.is_request else "response"
                msg.error = error("connection", f"stream ended ({reason}) inside the {kind} {part}")
            self.message_done(side, msg, flush=False)
        unanswered = "connection" if reason in ("fin", "rst") else "timeout"
        while self.order:
            ex = self.order.popleft()
            req = ex.req
            if req is not None and not req.done:
                req.error = error("connection", f"stream ended ({reason}) inside the request")
            if ex.resp is None or not ex.resp.done:
                self._emit(ex, error(unanswered, f"no response before the stream ended ({reason})"))
            else:
                self._emit(ex, None)
        for side in self.sides:  # parser <-> side and side <-> connection: freed without the GC
            side.parser = None
        self.sides = []

    # -- pairing -----------------------------------------------------------------------------------

    def _orient(self, direction: int, data: bytes) -> None:
        kind = _kind(data)
        if kind == RESP:
            req_dir = direction ^ 1
        elif kind in (REQ, PARTIAL):
            req_dir = direction
        else:
            req_dir = 0
        self.req_dir = req_dir
        self.swapped = req_dir == 1
        self.sides = [_Side(self, True), _Side(self, False)]

    def request_begins(self, msg: Message) -> None:
        ex = _Exchange(msg)
        self.order.append(ex)
        self.awaiting.append(ex)
        if len(self.awaiting) > MAX_WAITING:
            oldest = self.awaiting.popleft()
            self.order.remove(oldest)
            if oldest.req.method in _NO_BODY_METHODS and oldest.req.done:
                self.nobody_waiting -= 1
            self._emit(oldest, error("timeout", f"no response while {MAX_WAITING} later requests waited"))

    def response_begins(self, msg: Message) -> None:
        if self.awaiting:
            ex = self.awaiting.popleft()
            ex.resp = msg
        else:
            ex = _Exchange(None, msg)
            self.order.append(ex)
        msg.exchange = ex

    def ends_at_head(self, resp: Message) -> bool:
        """Does this response (head just parsed) have no body whatever its headers say?"""
        ex = resp.exchange
        if ex is None or ex.req is None or ex.req.method not in _NO_BODY_METHODS:
            return False
        status = resp.status
        if 100 <= status < 200 and status != 101:
            return False
        self.nobody_waiting -= 1
        return ex.req.method == b"HEAD" or 200 <= status < 300

    def message_done(self, side: _Side, msg: Message, flush: bool = True) -> None:
        msg.done = True
        if side.is_request:
            if msg.method in _NO_BODY_METHODS and msg.error is None:
                self.nobody_waiting += 1
        else:
            status = msg.status
            if 100 <= status < 200 and status != 101:
                self._drop_interim(msg)
                return
            ex = msg.exchange
            if ex is not None and ex.req is not None:
                req_side = self.sides[0]
                if status == 101 or (ex.req.method == b"CONNECT" and 200 <= status < 300):
                    self.tunnel = True
                    if status == 101:
                        self.switching = ex
                elif req_side.suspended is not None and ex.req is self._last_request():
                    req_side.resume()
        if flush:
            self._flush()

    def _last_request(self) -> Message | None:
        for ex in reversed(self.order):
            if ex.req is not None:
                return ex.req
        return None

    def _drop_interim(self, msg: Message) -> None:
        ex = msg.exchange
        if ex is None or ex.resp is not msg:
            return
        if ex.req is None:
            self.order.remove(ex)
            return
        ex.resp = None
        self.awaiting.appendleft(ex)

    def _flush(self) -> None:
        order = self.order
        while order:
            ex = order[0]
            resp = ex.resp
            if resp is None or not resp.done or (ex.req is not None and not ex.req.done):
                return
            order.popleft()
            self._emit(ex, None)

    def hand_off(self, rest: bytes, ts_ns: int) -> None:
        """After a 101: offer the rest of the stream to the dissector of the upgrade token; when one
        takes it, what this dissector still holds is emitted as at a close."""
        ex = self.switching
        self.switching = None
        req, resp = ex.req, ex.resp
        token = _upgrade_token(resp.headers.get("Upgrade") or req.headers.get("Upgrade", ""))
        if not token:
            return
        client = self.sides[0].suspended
        pending = [(self.req_dir, bytes(client or b"")), (self.req_dir ^ 1, rest)]
        if self.items.hand_off(token, [p for p in pending if p[1]], ts_ns, req, self.req_dir):
            self.on_close(ts_ns, "upgrade")

    # -- items -------------------------------------------------------------------------------------

    def _emit(self, ex: _Exchange, err: dict[str, str] | None) -> None:
        req, resp = ex.req, ex.resp
        if resp is not None:
            resp.exchange = None  # no cycle left for the GC
        if resp is not None and (not resp.done or not resp.status):
            err = err or resp.error  # no status line: the response's head is not in the capture
            resp = None
        if req is None:
            if resp is None:
                return  # neither a request nor a status line: nothing to show
            req = Message(resp.ts)
            err = error("pair-not-found", "response without a request (capture started mid-connection "
                                          "or the request was lost)")
        if err is None:
            err = req.error or (resp.error if resp is not None else None)
            if err is None and (req.missing or resp is not None and resp.missing):
                err = _missing(req, resp)
        request, request_size = request_obj(req, self.cap)
        body: dict[str, Any] = {"request": request}
        response_size = 0
        elapsed = 0
        if resp is not None:
            body["response"], response_size = response_obj(resp, self.cap)
            elapsed = resp.ts - req.ts
        else:
            body["response"] = no_response()
        proto = HTTP10 if req.version == "1.0" else HTTP11
        self.items.emit(proto, req.ts, self.swapped, body, request_size, response_size, elapsed, err)


def _upgrade_token(header: str) -> str:
    """The protocol an `Upgrade:` value names first, lower-case and without its version (`h2c`,
    `websocket`)."""
    return header.split(",", 1)[0].split("/", 1)[0].strip().lower()


def _missing(req: Message, resp: Message | None) -> dict[str, str] | None:
    for kind, msg in (("request", req), ("response", resp)):
        if msg is not None and msg.missing:
            return error("dissection", f"{msg.missing} bytes of the {kind} body missing from the capture")
    return None
