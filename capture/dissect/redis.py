"""Redis (RESP2 and RESP3): commands paired with replies in order, decoded with hiredis's reader.

Each direction is cut into whole RESP values by a length-following scanner (so binary values and
nested arrays are safe), and each value is decoded by `hiredis.Reader`. The n-th command pairs with
the n-th reply, so pipelining and MULTI/EXEC pair correctly; array, map and set replies (HGETALL,
EXEC, ...) are decoded fully. Pub/sub never shifts the pairing: the first confirmation of a
SUBSCRIBE-like command pairs with it and the others are absorbed, and pushed `message`/`pmessage`
arrays (RESP2 while subscribed, RESP3 `>` pushes) become items of their own with no request and
`response.push: true`. An error reply gives `response.type` "Error" and `response.error`.
Malformed data or a capture gap breaks the direction until a later segment starts a value; the
commands it leaves without a reply are emitted with an error, as are those still waiting when the
stream closes.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, ClassVar

import hiredis

from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol

REDIS = protocol("redis", "3.x", "REDIS", "Redis Serialization Protocol", "redis", "tcp", ["6379"], 3,
                 "https://redis.io/docs/latest/develop/reference/protocol-spec/")
MAX_MESSAGE = 16 << 20  # bytes of one RESP value kept while waiting for its end
MAX_PENDING = 4096  # commands waiting for a reply; beyond, the oldest is given up (bounded memory)
ARG_CAP = 1024  # characters of one argument kept in `request.args`

_CLIENT_START = re.compile(rb"\*[0-9]{1,9}\r\n\$")
_CLIENT_PREFIX = re.compile(rb"\*(?:[0-9]{1,9}(?:\r\n?)?)?\Z")
_INLINE = re.compile(rb"[A-Za-z]{2,32}(?: [^\r\n]*)?\r?\n")
_TYPES = {ord("+"): "Simple String", ord("-"): "Error", ord(":"): "Integer", ord("$"): "Bulk String",
          ord("*"): "Array", ord("%"): "Map", ord("~"): "Set", ord(">"): "Push", ord("_"): "Null",
          ord(","): "Double", ord("#"): "Boolean", ord("("): "Big Number", ord("="): "Verbatim String",
          ord("!"): "Error", ord("|"): "Attribute"}
_BULK, _AGGREGATE, _PAIRS = frozenset(b"$=!"), frozenset(b"*~>"), frozenset(b"%|")
_MESSAGES = frozenset({"message", "pmessage", "smessage"})
_CONFIRMS = frozenset({"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                       "sunsubscribe"})
_ERROR_CLASSES = {"MOVED": "MovedDataError", "ASK": "AskDataError", "CLUSTERDOWN": "ClusterError",
                  "BUSY": "BusyError", "NOSCRIPT": "NoScriptError"}


class _Bad(Exception):
    """The bytes are not RESP."""


def value_end(buf: bytearray, pos: int, need: int = 1) -> tuple[int, int, int]:
    """`(end, pos, need)`: the end of the RESP value being scanned, -1 while it is incomplete, and
    where the scan stopped (`pos`, values still `need`ed) so that it resumes there once more bytes
    came; `_Bad` if not RESP. A new value starts with `need` 1 at its first byte."""
    size = len(buf)
    while need:
        if pos >= size:
            return -1, pos, need
        kind = buf[pos]
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if size - pos > 64:
                raise _Bad(f"no line end in {size - pos} bytes")
            return -1, pos, need
        need -= 1
        if kind in _BULK or kind in _AGGREGATE or kind in _PAIRS:
            try:
                count = int(buf[pos + 1:eol])
            except ValueError:
                raise _Bad(f"bad length {bytes(buf[pos:eol])[:20]!r}") from None
            pos = eol + 2
            if count > MAX_MESSAGE:
                raise _Bad(f"length {count}")
            if count > 0:
                if kind in _BULK:
                    pos += count + 2
                    if pos > size:
                        return -1, pos, need
                else:
                    # a map has two values per entry; an attribute ('|') is followed by the value it annotates
                    need += count if kind in _AGGREGATE else 2 * count + (kind == 0x7C)
            elif count == 0 and kind in _BULK:
                pos += 2
        elif kind in _TYPES:
            pos = eol + 2
        else:
            raise _Bad(f"type byte {kind:#04x}")
    return (pos if pos <= size else -1), pos, need


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, hiredis.ReplyError):
        return _error_value(str(value))
    return str(value)


def _plain(value: Any) -> Any:
    """hiredis's decoded value as JSON-able data (errors inside arrays as their Kubeshark text)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, hiredis.ReplyError):
        return _error_value(str(value))
    return value


def _error_value(text: str) -> str:
    """Kubeshark's rendering of an error reply: `<Class>Error: <text>`."""
    return f"{_ERROR_CLASSES.get(text.partition(' ')[0], 'DataError')}: {text}"


