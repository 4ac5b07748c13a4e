"""gRPC over HTTP/2: the call's service and method, its length-prefixed messages decoded without a
schema as protobuf wire-format field trees, and its status from the trailers.

A message tree maps each field number (as a string) to its value: varints and fixed32/64 as ints,
length-delimited fields as a nested tree when the bytes parse as a message, else as text when they
are UTF-8, else as base64; a field seen more than once maps to the list of its values. Only the
bytes the body cap kept are decoded; a message cut by it is marked `truncated`.
"""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import unquote

from pybase64 import b64encode_as_string

from capture.dissect.base import protocol
from capture.dissect.httpitem import add_value

GRPC = protocol("http", "2.0", "gRPC", "Hypertext Transfer Protocol Version 2 (HTTP/2) [ gRPC over HTTP/2 ]",
                "grpc", "tcp", ["80", "443", "8080", "50051"], 0,
                "https://grpc.github.io/grpc/core/md_doc__p_r_o_t_o_c_o_l-_h_t_t_p2.html", "#244c5a")

STATUS_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
MAX_DEPTH = 16  # nesting levels of a message tree decoded
MAX_MESSAGES = 64  # messages of one direction decoded (all are counted)


def is_grpc(content_type: str) -> bool:
    """`application/grpc`, `application/grpc+proto`, … (not `application/grpc-web`)."""
    ct = content_type.strip().lower()
    return ct.startswith("application/grpc") and not ct.startswith("application/grpc-web")


def call_names(path: str) -> dict[str, str]:
    """`/pkg.Service/Method` -> {"service": "pkg.Service", "method": "Method"}."""
    service, _, method = path.lstrip("/").partition("/")
    return {"service": service, "method": method}


class _NotMessage(Exception):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _NotMessage
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _value(raw: bytes, depth: int) -> Any:
    """A length-delimited field: a nested message, text or base64."""
    if raw and depth < MAX_DEPTH:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or not text.isprintable():
            try:
                return fields(raw, depth + 1)
            except _NotMessage:
                pass
        if text is not None:
            return text
        return b64encode_as_string(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return b64encode_as_string(raw)


def fields(data: bytes, depth: int = 0) -> dict[str, Any]:
    """The field tree of protobuf wire-format `data`; `_NotMessage` when it does not parse."""
    out: dict[str, Any] = {}
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number < 1 or number > 536870911:
            raise _NotMessage
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _NotMessage
            value = int.from_bytes(data[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise _NotMessage
            value = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise _NotMessage
            value = _value(data[pos:pos + length], depth)
            pos += length
        else:  # groups (3, 4) are deprecated; 6 and 7 do not exist
            raise _NotMessage
        add_value(out, str(number), value)
    return out


class MessageCounter:
    """Counts the length-prefixed messages of a body fed in pieces (all of it, beyond the cap too)."""

    __slots__ = ("count", "head", "skip")

    def __init__(self) -> None:
        self.count = 0
        self.skip = 0  # bytes of the current message still to come
        self.head = b""  # a prefix split across pieces

    def feed(self, data: bytes | memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self.skip:
                step = min(self.skip, end - pos)
                self.skip -= step
                pos += step
                continue
            need = 5 - len(self.head)
            self.head += bytes(data[pos:pos + need])
            pos += need
            if len(self.head) == 5:
                self.count += 1
                self.skip = int.from_bytes(self.head[1:5], "big")
                self.head = b""


def messages(body: bytes | bytearray, encoding: str) -> list[dict[str, Any]]:
    """The messages in the kept bytes of a body (the first `MAX_MESSAGES`): compressed flag, length,
    and the field tree (`fields`), or `raw` base64 when it is not protobuf, or `truncated` when the
    body cap cut it."""
    out: list[dict[str, Any]] = []
    pos = 0
    kept = len(body)
    while pos + 5 <= kept and len(out) < MAX_MESSAGES:
        compressed = body[pos] == 1
        length = int.from_bytes(body[pos + 1:pos + 5], "big")
        start, pos = pos + 5, pos + 5 + length
        msg: dict[str, Any] = {"compressed": compressed, "length": length}
        if pos > kept:
            msg["truncated"] = True
        else:
            raw: bytes | None = bytes(body[start:pos])
            if compressed:
                raw = _inflate(raw, encoding)
            if raw is not None:
                try:
                    msg["fields"] = fields(raw)
                except _NotMessage:
                    msg["raw"] = b64encode_as_string(raw)
        out.append(msg)
    return out


def _inflate(raw: bytes, encoding: str) -> bytes | None:
    coding = encoding.strip().lower()
    if coding not in ("gzip", "deflate"):
        return None
    try:
        return zlib.decompress(raw, 47 if coding == "gzip" else 15)
    except zlib.error:
        return None


def status(headers: dict[str, str]) -> dict[str, Any]:
    """`response.grpc`'s status fields from `Grpc-Status`/`Grpc-Message` (status -1 when absent)."""
    text = headers.get("Grpc-Status")
    try:
        code = int(text) if text is not None else -1
    except ValueError:
        code = -1
    name = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else ("" if code < 0 else f"CODE_{code}")
    return {"status": code, "statusName": name, "message": unquote(headers.get("Grpc-Message", ""))}
