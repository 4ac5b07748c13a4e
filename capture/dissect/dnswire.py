"""DNS wire format to Kubeshark's `request`/`response` shapes, fast and defensive.

dnspython's `Message.from_wire` costs 40 µs for a query and over 200 µs for a small answer here,
too slow for the item pipeline, so messages are walked directly; dnspython supplies the type and
class mnemonics. Any structural problem (truncation, bad label, forward or looping compression
pointer, over-long name, record running past its length) raises `Malformed`; what was parsed
before it stays in the `Parsed` object so a malformed message still gives a useful item.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import dns.rdataclass
import dns.rdatatype

OPCODES = {0: "Query", 1: "IQuery", 2: "Status", 4: "Notify", 5: "Update"}

# Kubeshark's (gopacket's) RCODE texts.
RCODES = {
    0: "No Error",
    1: "Format Error",
    2: "Server Failure",
    3: "Non-Existent Domain",
    4: "Not Implemented",
    5: "Query Refused",
    6: "Name Exists when it should not",
    7: "RR Set Exists when it should not",
    8: "RR Set that should exist does not",
    9: "Server Not Authoritative for zone",
    10: "Name not contained in zone",
    16: "Bad OPT Version",
    17: "Key not recognized",
    18: "Signature out of time window",
    19: "Bad TKEY Mode",
    20: "Duplicate key name",
    21: "Algorithm not supported",
    22: "Bad Truncation",
}

# EDNS option codes as gopacket names them (for the `opt` text).
OPT_CODES = {3: "NSID", 5: "DAU", 6: "DHU", 7: "N3U", 8: "ClientSubnet", 9: "Expire", 10: "Cookie",
             11: "TcpKeepAlive", 12: "Padding", 13: "Chain", 14: "EDNSKeyTag"}

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, URI = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 256

_SAFE = bytes(c for c in range(0x21, 0x7F) if c not in b'"();\\@$')  # printed as they are
_SPECIAL = frozenset(b'"().;\\@$')
_HEADER = struct.Struct("!6H")
_QUESTION = struct.Struct("!HH")
_RR_HEAD = struct.Struct("!HHIH")
_types: dict[int, str] = {}
_classes: dict[int, str] = {}


class Malformed(ValueError):
    """The message breaks the wire format; the text says where."""


def type_text(t: int) -> str:
    text = _types.get(t)
    if text is None:
        text = _types[t] = dns.rdatatype.to_text(t)
    return text


def class_text(c: int) -> str:
    text = _classes.get(c)
    if text is None:
        text = _classes[c] = dns.rdataclass.to_text(c)
    return text


def rcode_text(rcode: int) -> str:
    return RCODES.get(rcode, "Unknown")


def read_name(buf: bytes, off: int, seen: dict[int, tuple[str, int]]) -> tuple[str, int]:
    """The name at `off` (no trailing dot, `""` for the root) and the offset after it.

    `seen` maps the offsets of names already read in this message to (name, label bytes): a
    compression pointer to one of them ends the walk there. The name read is added to it."""
    start = off
    n = len(buf)
    labels: list[bytes] = []
    end = -1
    limit = off  # every compression pointer must point before the previous one
    length = 0
    suffix = ""
    while True:
        if off >= n:
            raise Malformed(f"name runs past the end of the message at offset {off}")
        c = buf[off]
        if c == 0:
            off += 1
            break
        kind = c & 0xC0
        if kind == 0xC0:
            if off + 1 >= n:
                raise Malformed(f"compression pointer cut at offset {off}")
            ptr = ((c & 0x3F) << 8) | buf[off + 1]
            if end < 0:
                end = off + 2
            if ptr >= limit:
                raise Malformed(f"compression pointer at offset {off} does not point backwards (loop)")
            known = seen.get(ptr)
            if known is not None:
                suffix, more = known
                length += more
                if length > 255:
                    raise Malformed("name longer than 255 bytes")
                break
            limit = off = ptr
            continue
        if kind:
            raise Malformed(f"unsupported label type 0x{c:02x} at offset {off}")
        off += 1
        if off + c > n:
            raise Malformed(f"label runs past the end of the message at offset {off - 1}")
        labels.append(buf[off:off + c])
        off += c
        length += c + 1
        if length > 255:
            raise Malformed("name longer than 255 bytes")
    if labels:
        raw = b".".join(labels)
        if raw.translate(None, _SAFE) or raw.count(b".") != len(labels) - 1:
            text = ".".join(_escaped(label) for label in labels)
        else:
            text = raw.decode("ascii")
        if suffix:
            text = f"{text}.{suffix}"
    else:
        text = suffix
    seen[start] = (text, length)
    return text, (end if end >= 0 else off)


def _escaped(label: bytes) -> str:
    """Master-file escapes, as dnspython writes them: `\\.` for specials, `\\DDD` otherwise."""
    out = []
    for c in label:
        if c in _SPECIAL:
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


class Parsed:
    """What was read of one message; `error` is the `Malformed` text or None."""

    __slots__ = ("additionals", "answers", "authorities", "flags", "id", "opcode", "qr", "questions",
                 "rcode", "error")

    def __init__(self) -> None:
        self.id = -1
        self.flags = 0
        self.qr = False
        self.opcode = 0
        self.rcode = 0
        self.questions: list[dict[str, str]] = []
        self.answers: list[dict[str, Any]] = []
        self.authorities: list[dict[str, Any]] = []
        self.additionals: list[dict[str, Any]] = []
        self.error: str | None = None

    def request(self) -> dict[str, Any]:
        return {"opCode": OPCODES.get(self.opcode, "Unknown"), "questions": self.questions}

    def response(self) -> dict[str, Any]:
        return {"code": rcode_text(self.rcode), "answers": self.answers, "authorities": self.authorities,
                "additionals": self.additionals}


_RR = {"name": "", "type": "", "class": "", "ttl": 0, "ip": "<nil>", "ns": "", "cname": "", "ptr": "",
       "txts": "", "soa": "", "srv": "", "mx": "", "opt": "", "uri": ""}


def _rr(buf: bytes, off: int, seen: dict[int, tuple[str, int]]) -> tuple[dict[str, Any], int]:
    name, off = read_name(buf, off, seen)
    if off + 10 > len(buf):
        raise Malformed(f"record header cut at offset {off}")
    rtype, rclass, ttl, rdlen = _RR_HEAD.unpack_from(buf, off)
    start = off + 10
    end = start + rdlen
    if end > len(buf):
        raise Malformed(f"record data runs past the end of the message at offset {off}")
    rr: dict[str, Any] = _RR.copy()
    rr["name"] = name
    rr["type"] = _types.get(rtype) or type_text(rtype)
    rr["class"] = _classes.get(rclass) or class_text(rclass)
    rr["ttl"] = ttl
    if rtype in (A, AAAA):
        size = 4 if rtype == A else 16
        if rdlen != size:
            raise Malformed(f"{type_text(rtype)} record with {rdlen} data bytes at offset {off}")
        rr["ip"] = socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, buf[start:end])
    elif rtype in (CNAME, NS, PTR):
        target = _name_in(buf, start, end, seen)
        rr["cname" if rtype == CNAME else "ns" if rtype == NS else "ptr"] = target
    elif rtype == MX:
        rr["mx"] = _name_in(buf, start + 2, end, seen)
    elif rtype == SRV:
        rr["srv"] = _name_in(buf, start + 6, end, seen)
    elif rtype == SOA:
        _mname, at = read_name(buf, start, seen)
        rr["soa"] = _name_in(buf, at, end, seen)
    elif rtype == TXT:
        parts = []
        at = start
        while at < end:
            size = buf[at]
            if at + 1 + size > end:
                raise Malformed(f"TXT string runs past its record at offset {at}")
            parts.append(", " + buf[at + 1:at + 1 + size].decode("utf-8", "replace"))
            at += 1 + size
        rr["txts"] = "".join(parts)
    elif rtype == OPT:
        parts = []
        at = start
        while at + 4 <= end:
            code = (buf[at] << 8) | buf[at + 1]
            size = (buf[at + 2] << 8) | buf[at + 3]
            if at + 4 + size > end:
                raise Malformed(f"EDNS option runs past its record at offset {at}")
            parts.append(f", {OPT_CODES.get(code, f'Unknown({code})')}={buf[at + 4:at + 4 + size].hex()}")
            at += 4 + size
        rr["opt"] = "".join(parts)
    elif rtype == URI and rdlen >= 4:
        rr["uri"] = buf[start + 4:end].decode("utf-8", "replace")
    return rr, end


def _name_in(buf: bytes, start: int, end: int, seen: dict[int, tuple[str, int]]) -> str:
    if start > end:
        raise Malformed(f"record data too short at offset {start}")
    name, after = read_name(buf, start, seen)
    if after > end:
        raise Malformed(f"name runs past its record at offset {start}")
    return name


def parse(buf: bytes) -> Parsed:
    """Parse one DNS message; never raises (problems end up in `.error`)."""
    msg = Parsed()
    try:
        if len(buf) < 12:
            raise Malformed(f"message of {len(buf)} bytes is shorter than a DNS header")
        msg.id, flags, qd, an, ns, ar = _HEADER.unpack_from(buf)
        msg.flags = flags
        msg.qr = bool(flags & 0x8000)
        msg.opcode = (flags >> 11) & 0xF
        msg.rcode = flags & 0xF
        off = 12
        seen: dict[int, tuple[str, int]] = {}
        questions = msg.questions
        for _ in range(qd):
            name, off = read_name(buf, off, seen)
            if off + 4 > len(buf):
                raise Malformed(f"question cut at offset {off}")
            qtype, qclass = _QUESTION.unpack_from(buf, off)
            questions.append({"name": name, "type": _types.get(qtype) or type_text(qtype),
                              "class": _classes.get(qclass) or class_text(qclass)})
            off += 4
        for count, section in ((an, msg.answers), (ns, msg.authorities), (ar, msg.additionals)):
            for _ in range(count):
                rr, off = _rr(buf, off, seen)
                section.append(rr)
    except Malformed as exc:
        msg.error = str(exc)
    return msg