def command_request(parts: list[Any]) -> dict[str, Any]:
    """The `request` of a command given as its words."""
    words = [_text(p) for p in parts]
    truncated = any(len(w) > ARG_CAP for w in words[1:])
    args = [w[:ARG_CAP] for w in words[1:]]
    value = args[1] if len(args) == 2 else f"[{', '.join(args[1:])}]" if len(args) > 2 else ""
    request = {"type": "Array", "command": words[0].upper() if words else "", "key": args[0] if args else "",
               "value": value, "keyword": "", "args": args}
    if truncated:
        request["truncated"] = True
    return request


def reply_response(kind: int, value: Any) -> dict[str, Any]:
    """The `response` of a reply whose first byte is `kind`, decoded by hiredis as `value`."""
    rtype = _TYPES.get(kind, "Unknown")
    response: dict[str, Any] = {"type": rtype, "value": "", "keyword": ""}
    if isinstance(value, hiredis.ReplyError):
        text = str(value)
        response["value"] = _error_value(text)
        response["error"] = text
    elif value is None:
        response["nil"] = True
    elif isinstance(value, list):
        response["value"] = response["array"] = _plain(value)
    elif isinstance(value, dict):
        response["value"] = response["map"] = _plain(value)
    elif kind == 0x2B:  # '+'
        text = _text(value)
        response["value"] = text
        response["keyword"] = text.upper()
    elif isinstance(value, bool | int | float):
        response["value"] = value
    else:
        response["value"] = _text(value)
    return response


class _Command:
    __slots__ = ("name", "nargs", "request", "size", "ts")

    def __init__(self, request: dict[str, Any], ts: int, size: int) -> None:
        self.request = request
        self.name = request["command"].lower()
        self.nargs = len(request["args"])
        self.ts = ts
        self.size = size


