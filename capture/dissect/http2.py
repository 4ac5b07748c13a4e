"""HTTP/2 in cleartext (h2c): frames cut with hyperframe, header blocks decoded with hpack (one decoder
per direction, so its dynamic table follows the connection), streams paired request ↔ response by id.

A connection is recognised by the client preface, by a server that starts with SETTINGS, or — picked
up mid-way — by a chain of well-formed frame headers. A stream becomes an item when both of its halves
ended (END_STREAM), when it is reset (RST_STREAM: the item carries the error), refused by GOAWAY, or
when the connection closes. Bodies come from DATA frames (Content-Encoding decoded, capped like
HTTP/1.x); header names are Go-canonical as for HTTP/1.x, pseudo-headers (`:method`, `:path`,
`:authority`, `:status`, …) stay as they are, trailers are merged into `headers` and also kept in
`trailers`. A call with a `application/grpc*` content type (or `grpc-status`) is gRPC (`grpc.py`).

When the HPACK state is unknown (capture started mid-connection, or a gap) the decoder is primed with
128 placeholder entries: fields that refer to entries from before the pickup decode as unknown and
the item says how many were lost, everything else decodes normally. A gap inside a DATA frame is
filled (the item says how many bytes are missing); any other gap drops that direction's frame sync
until a run of well-formed frame headers is found again.

`Http2.after_upgrade` starts a dissector on a connection that HTTP/1.1 switched to h2c (`101` with
`Upgrade: h2c`): the upgrade request becomes the request of stream 1.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hpack import Decoder
from hpack.exceptions import HPACKError
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
)

from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol
from capture.dissect.grpc import GRPC, MessageCounter, call_names, is_grpc, messages, status
from capture.dissect.httpitem import Message, append_body, canonical, no_response, request_obj, response_obj

HTTP2 = protocol("http", "2.0", "HTTP/2", "Hypertext Transfer Protocol Version 2 (HTTP/2)", "http2", "tcp",
                 ["80", "443", "8080"], 0, "https://datatracker.ietf.org/doc/html/rfc7540", "#244c5a")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_STREAMS = 1024  # open streams kept per connection; beyond, the oldest is given up (bounded memory)
MAX_CLOSED = 4096  # ids of streams already emitted, remembered so that late frames open nothing
RESYNC_WINDOW = 64 * 1024  # bytes searched for a frame boundary after a gap
MAX_HEADER_BLOCK = 1 << 20
_PLACEHOLDERS = 128  # 4096-byte table / 32 bytes: more entries than an encoder's default table can hold
_UNKNOWN = b""  # the name of a placeholder entry (a real field never has an empty name)

# type -> (allowed flags, stream id 0 required / forbidden / either, fixed length or None)
_SHAPES = {
    0: (0x09, False, None), 1: (0x2D, False, None), 2: (0x00, False, 5), 3: (0x00, False, 4),
    4: (0x01, True, None), 5: (0x0C, False, None), 6: (0x01, True, 8), 7: (0x00, True, None),
    8: (0x00, None, 4), 9: (0x04, False, None),
}
_ERROR_CODES = ("NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
                "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
                "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED")


def _code_name(code: int) -> str:
    return f"{_ERROR_CODES[code] if code < len(_ERROR_CODES) else 'UNKNOWN'} (0x{code:x})"


def _plausible(data: bytes | bytearray, pos: int, max_len: int = 16384) -> int:
    """The length of the frame whose header is at `pos` if it looks like a real one, else -1."""
    length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
    shape = _SHAPES.get(data[pos + 3])
    if shape is None or length > max_len or data[pos + 4] & ~shape[0] or data[pos + 5] & 0x80:
        return -1
    zero = not any(data[pos + 5:pos + 9])
    if shape[1] is not None and zero != shape[1]:
        return -1
    if shape[2] is not None and length != shape[2] or data[pos + 3] == 4 and length % 6:
        return -1
    return length


def _chain(data: bytes | bytearray, pos: int = 0) -> tuple[int, bool]:
    """(well-formed frames chained from `pos`, whether the chain ends exactly at a frame boundary or
    in a well-formed header); a chain broken by a bad header returns (n, False)."""
    n = 0
    end = len(data)
    while pos + 9 <= end:
        length = _plausible(data, pos)
        if length < 0:
            return n, False
        pos += 9 + length
        if pos <= end:
            n += 1
    return n, True


def _preface_state(data: bytes) -> int:
    """CLAIM when `data` starts with the client preface, MORE when it may still, else REJECT."""
    if data.startswith(PREFACE):
        return CLAIM
    return MORE if data and PREFACE.startswith(data) else REJECT


def _new_decoder(unknown: bool) -> Decoder:
    decoder = Decoder(max_header_list_size=MAX_HEADER_BLOCK)
    decoder.max_allowed_table_size = 1 << 20  # passive: accept what the encoder does
    if unknown:
        for _ in range(_PLACEHOLDERS):
            decoder.header_table.add(_UNKNOWN, _UNKNOWN)
    return decoder


class _Stream:
    __slots__ = ("counters", "ended", "error", "lost", "msgs", "sizes", "trailers")

    def __init__(self) -> None:
        self.msgs: list[Message | None] = [None, None]  # what each direction sent
        self.ended = [False, False]
        self.sizes = [0, 0]  # frame bytes (headers included) each direction sent on the stream
        self.trailers: list[dict[str, str] | None] = [None, None]
        self.counters: list[MessageCounter | None] = [None, None]  # gRPC message framing
        self.lost = 0  # header fields HPACK could not resolve
        self.error: dict[str, str] | None = None


class _Side:
    """One direction: its bytes not yet cut into frames, its HPACK decoder, its sync state."""

    __slots__ = ("block", "block_end", "block_promise", "block_stream", "buf", "decoder", "preface", "scan",
                 "synced", "trusted")

    def __init__(self, preface: bool, synced: bool, unknown: bool) -> None:
        self.buf = bytearray()
        self.preface = preface  # the client preface is still expected
        self.synced = synced  # frame boundaries known
        self.trusted = synced  # known since the connection's start (else frame headers are checked)
        self.scan = 0  # where the search for a frame boundary goes on
        self.decoder = _new_decoder(unknown)
        self.block: bytearray | None = None  # a header block waiting for its CONTINUATION frames
        self.block_stream = 0
        self.block_end = False  # END_STREAM on the HEADERS frame that opened the block
        self.block_promise = 0  # the promised stream when the block came in a PUSH_PROMISE


class Http2(Dissector):
    """The HTTP/2 (h2c) and gRPC dissector of one TCP stream."""

    name: ClassVar[str] = "http2"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    ports: ClassVar[frozenset[int]] = frozenset({50051})
    upgrades: ClassVar[tuple[str, ...]] = ("h2c",)

    __slots__ = ("cap", "client_dir", "closed", "items", "oriented", "sides", "streams")

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        verdicts = [_preface_state(data) for data in first]
        if CLAIM in verdicts:
            return CLAIM
        waiting = MORE in verdicts
        for data in first:
            if len(data) >= 9 and data[3] == 4 and _plausible(data, 0) >= 0:
                return CLAIM  # a server's SETTINGS
            frames, clean = _chain(data)
            if clean and frames >= 2:
                return CLAIM  # picked up mid-connection
            if clean and (data or not final):
                waiting = True
        return MORE if waiting and not final else REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.cap = config.body_cap
        self.client_dir = 0
        self.oriented = False
        self.sides: list[_Side] | None = None
        self.streams: dict[int, _Stream] = {}
        self.closed: dict[int, None] = {}  # emitted stream ids, oldest first

    def upgraded(self, token: str, request: Message, client_dir: int) -> None:
        """A connection HTTP/1.1 switched to h2c (`101`): fed from the first byte after the upgrade
        request (client, which sends the preface next) and after the `101` (server); the upgrade
        request becomes stream 1's request, as in Kubeshark."""
        self.client_dir = client_dir
        self.oriented = True
        sides = [_Side(False, True, False), _Side(False, True, False)]
        sides[client_dir].preface = True
        self.sides = sides
        st = self._stream(1)
        st.msgs[client_dir] = request
        st.ended[client_dir] = True
        st.sizes[client_dir] = request_obj(request, self.cap)[1]

    # -- StreamHandler -----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        sides = self.sides
        if sides is None:
            sides = self._start(direction, data)
        side = sides[direction]
        side.buf += data
        if side.preface:
            if len(side.buf) < len(PREFACE) and PREFACE.startswith(side.buf):
                return
            side.preface = False
            if side.buf.startswith(PREFACE):
                del side.buf[:len(PREFACE)]
            else:
                self._lose_sync(side)
        self._consume(direction, side, ts_ns)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if self.sides is None:
            return
        side = self.sides[direction]
        buf = side.buf
        if side.synced and len(buf) >= 9 and buf[3] == 0:
            frame_end = 9 + ((buf[0] << 16) | (buf[1] << 8) | buf[2])
            if len(buf) + length <= frame_end:  # inside a DATA frame: fill it, the body lacks the bytes
                buf += bytes(length)
                sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                msg = self.streams[sid].msgs[direction] if sid in self.streams else None
                if msg is not None:
                    msg.missing += length
                self._consume(direction, side, ts_ns)
                return
        buf.clear()
        side.preface = False
        self._lose_sync(side)
        for st in self.streams.values():
            if st.msgs[direction] is not None and not st.ended[direction] and st.error is None:
                st.error = error("dissection", f"{length} bytes of the stream missing from the capture")

    def on_close(self, ts_ns: int, reason: str) -> None:
        streams = self.streams
        self.streams = {}
        for sid, st in sorted(streams.items()):
            if not st.ended[self.client_dir ^ 1]:
                unanswered = "connection" if reason in ("fin", "rst") else "timeout"
                self._emit(sid, st, st.error or error(unanswered, f"stream {sid} not complete before the "
                                                                  f"connection ended ({reason})"))
            else:
                self._emit(sid, st, st.error)
        self.sides = None

    # -- frames ------------------------------------------------------------------------------------

    def _start(self, direction: int, data: bytes) -> list[_Side]:
        """The first data of the connection: who is the client, and do both sides start clean."""
        if data.startswith(PREFACE[:len(data)]):
            client, clean = direction, True
        elif len(data) >= 9 and data[3] == 4 and _plausible(data, 0) >= 0:
            client, clean = direction ^ 1, True
        else:  # picked up mid-connection: direction 0 is the client until a header block tells
            client, clean = 0, False
        self.client_dir = client
        self.oriented = clean
        sides = [_Side(False, clean, not clean), _Side(False, clean, not clean)]
        sides[client].preface = clean
        self.sides = sides
        return sides

    @staticmethod
    def _lose_sync(side: _Side) -> None:
        """Frame boundaries and HPACK state of this direction are no longer known."""
        side.synced = side.trusted = False
        side.scan = 0
        side.block = None
        side.decoder = _new_decoder(True)

    def _consume(self, direction: int, side: _Side, ts_ns: int) -> None:
        while (side.synced or self._resync(side)) and not self._frames(direction, side, ts_ns):
            pass

    @staticmethod
    def _resync(side: _Side) -> bool:
        """Find a frame boundary in a direction that lost it: well-formed frame headers chained up to
        the end of the data, at least two of them or one that ends exactly there. A position ruled out
        stays so (`scan`); one that may still prove right waits for more data."""
        buf = side.buf
        pos = side.scan
        while pos + 9 <= len(buf):
            length = _plausible(buf, pos)
            if length >= 0:
                frames, clean = _chain(buf, pos)
                if clean and (frames >= 2 or pos + 9 + length == len(buf)):
                    del buf[:pos]
                    side.synced = True
                    side.scan = 0
                    return True
                if clean:
                    break  # the next header is not all here yet
            pos += 1
        side.scan = pos
        if pos > RESYNC_WINDOW:
            del buf[:pos]
            side.scan = 0
        return False

    def _frames(self, direction: int, side: _Side, ts_ns: int) -> bool:
        """Cut and handle the complete frames; False when a header shows the sync was wrong."""
        buf = side.buf
        pos = 0
        end = len(buf)
        while end - pos >= 9:
            if not side.trusted and _plausible(buf, pos) < 0:
                del buf[:pos + 1]
                side.synced = False
                side.scan = 0
                return False
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if end - pos < 9 + length:
                break
            raw = bytes(buf[pos:pos + 9 + length])
            pos += 9 + length
            try:
                frame, _ = Frame.parse_frame_header(memoryview(raw)[:9])
                frame.parse_body(memoryview(raw)[9:])
            except (HyperframeError, ValueError) as exc:
                sid = int.from_bytes(raw[5:9], "big") & 0x7FFFFFFF
                st = self.streams.get(sid)
                if st is not None and st.error is None:
                    st.error = error("dissection", f"invalid HTTP/2 frame: {exc}")
                continue
            self._frame(direction, side, frame, 9 + length, ts_ns)
        del buf[:pos]
        return True

    def _frame(self, direction: int, side: _Side, frame: Frame, size: int, ts_ns: int) -> None:
        sid = frame.stream_id
        if side.block is not None and not isinstance(frame, ContinuationFrame):
            side.block = None  # the block's CONTINUATION never came: its fields are lost
            side.decoder = _new_decoder(True)
        if isinstance(frame, DataFrame):
            if sid in self.closed:
                return  # sent before the peer's RST_STREAM arrived
            st = self._stream(sid)
            st.sizes[direction] += size
            msg = st.msgs[direction]
            if msg is None:
                msg = st.msgs[direction] = Message(ts_ns)
                msg.version = "2.0"
            self._body(st, direction, msg, frame.data)
            if "END_STREAM" in frame.flags:
                self._ended(sid, st, direction)
        elif isinstance(frame, HeadersFrame | PushPromiseFrame):
            if sid not in self.closed:  # else decoded only for the HPACK table, then dropped
                self._stream(sid).sizes[direction] += size
            side.block = bytearray(frame.data)
            side.block_stream = sid
            side.block_end = "END_STREAM" in frame.flags
            side.block_promise = frame.promised_stream_id if isinstance(frame, PushPromiseFrame) else 0
            if "END_HEADERS" in frame.flags:
                self._block(direction, side, ts_ns)
        elif isinstance(frame, ContinuationFrame):
            if side.block is None or sid != side.block_stream:
                return
            st = self.streams.get(sid)
            if st is not None:
                st.sizes[direction] += size
            side.block += frame.data
            if len(side.block) > MAX_HEADER_BLOCK:
                side.block = None
                side.decoder = _new_decoder(True)
            elif "END_HEADERS" in frame.flags:
                self._block(direction, side, ts_ns)
        elif isinstance(frame, RstStreamFrame):
            st = self.streams.pop(sid, None)
            if st is not None:
                who = "client" if direction == self.client_dir else "server"
                self._emit(sid, st, st.error or error("connection", f"stream {sid} reset by the {who}: "
                                                                    f"{_code_name(frame.error_code)}"))
        elif isinstance(frame, GoAwayFrame):
            self._goaway(direction, frame)

    def _goaway(self, direction: int, frame: GoAwayFrame) -> None:
        """Streams the sender of GOAWAY will not process (ids above its last) end with an error."""
        who = "client" if direction == self.client_dir else "server"
        code = _code_name(frame.error_code)
        for sid in sorted(self.streams):
            if sid > frame.last_stream_id and sid % 2 == (1 if who == "server" else 0):
                st = self.streams.pop(sid)
                self._emit(sid, st, error("connection", f"stream {sid} refused by the {who}'s GOAWAY {code}"))
            elif frame.error_code:
                st = self.streams[sid]
                st.error = st.error or error("connection", f"connection closed by the {who}'s GOAWAY {code}")

    def _stream(self, sid: int) -> _Stream:
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = _Stream()
            if len(self.streams) > MAX_STREAMS:
                oldest = min(self.streams)
                self._emit(oldest, self.streams.pop(oldest),
                           error("timeout", f"not complete while {MAX_STREAMS} later streams were open"))
        return st

    def _body(self, st: _Stream, direction: int, msg: Message, data: bytes) -> None:
        msg.body_len += len(data)
        counter = st.counters[direction]
        if counter is not None:
            counter.feed(data)
        append_body(msg, data, self.cap)

    def _ended(self, sid: int, st: _Stream, direction: int) -> None:
        st.ended[direction] = True
        msg = st.msgs[direction]
        if msg is not None:
            msg.done = True
        if st.ended[0] and st.ended[1] and self.streams.pop(sid, None) is not None:
            self._emit(sid, st, st.error)

    # -- header blocks -----------------------------------------------------------------------------

    def _block(self, direction: int, side: _Side, ts_ns: int) -> None:
        block = bytes(side.block or b"")
        side.block = None
        sid = side.block_stream
        st = self.streams.get(sid)
        promised = side.block_promise
        try:
            fields = side.decoder.decode(block, raw=True)
        except (HPACKError, ValueError, IndexError) as exc:
            side.decoder = _new_decoder(True)
            fields = None
            err = error("dissection", f"HPACK header block not decodable: {exc}")
        if promised:  # PUSH_PROMISE: the promised stream's request, sent by the server
            target, d = self._stream(promised), direction ^ 1
        elif st is None:
            return
        else:
            target, d = st, direction
        if fields is None:
            if target.error is None:
                target.error = err
            if target.msgs[d] is None:
                target.msgs[d] = msg = Message(ts_ns)
                msg.version = "2.0"
        else:
            self._fields(target, d, fields, ts_ns)
        if promised:
            target.ended[d] = True
        elif side.block_end and st is not None:
            self._ended(sid, st, direction)

    def _fields(self, st: _Stream, direction: int, fields: list[tuple[bytes, bytes]], ts_ns: int) -> None:
        msg = st.msgs[direction]
        interim = msg is not None and 100 <= msg.status < 200 and msg.status != 101
        trailers = msg is not None and msg.head_done and not interim
        if msg is None or interim:
            msg = st.msgs[direction] = Message(ts_ns)
            msg.version = "2.0"
        headers = msg.headers
        extra = st.trailers[direction] if trailers else None
        if trailers and extra is None:
            extra = st.trailers[direction] = {}
        lost = 0
        for name, value in fields:
            if name == _UNKNOWN:
                lost += 1
                continue
            text = value.decode("utf-8", "replace")
            if name[:1] == b":":
                key = name.decode("latin-1")
                if key == ":method":
                    msg.method = value
                elif key == ":path":
                    msg.url = value
                elif key == ":status" and value.isdigit():
                    msg.status = int(value)
            else:
                key = canonical(name)
            sep = "; " if key == "Cookie" else ","
            headers[key] = f"{headers[key]}{sep}{text}" if key in headers else text
            if extra is not None:
                extra[key] = f"{extra[key]},{text}" if key in extra else text
            if key == "Set-Cookie":
                msg.set_cookie = [*(msg.set_cookie or ()), text]
        msg.head_done = True
        st.lost += lost
        if not self.oriented:
            self._orient(msg, direction)
        if not trailers and st.counters[direction] is None and is_grpc(headers.get("Content-Type", "")):
            st.counters[direction] = counter = MessageCounter()
            counter.feed(msg.body)

    def _orient(self, msg: Message, direction: int) -> None:
        """Mid-connection pickup: the first block that shows `:method` or `:status` tells the sides."""
        if msg.method:
            self.client_dir, self.oriented = direction, True
        elif msg.status:
            self.client_dir, self.oriented = direction ^ 1, True

    # -- items -------------------------------------------------------------------------------------

    def _emit(self, sid: int, st: _Stream, err: dict[str, str] | None) -> None:
        closed = self.closed
        closed[sid] = None
        if len(closed) > MAX_CLOSED:
            del closed[next(iter(closed))]
        c = self.client_dir
        req, resp = st.msgs[c], st.msgs[c ^ 1]
        if req is None and resp is None:
            return
        if st.lost and err is None:
            err = error("dissection", f"{st.lost} header fields of stream {sid} not decodable (they refer to "
                                      "HPACK table entries the capture lacks)")
        if resp is not None and not resp.status:  # its `:status` is not in the capture
            err = err or st.error or error("dissection", f"stream {sid}: the response headers are not in "
                                                         "the capture")
            resp = None
            if req is None:
                return
        if req is None:
            req = Message(resp.ts)
            err = err or error("pair-not-found", f"stream {sid}: response without a request (capture started "
                                                 "mid-connection or the request was lost)")
        for kind, msg in (("request", req), ("response", resp)):
            if err is not None or msg is None:
                break
            if not msg.head_done:
                err = error("dissection", f"stream {sid}: the {kind} headers are not in the capture")
            elif msg.missing:
                err = error("dissection", f"{msg.missing} bytes of the {kind} body missing from the capture")
        request, _ = request_obj(req, self.cap)
        body: dict[str, Any] = {"request": request}
        elapsed = 0
        grpc = is_grpc(req.headers.get("Content-Type", "")) or resp is not None and (
            "Grpc-Status" in resp.headers or is_grpc(resp.headers.get("Content-Type", "")))
        if resp is not None:
            response, _ = response_obj(resp, self.cap)
            response["trailers"] = st.trailers[c ^ 1] or {}
            body["response"] = response
            elapsed = resp.ts - req.ts
        else:
            body["response"] = {**no_response(), "trailers": {}}
        if grpc:
            path = request.get("path", "")
            request["grpc"] = {**call_names(path),
                               "messages": messages(req.body, req.headers.get("Grpc-Encoding", ""))}
            if resp is not None:
                counters = st.counters
                response["grpc"] = {
                    **status(resp.headers),
                    "requestMessages": counters[c].count if counters[c] is not None else 0,
                    "responseMessages": counters[c ^ 1].count if counters[c ^ 1] is not None else 0,
                    "messages": messages(resp.body, resp.headers.get("Grpc-Encoding", "")),
                }
        self.items.emit(GRPC if grpc else HTTP2, req.ts, c == 1, body, st.sizes[c], st.sizes[c ^ 1],
                        elapsed, err)