class _Side:
    __slots__ = ("broken", "buf", "reader", "scan", "ts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.reader = _reader()
        self.broken = False
        self.scan = (0, 1)  # where the scan of the value at the head of `buf` resumes: (pos, need)
        self.ts = 0  # time of the data that began the value at the head of `buf`


def _reader() -> hiredis.Reader:
    return hiredis.Reader(encoding="utf-8", errors="backslashreplace")


class Redis(Dissector):
    """The Redis dissector of one TCP connection."""

    name: ClassVar[str] = "redis"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    ports: ClassVar[frozenset[int]] = frozenset({6379})

    __slots__ = ("absorb", "client", "items", "pending", "sides", "subscribed")

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        if leader < 0:
            return MORE
        data = first[leader]
        if _CLIENT_START.match(data):
            return CLAIM
        if 6379 in (meta.server_port, meta.client_port) and _INLINE.match(data):
            return CLAIM
        return MORE if _CLIENT_PREFIX.match(data) else REJECT

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.sides = (_Side(), _Side())
        self.client = -1
        self.pending: deque[_Command] = deque()
        self.subscribed = False
        self.absorb: tuple[str, int] | None = None  # confirmations still expected: (kind, count; -1 any)

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if self.client < 0:
            self.client = direction
        side = self.sides[direction]
        client = direction == self.client
        if side.broken:
            if not data or data[0] not in (b"*" if client else _TYPES):
                return
            side.broken = False
        buf = side.buf
        if not buf:
            side.ts = ts_ns
        buf += data
        start = 0
        while start < len(buf):
            try:
                if client and buf[start] != 0x2A:  # an inline command
                    eol = buf.find(b"\n", start)
                    if eol < 0:
                        if len(buf) - start > MAX_MESSAGE:
                            raise _Bad("inline command without a line end")
                        break
                    end = eol + 1
                    value: Any = bytes(buf[start:eol]).split()
                    if not value:  # an empty line between inline commands
                        start = end
                        continue
                else:
                    pos, need = side.scan if start == 0 else (start, 1)
                    end, pos, need = value_end(buf, pos, need)
                    if end < 0:
                        if len(buf) - start > MAX_MESSAGE:
                            raise _Bad(f"value longer than {MAX_MESSAGE} bytes")
                        side.scan = (pos - start, need)
                        break
                    side.scan = (0, 1)
                    value = self._decode(side, buf, start, end)
            except (_Bad, hiredis.ProtocolError) as exc:
                who = "client" if client else "server"
                self._broken(direction, ts_ns, f"malformed RESP from the {who}: {exc}")
                return
            if client:
                self._command(value, side.ts, end - start)
            else:
                self._reply(buf[start], value, side.ts, end - start)
            side.ts = ts_ns
            start = end
        del buf[:start]

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if self.client < 0:
            self.client = 0
        self._broken(direction, ts_ns, f"{length} bytes missing from the capture")

    def on_close(self, ts_ns: int, reason: str) -> None:
        kind = "connection" if reason in ("fin", "rst") else "timeout"
        for direction, side in enumerate(self.sides):
            if side.buf and not side.broken:
                who = "command" if direction == self.client else "reply"
                self._broken(direction, ts_ns, f"a {who} cut by the end of the stream ({reason})")
        pending = self.pending
        self.pending = deque()
        for cmd in pending:
            self._emit(cmd, None, 0, 0, error(kind, f"no reply before the stream ended ({reason})"))

    # -- messages ----------------------------------------------------------------------------------

    @staticmethod
    def _decode(side: _Side, buf: bytearray, start: int, end: int) -> Any:
        if buf[start] == 0x21:  # '!' blob error: not known to hiredis
            head = buf.find(b"\r\n", start)
            return hiredis.ReplyError(bytes(buf[head + 2:end - 2]).decode("utf-8", "backslashreplace"))
        reader = side.reader
        reader.feed(bytes(buf[start:end]))
        try:
            value = reader.gets()
        except hiredis.ProtocolError:
            side.reader = _reader()
            raise
        if value is False:  # cannot happen for a whole value; treat as garbage
            side.reader = _reader()
            raise _Bad("incomplete value")
        return value

    def _command(self, value: Any, ts: int, size: int) -> None:
        if not isinstance(value, list) or not value:
            request = command_request([_text(value)] if value not in (None, []) else [])
            cmd = _Command(request, ts, size)
            self._emit(cmd, None, 0, 0, error("dissection", "a command that is not an array of strings"))
            return
        cmd = _Command(command_request(value), ts, size)
        if cmd.name in ("subscribe", "psubscribe", "ssubscribe"):
            self.subscribed = True
        pending = self.pending
        if len(pending) >= MAX_PENDING:
            self._emit(pending.popleft(), None, 0, 0,
                       error("timeout", f"no reply while {MAX_PENDING} later commands waited"))
        pending.append(cmd)

    def _reply(self, kind: int, value: Any, ts: int, size: int) -> None:
        push = kind == 0x3E  # '>'
        head = value[0].lower() if isinstance(value, list) and value and isinstance(value[0], str) else ""
        if head in _MESSAGES and (push or self.subscribed):
            self._push(kind, value, ts, size)
            return
        if head in _CONFIRMS and (push or self.subscribed or head.startswith("un")):
            if len(value) > 2 and head.startswith("un") and value[2] == 0:
                self.subscribed = False
            if self.pending and self.pending[0].name == head:
                cmd = self.pending.popleft()
                self.absorb = (head, cmd.nargs - 1 if cmd.nargs else -1)
                self._emit(cmd, reply_response(kind, value), size, ts - cmd.ts, None)
                return
            if self.absorb is not None and self.absorb[0] == head and self.absorb[1] != 0:
                self.absorb = (head, self.absorb[1] - 1)
                return
        self.absorb = None
        if push:
            self._push(kind, value, ts, size)
        elif self.pending:
            cmd = self.pending.popleft()
            self._emit(cmd, reply_response(kind, value), size, ts - cmd.ts, None)
        else:
            body = {"response": reply_response(kind, value)}
            self.items.emit(REDIS, ts, self.client == 1, body, 0, size, 0,
                            error("pair-not-found", "a reply without a command"))

    def _push(self, kind: int, value: list, ts: int, size: int) -> None:
        response = reply_response(kind, value)
        response["push"] = True
        words = [_text(v) for v in value]
        if words and words[0].lower() in _MESSAGES:
            response["kind"] = words[0].lower()
            if words[0].lower() == "pmessage" and len(words) > 3:
                response["pattern"], words = words[1], words[1:]
            response["channel"] = words[1] if len(words) > 1 else ""
            response["message"] = words[2] if len(words) > 2 else ""
        self.items.emit(REDIS, ts, self.client == 1, {"response": response}, 0, size, 0, None)

    def _broken(self, direction: int, ts: int, why: str) -> None:
        """Direction `direction` cannot be read on: skip to a later segment that starts a value; the
        commands waiting for replies are given up when the server side breaks."""
        side = self.sides[direction]
        side.buf.clear()
        side.scan = (0, 1)
        side.broken = True
        side.reader = _reader()
        if direction != self.client:
            pending = self.pending
            self.pending = deque()
            for cmd in pending:
                self._emit(cmd, None, 0, 0, error("dissection", f"the reply is lost: {why}"))
            if not pending:  # what was lost (a push, a reply to nothing seen) still counts
                body = {"response": {"type": "Unknown", "value": "", "keyword": ""}}
                self.items.emit(REDIS, ts, self.client == 1, body, 0, 0, 0, error("dissection", why))
        else:
            body = {"request": command_request([])}
            self.items.emit(REDIS, ts, self.client == 1, body, 0, 0, 0, error("dissection", why))

    def _emit(self, cmd: _Command, response: dict[str, Any] | None, response_size: int, elapsed: int,
              err: dict[str, str] | None) -> None:
        body: dict[str, Any] = {"request": cmd.request}
        if response is not None:
            body["response"] = response
        self.items.emit(REDIS, cmd.ts, self.client == 1, body, cmd.size, response_size, elapsed, err)
