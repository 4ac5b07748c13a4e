"""Fast, deterministic, reassemblable synthetic traffic: classic pcap of HTTP/1.1 and DNS.

What it writes (Ethernet link type, microsecond classic pcap, correct IP/TCP/UDP checksums):
  * HTTP/1.1 connections (servers on 80/8080, ephemeral client ports): 3-way handshake, 1-5
    keep-alive exchanges (GET/POST, Host/User-Agent/Content-Type/Content-Length), responses with
    200 B - 15 kB bodies segmented at MSS 1448 (JSON, gzip-encoded JSON, HTML, chunked), client ACKs
    every second segment, FIN close (some RST). About `http500_ratio` of the connections hold at
    least one status-500 response; the others get 200/201/204/301/304/400/403/404/502/503.
  * DNS over UDP/53 (about `dns_ratio` of all packets): A/AAAA queries and answers, some CNAME
    chains, some NXDOMAIN, some A+AAAA pairs on one socket; every 40th DNS flow is DNS over TCP
    (1-3 length-prefixed queries on one connection).
  * `ipv6_ratio` of the flows are IPv6.
  * `plain=True`: the HTTP of a browser on plain sites instead — GETs with browser headers (Accept,
    Accept-Language, Cookie, Referer, Sec-Fetch-*), 2-10 keep-alive exchanges per connection, JSON and
    HTML bodies with Content-Length, none gzip-encoded or chunked (bench/README.md: "shapes").
Sequence and acknowledgement numbers are exact, so tshark reassembles every stream and reports
no lost segment, retransmission, dup-ack or malformed packet. Every 5-tuple is used once.
Flows start spread over [start, start + duration] and overlap in time; packets are written in
timestamp order (first packet of a flow at its start, so tshark numbers streams in truth order).
Same arguments and seed give the same bytes.

Speed: the first 1024 HTTP (and 512 DNS, 32 DNS-over-TCP) flows of each address family are built
in full; later flows re-instantiate one of them at random (template replay) with a new client
address, ephemeral port, ISNs (< 2**30) and IP ids, so payloads repeat but every flow is its own
5-tuple. About 300 k packets/s (120 MB/s) of CPU on this machine, in constant memory (~60 MB RSS).

Python API (import as `from bench.trafficgen import generate, write_capture, Truth`):

    generate(out: BinaryIO, *, packets: int, seed: int = 1, start: float = DEFAULT_START,
             duration: float | None = None, http500_ratio: float = 0.10, dns_ratio: float = 0.10,
             ipv6_ratio: float = 0.0, truth: bool = False, plain: bool = False) -> Truth
        Write a pcap of about `packets` packets (it stops after the flow that reaches the target)
        to `out`. `duration` defaults to packets / 20 000 seconds. The returned Truth always has
        the counters; with `truth=True` it also lists every stream (costs memory on big captures).

    write_capture(path: str | Path, *, gzip: bool = False, truth_path: str | Path | None = None,
                  **kw) -> Truth
        The same to a file ("-" = stdout), gzip-compressed when asked (or when path ends in .gz);
        `truth_path` writes the Truth as JSON (and implies truth=True).

Truth.to_dict() has the shape of tests/pcaps/oracle/*.json where both exist:
    http500_streams    [[client_ip, client_port, server_ip, server_port], ...]  (tcp.stream order)
    dns_flows          [["udp"|"tcp", client_ip, client_port, server_ip, server_port], ...]
    packets_per_stream {"tcp": [{"stream", "tuple", "packets"}], "udp": [...]}; stream is tshark's
                       tcp.stream / udp.stream index, tuple is client -> server
    http_status_by_stream [{"tcp_stream", "tuple", "codes"}], plus counters: packets, bytes,
    first_ts, last_ts, http_connections, http_exchanges, http_status {code: n}, dns_queries,
    dns_responses, dns_tcp_connections.

CLI:
    python -m bench.trafficgen --packets 200000 --out F.pcap [--duration 10800] [--seed N]
        [--start EPOCH] [--http500-ratio R] [--dns-ratio R] [--ipv6-ratio R] [--truth F.json] [--gzip]
        [--plain]
    `--out -` streams the pcap to stdout.
"""

from __future__ import annotations

import argparse
import gc
import gzip as gzip_mod
import ipaddress
import json
import random
import struct
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

DEFAULT_START = 1_700_000_000.0
DEFAULT_RATE = 20_000  # packets per second when no duration is given
MSS = 1448
WINDOW = 65535
DNS_TCP_EVERY = 40

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_REC = struct.Struct("<IIII")
# eth + ver/ihl/tos | total length | id | flags/frag/ttl/proto | checksum | addrs+ports | tcp...
_TCP4 = struct.Struct("!16sHH4sH12sII4sH")  # ... seq, ack, offset/flags+window, checksum (+ urg, payload)
_TCP6 = struct.Struct("!18sH2s36sII4sH")
_UDP4 = struct.Struct("!16sHH4sH12sHH")
_UDP6 = struct.Struct("!18sH2s36sHH")

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
_FLUSH_AT = 16384
_TTL_C, _TTL_S = 64, 57  # ip ttl / hop limit of client and server packets (captured at the client)
_PORTS = struct.Struct("!HH")
_TIME = itemgetter(0)
_MAC_GW = bytes.fromhex("02000a010001")
# ISNs below 2**30 - 2**24: seq/ack never wrap inside a flow (checksums need no masking) and stay
# single-digit Python ints (fast arithmetic)
_ISN_MAX = (1 << 30) - (1 << 24)
_IPID_MAX = 65536 - 512  # ip id base + per-direction packet index stays below 65536
_POOL = {"http": 1024, "dns": 512, "dns-tcp": 32}  # distinct flows built before flows are reused
_LITTLE = sys.byteorder == "little"


def _value(data: bytes) -> int:
    """`data` as one big-endian number: its ones'-complement 16-bit word sum, modulo 0xFFFF."""
    v = int.from_bytes(data, "big")
    return v << 8 if len(data) & 1 else v


class _Blob:
    """Bytes with prefix word sums, so the checksum of any slice costs O(1)."""

    __slots__ = ("data", "_pre")

    def __init__(self, data: bytes) -> None:
        self.data = data
        words = array("H", data[: len(data) & ~1])
        if _LITTLE:
            words.byteswap()
        self._pre = list(accumulate(words, initial=0))

    def _prefix(self, k: int) -> int:
        if k & 1:
            return self._pre[k >> 1] * 256 + self.data[k - 1]
        return self._pre[k >> 1]

    def sum(self, i: int, j: int) -> int:
        """data[i:j] as one big-endian number, modulo 0xFFFF (not padded to an even length)."""
        return self._prefix(j) - self._prefix(i) * (256 if (j - i) & 1 else 1)


@dataclass(slots=True)
class _Template:
    """One flow's packets relative to its start: reused with other client addresses and ISNs."""

    kind: str  # "http", "dns" (udp) or "dns-tcp"
    sip: bytes
    sport: int
    proto: int
    v6: bool
    entries: list[tuple]  # see _Generator._take
    codes: list[int]
    queries: int
    # constant header parts and checksum contributions of the server side (see _Generator._flow)
    mid_c: bytes = b""
    mid_s: bytes = b""
    ipk_c: int = 0
    ipk_s: int = 0
    l4k: int = 0
    span: int = 0  # µs from the first to the last packet
    has500: bool = False
    uses: int = 0  # flows made from it so far

    def __post_init__(self) -> None:
        self.span = self.entries[-1][1]
        self.has500 = 500 in self.codes
        sval = int.from_bytes(self.sip, "big")
        self.l4k = sval + self.proto + self.sport + (WINDOW if self.proto == 6 else 0)
        if self.v6:
            self.mid_c, self.mid_s = bytes((self.proto, _TTL_C)), bytes((self.proto, _TTL_S))
        else:
            self.mid_c = bytes((0x40, 0, _TTL_C, self.proto))
            self.mid_s = bytes((0x40, 0, _TTL_S, self.proto))
            self.ipk_c = 0x4500 + 0x4000 + (_TTL_C << 8 | self.proto) + sval
            self.ipk_s = 0x4500 + 0x4000 + (_TTL_S << 8 | self.proto) + sval


@dataclass
class Truth:
    """What the generator wrote (see the module docstring for the JSON shape)."""

    packets: int = 0
    bytes: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    http_connections: int = 0
    http500_connections: int = 0
    http_exchanges: int = 0
    http_status: Counter = field(default_factory=Counter)
    dns_queries: int = 0
    dns_responses: int = 0
    dns_tcp_connections: int = 0
    http500_streams: list = field(default_factory=list)
    http_status_by_stream: list = field(default_factory=list)
    dns_flows: list = field(default_factory=list)
    tcp_streams: list = field(default_factory=list)
    udp_streams: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "http_connections": self.http_connections,
            "http500_connections": self.http500_connections,
            "http_exchanges": self.http_exchanges,
            "http_status": {str(k): v for k, v in sorted(self.http_status.items())},
            "dns_queries": self.dns_queries,
            "dns_responses": self.dns_responses,
            "dns_tcp_connections": self.dns_tcp_connections,
            "http500_streams": self.http500_streams,
            "http_status_by_stream": self.http_status_by_stream,
            "dns_flows": self.dns_flows,
            "packets_per_stream": {
                "tcp": [{"stream": i, "tuple": t, "packets": n} for i, (t, n) in enumerate(self.tcp_streams)],
                "udp": [{"stream": i, "tuple": t, "packets": n} for i, (t, n) in enumerate(self.udp_streams)],
            },
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 304: "Not Modified",
            400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}
_OTHER_CODES = [200] * 70 + [201] * 4 + [204] * 3 + [301] * 3 + [304] * 5 + [400] * 2 + [403] * 2 \
    + [404] * 8 + [502] * 1 + [503] * 2
_USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "okhttp/4.12.0",
    "kube-probe/1.30", "Prometheus/2.53.0",
]
_SERVERS = ["nginx/1.24.0", "Apache/2.4.62 (Debian)", "envoy", "gunicorn", "Kestrel"]
_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
          "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
          "victor", "whiskey", "xray", "yankee", "zulu"]
_PATHS = ["/api/v1/orders", "/api/v1/users", "/api/v2/items", "/health", "/metrics", "/index.html",
          "/static/app.js", "/api/v1/cart", "/search", "/api/v1/payments", "/login", "/api/v1/inventory"]
_ZONES = ["example.com", "example.net", "example.org", "svc.cluster.local", "corp.example"]


class _Generator:
    def __init__(self, out: BinaryIO, packets: int, seed: int, start: float, duration: float | None,
                 http500_ratio: float, dns_ratio: float, ipv6_ratio: float, truth: bool,
                 plain: bool = False) -> None:
        self.out = out
        self.target = max(1, packets)
        self.rng = random.Random(seed)
        self.start_us = round(start * 1_000_000)
        dur = duration if duration is not None else self.target / DEFAULT_RATE
        self.dur_us = max(1, round(dur * 1_000_000))
        self.http500_ratio = http500_ratio
        self.dns_ratio = dns_ratio
        self.ipv6_ratio = ipv6_ratio
        self.plain = plain
        self.keep = truth
        self.truth = Truth()
        self.pending: list[tuple[int, bytes, bytes]] = []  # (µs since the start, headers, payload)
        self.n = 0
        self.dns_packets = 0
        self._raw: list[tuple] = []
        self.pools: dict[tuple[str, bool], list[_Template]] = {
            (k, v6): [] for k in _POOL for v6 in (False, True)}
        # mean time between flow starts, and the time scale inside flows (overlap of ~5 flows)
        self.gap_us = self.dur_us * 14 / self.target
        self.idle_us = min(max(20_000.0, 2 * self.gap_us), self.dur_us / 40)
        self.think_us = min(max(3_000.0, self.gap_us / 4), self.dur_us / 200)
        self._build_pools()

    # ---------------------------------------------------------------- pools
    def _build_pools(self) -> None:
        rng = self.rng
        self.clients4 = [_client_info(bytes((10, 1, i >> 8, i & 0xFF))) for i in range(1, 4097)]
        self.clients6 = [_client_info(ipaddress.IPv6Address(f"fd00:1::{i:x}").packed) for i in range(1, 1025)]
        self.next_port: dict[bytes, int] = {}
        self.servers4 = [(bytes((198, 51, 100, i)), f"{rng.choice(_WORDS)}{i}.{rng.choice(_ZONES)}")
                         for i in range(10, 42)]
        self.servers6 = [(ipaddress.IPv6Address(f"2001:db8::{i:x}").packed,
                          f"v6-{rng.choice(_WORDS)}{i}.example.com") for i in range(10, 26)]
        self.resolvers4 = [bytes((10, 1, 0, 53)), bytes((192, 0, 2, 53))]
        self.resolvers6 = [ipaddress.IPv6Address("fd00:1::53").packed]
        self.json_bodies = [_Blob(self._json(rng, self._size(rng))) for _ in range(24)]
        self.gzip_bodies = [_Blob(gzip_mod.compress(self._json(rng, self._size(rng)), 6, mtime=0))
                            for _ in range(16)]
        self.html_bodies = [_Blob(self._html(rng, self._size(rng))) for _ in range(16)]
        self.chunked_bodies = [_Blob(self._chunked(rng, self._json(rng, self._size(rng)))) for _ in range(12)]
        self.error_bodies = [_Blob(self._json(rng, rng.randint(200, 1500), error=True)) for _ in range(8)]
        self.small_html = [_Blob(self._html(rng, rng.randint(200, 600))) for _ in range(8)]
        self.post_bodies = [self._json(rng, rng.randint(60, 2500)) for _ in range(16)]
        self.dns_templates = [self._dns_template(rng) for _ in range(256)]

    @staticmethod
    def _size(rng: random.Random) -> int:
        return int(200 * (75 ** rng.random()))  # log-uniform 200 B .. 15 kB

    @staticmethod
    def _json(rng: random.Random, size: int, error: bool = False) -> bytes:
        if error:
            parts = [f'{{"error":"internal","message":"{" ".join(rng.choices(_WORDS, k=6))}","trace":[']
        else:
            parts = ['{"items":[']
        n = len(parts[0])
        i = 0
        while n < size - 40:
            tags = f'"{rng.choice(_WORDS)}","{rng.choice(_WORDS)}"'
            item = (f'{"," if i else ""}{{"id":{rng.randint(1, 99999)},"name":"{rng.choice(_WORDS)}",'
                    f'"price":{rng.randint(1, 9999) / 100},"tags":[{tags}]}}')
            parts.append(item)
            n += len(item)
            i += 1
        parts.append(f'],"count":{i}}}')
        return "".join(parts).encode()

    @staticmethod
    def _html(rng: random.Random, size: int) -> bytes:
        head = f"<!DOCTYPE html>\n<html><head><title>{rng.choice(_WORDS)}</title></head><body>\n"
        parts = [head]
        n = len(head)
        while n < size - 20:
            p = f"<p>{' '.join(rng.choices(_WORDS, k=rng.randint(5, 20)))}</p>\n"
            parts.append(p)
            n += len(p)
        parts.append("</body></html>\n")
        return "".join(parts).encode()

    @staticmethod
    def _chunked(rng: random.Random, body: bytes) -> bytes:
        out = []
        i = 0
        while i < len(body):
            k = rng.randint(256, 4096)
            piece = body[i : i + k]
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
            i += k
        out.append(b"0\r\n\r\n")
        return b"".join(out)

    @staticmethod
    def _dns_name(name: str) -> bytes:
        return b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\x00"

    def _dns_template(self, rng: random.Random) -> tuple[bytes, bytes]:
        """(query without its id, response without its id)."""
        zone = rng.choice(_ZONES)
        name = f"{rng.choice(_WORDS)}{rng.randint(1, 999)}.{rng.choice(['api', 'cdn', 'www', 'db'])}.{zone}"
        qtype = 28 if rng.random() < 0.3 else 1
        question = self._dns_name(name) + struct.pack("!HH", qtype, 1)
        query = struct.pack("!HHHHH", 0x0100, 1, 0, 0, 0) + question
        nx = rng.random() < 0.08
        if nx:
            soa = (self._dns_name(zone) + struct.pack("!HHIH", 6, 1, 900, 0))
            rdata = (self._dns_name(f"ns1.{zone}") + self._dns_name(f"hostmaster.{zone}")
                     + struct.pack("!IIIII", 2024010101, 7200, 3600, 1209600, 300))
            soa = soa[:-2] + struct.pack("!H", len(rdata)) + rdata
            resp = struct.pack("!HHHHH", 0x8183, 1, 0, 1, 0) + question + soa
            return query, resp
        answers = []
        owner = b"\xc0\x0c"
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            target = f"{rng.choice(_WORDS)}.edge{rng.randint(1, 99)}.{rng.choice(_ZONES)}"
            rdata = self._dns_name(target)
            answers.append(owner + struct.pack("!HHIH", 5, 1, rng.randint(30, 3600), len(rdata)) + rdata)
            owner = rdata
        for _ in range(rng.randint(1, 4)):
            if qtype == 1:
                rdata = bytes((203, 0, 113, rng.randint(1, 254)))
            else:
                v6 = f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
                rdata = ipaddress.IPv6Address(v6).packed
            answers.append(owner + struct.pack("!HHIH", qtype, 1, rng.randint(30, 3600), len(rdata)) + rdata)
        resp = struct.pack("!HHHHH", 0x8180, 1, len(answers), 0, 0) + question + b"".join(answers)
        return query, resp

    # ---------------------------------------------------------------- templates
    def _tcp(self, d: int, ts: int, seq: int, ack: int, flags: int, payload: bytes = b"",
             psum: int = 0) -> None:
        """Record one TCP segment of the template being built (seq/ack relative to the ISNs)."""
        self._raw.append((d, ts, seq, ack, flags, payload, psum))

    def _udp(self, d: int, ts: int, payload: bytes) -> None:
        self._raw.append((d, ts, -1, 0, 0, payload, _value(payload)))

    def _handshake(self, t: int, rtt: int) -> int:
        self._tcp(0, t, 0, 0, SYN)
        t += rtt
        self._tcp(1, t, 0, 1, SYN | ACK)
        t += 30 + self.rng.randrange(100)
        self._tcp(0, t, 1, 1, ACK)
        return t

    def _close(self, t: int, rtt: int, cs: int, ss: int, server_first: bool) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            self._tcp(0, t, cs, ss, RST | ACK)
        elif r < 0.12:
            self._tcp(1, t, ss, cs, RST | ACK)
        elif server_first:
            self._tcp(1, t, ss, cs, FIN | ACK)
            t += 40 + rng.randrange(200)
            self._tcp(0, t, cs, ss + 1, FIN | ACK)
            self._tcp(1, t + rtt, ss + 1, cs + 1, ACK)
        else:
            self._tcp(0, t, cs, ss, FIN | ACK)
            t += rtt
            self._tcp(1, t, ss, cs + 1, FIN | ACK)
            self._tcp(0, t + 30 + rng.randrange(100), cs + 1, ss + 1, ACK)

    def _request(self, host: str, last: bool) -> bytes:
        rng = self.rng
        path = rng.choice(_PATHS)
        conn = "close" if last and rng.random() < 0.5 else "keep-alive"
        ua = rng.choice(_USER_AGENTS)
        if self.plain:
            return self._browser_request(host, path, ua, conn)
        if rng.random() < 0.2:
            body = rng.choice(self.post_bodies)
            return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                    f"Accept: application/json\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"Connection: {conn}\r\n\r\n").encode() + body
        q = f"?id={rng.randint(1, 99999)}" if rng.random() < 0.5 else ""
        return (f"GET {path}{q} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
                f"Accept-Encoding: gzip, deflate\r\nConnection: {conn}\r\n\r\n").encode()

    def _browser_request(self, host: str, path: str, ua: str, conn: str) -> bytes:
        """A GET as a browser sends it: many headers, a cookie, no compression asked for."""
        rng = self.rng
        q = f"?id={rng.randint(1, 99999)}&page={rng.randint(1, 40)}" if rng.random() < 0.5 else ""
        return (f"GET {path}{q} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                "image/webp,*/*;q=0.8\r\n"
                "Accept-Language: en-US,en;q=0.9,de;q=0.7\r\nAccept-Encoding: identity\r\n"
                f"Referer: http://{host}/{rng.choice(_WORDS)}\r\n"
                f"Cookie: session={rng.getrandbits(96):024x}; theme=dark; consent=1\r\n"
                "Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"
                "Sec-Fetch-Site: same-origin\r\nCache-Control: max-age=0\r\n"
                f"Connection: {conn}\r\n\r\n").encode()

    def _response(self, code: int, close: bool) -> tuple[bytes, _Blob | None]:
        rng = self.rng
        extra = ""
        enc = ""
        chunked = False
        body: _Blob | None
        if code in (204, 304):
            body = None
            ctype = ""
        elif code == 200:
            r = rng.random()
            if self.plain:  # no compressed and no chunked bodies
                body, ctype = (rng.choice(self.json_bodies), "application/json") if r < 0.5 else (
                    rng.choice(self.html_bodies), "text/html; charset=utf-8")
            elif r < 0.4:
                body, ctype = rng.choice(self.json_bodies), "application/json"
            elif r < 0.6:
                body, ctype, enc = rng.choice(self.gzip_bodies), "application/json", "gzip"
            elif r < 0.8:
                body, ctype = rng.choice(self.html_bodies), "text/html; charset=utf-8"
            else:
                body, ctype, chunked = rng.choice(self.chunked_bodies), "application/json", True
        elif code >= 500:
            body, ctype = rng.choice(self.error_bodies), "application/json"
        elif code == 301:
            body, ctype = rng.choice(self.small_html), "text/html"
            extra = f"Location: https://{rng.choice(_ZONES)}/{rng.choice(_WORDS)}\r\n"
        else:
            body, ctype = rng.choice(self.small_html), "text/html"
        head = [f"HTTP/1.1 {code} {_REASONS[code]}\r\nServer: {rng.choice(_SERVERS)}\r\n"]
        if ctype:
            head.append(f"Content-Type: {ctype}\r\n")
        if enc:
            head.append(f"Content-Encoding: {enc}\r\n")
        if chunked:
            head.append("Transfer-Encoding: chunked\r\n")
        elif body is not None:
            head.append(f"Content-Length: {len(body.data)}\r\n")
        head.append(f"{extra}Connection: {'close' if close else 'keep-alive'}\r\n"
                    f"X-Request-Id: {rng.getrandbits(64):016x}\r\n\r\n")
        return "".join(head).encode(), body

    def _send_message(self, d: int, t: int, seq: int, ack: int, head: bytes, body: _Blob | None,
                      gap: int) -> tuple[int, int]:
        """Send head+body from side `d` in MSS segments; the receiver ACKs every second one."""
        segs: list[tuple[bytes, int]]
        if body is None:
            segs = [(head, _value(head))]
        else:
            data = body.data
            k = min(MSS - len(head), len(data))
            v = int.from_bytes(head, "big") * (256 if k & 1 else 1) + body.sum(0, k)
            segs = [(head + data[:k], v << 8 if (len(head) + k) & 1 else v)]
            for off in range(k, len(data), MSS):
                end = min(off + MSS, len(data))
                v = body.sum(off, end)
                segs.append((data[off:end], v << 8 if (end - off) & 1 else v))
        last = len(segs) - 1
        for i, (payload, psum) in enumerate(segs):
            self._tcp(d, t, seq, ack, PSH | ACK if i == last else ACK, payload, psum)
            seq += len(payload)
            t += gap
            if i & 1 or i == last:
                self._tcp(1 - d, t, ack, seq, ACK)
                t += 20
        return t, seq

    def _build_http(self, v6: bool, index: int) -> _Template:
        """The `index`-th HTTP template; exactly http500_ratio of the templates (by index) hold a 500."""
        rng = self.rng
        sip, host = rng.choice(self.servers6 if v6 else self.servers4)
        sport = 80 if rng.random() < 0.75 else 8080
        if sport != 80:
            host = f"{host}:{sport}"
        rtt = 200 + int(rng.expovariate(1 / 8000))
        t = self._handshake(0, rtt)
        cs = ss = 1
        n_ex = rng.randint(2, 10) if self.plain else rng.randint(1, 5)
        r = self.http500_ratio
        bad = rng.randrange(n_ex) if int((index + 1) * r) > int(index * r) else -1
        codes = []
        close_req = False
        for i in range(n_ex):
            if i:
                t += int(rng.expovariate(1 / self.idle_us))
            req = self._request(host, i == n_ex - 1)
            close_req = b"Connection: close" in req
            t += 40
            think = int(rng.expovariate(1 / self.think_us))
            if len(req) <= MSS:
                self._tcp(0, t, cs, ss, PSH | ACK, req, _value(req))
                cs += len(req)
                if think > 40_000:  # delayed ACK of the request before a slow response
                    self._tcp(1, t + rtt + 40_000, ss, cs, ACK)
            else:  # the server ACKs the last segment at once
                t, cs = self._send_message(0, t, cs, ss, req[:MSS], _Blob(req[MSS:]), 60)
            t += rtt + think + 40
            code = 500 if i == bad else rng.choice(_OTHER_CODES)
            codes.append(code)
            head, body = self._response(code, close_req)
            t, ss = self._send_message(1, t, ss, cs, head, body, 12 + rng.randrange(60))
        t += 100 if close_req else int(rng.expovariate(1 / self.idle_us))
        self._close(t, rtt, cs, ss, close_req)
        return _Template("http", sip, sport, 6, v6, self._take(v6, "http"), codes, 0)

    def _build_dns(self, v6: bool, tcp: bool) -> _Template:
        rng = self.rng
        sip = rng.choice(self.resolvers6 if v6 else self.resolvers4)
        rtt = 300 + int(rng.expovariate(1 / 5000))
        nq = rng.randint(1, 3) if tcp else (2 if rng.random() < 0.2 else 1)
        t = cs = ss = 0
        if tcp:
            t = self._handshake(0, rtt)
            cs = ss = 1
        for _ in range(nq):
            query, resp = rng.choice(self.dns_templates)
            qid = struct.pack("!H", rng.randrange(65536))
            t += 20 + rng.randrange(200)
            if tcp:
                q = struct.pack("!H", len(query) + 2) + qid + query
                r = struct.pack("!H", len(resp) + 2) + qid + resp
                self._tcp(0, t, cs, ss, PSH | ACK, q, _value(q))
                cs += len(q)
                t += rtt
                self._tcp(1, t, ss, cs, PSH | ACK, r, _value(r))
                ss += len(r)
            else:
                self._udp(0, t, qid + query)
                t += rtt
                self._udp(1, t, qid + resp)
        if tcp:
            self._close(t + 100, rtt, cs, ss, False)
        kind = "dns-tcp" if tcp else "dns"
        return _Template(kind, sip, 53, 6 if tcp else 17, v6, self._take(v6, kind), [], nq)

    def _take(self, v6: bool, kind: str) -> list[tuple]:
        """Turn the recorded segments into emit entries (lengths for the address family).

        TCP: (dir, rel_us, seq, ack, off/flags+window, urg+payload, checksum part, ip length,
        ip length + ip id offset, wire length, ip id offset), seq/ack relative to the sender's and
        receiver's ISN; the first entry is the SYN. UDP: (dir, rel_us, udp length, payload, checksum part,
        ip length, ip length + ip id offset, wire length, ip id offset).
        """
        raw, self._raw = self._raw, []
        t0 = raw[0][1]  # the first packet is at the flow's start: tshark numbers streams in that order
        per_dir = [0, 0]
        eth_ip = 54 if v6 else 14
        out: list[tuple] = []
        for d, t, seq, ack, flags, payload, psum in raw:
            k = per_dir[d]
            per_dir[d] += 1
            if kind == "dns":
                ul = 8 + len(payload)
                ipl = ul if v6 else ul + 20
                out.append((d, t - t0, ul, payload, (ul + ul + psum) % 0xFFFF, ipl, ipl + k, ipl + eth_ip, k))
                continue
            of = 0x5000 | flags
            tl = 20 + len(payload)
            ipl = tl if v6 else tl + 20
            out.append((d, t - t0, seq, ack, struct.pack("!HH", of, WINDOW), b"\x00\x00" + payload,
                        (tl + of + psum + seq + ack) % 0xFFFF, ipl, ipl + k, ipl + eth_ip, k))
        return out

    # ---------------------------------------------------------------- packets
    def _emit_tcp4(self, entries: list[tuple], t0: int, c: tuple, s: tuple) -> None:
        """Instantiate a TCP/IPv4 template for one flow starting at `t0` (µs)."""
        rnd = self.rng.random
        ci, si = int(rnd() * _ISN_MAX), int(rnd() * _ISN_MAX)
        cb, sb = int(rnd() * _IPID_MAX), int(rnd() * _IPID_MAX)
        pre, mid, ap, ic, l4c = c
        sides = ((pre, mid, ap, (ic + cb) % 0xFFFF, cb, ci, si),
                 (s[0], s[1], s[2], (s[3] + sb) % 0xFFFF, sb, si, ci))
        app = self.pending.append
        base = self.start_us
        rec = _REC.pack
        pack = _TCP4.pack
        n = self.n
        # the SYN: acknowledgement number 0
        _, rel, sr, _, ofw, tail, sc, ipl, ipk, wire, _ = entries[0]
        sec, us = divmod(base + t0 + rel, 1_000_000)
        app((t0 + rel, rec(sec, us, wire, wire)
             + pack(pre, ipl, cb, mid, -(ic + cb + ipk) % 0xFFFF, ap, sr + ci, 0, ofw,
                    -(l4c + ci + sc) % 0xFFFF), tail))
        n += 1
        kk = (l4c + ci + si) % 0xFFFF
        for d, rel, sr, ar, ofw, tail, sc, ipl, ipk, wire, k in entries[1:]:
            pre, mid, ap, ic, ib, so, ao = sides[d]
            ts = t0 + rel
            sec, us = divmod(base + ts, 1_000_000)
            app((ts, rec(sec, us, wire, wire)
                 + pack(pre, ipl, ib + k, mid, -(ic + ipk) % 0xFFFF, ap, sr + so, ar + ao, ofw,
                        -(kk + sc) % 0xFFFF), tail))
            n += 1
        self.n = n

    def _emit_tcp6(self, entries: list[tuple], t0: int, c: tuple, s: tuple) -> None:
        """Instantiate a TCP/IPv6 template for one flow starting at `t0` (µs)."""
        rnd = self.rng.random
        ci, si = int(rnd() * _ISN_MAX), int(rnd() * _ISN_MAX)
        pre, mid, ap, _, l4c = c
        sides = ((pre, mid, ap, ci, si), (s[0], s[1], s[2], si, ci))
        app = self.pending.append
        base = self.start_us
        rec = _REC.pack
        pack = _TCP6.pack
        n = self.n
        _, rel, sr, _, ofw, tail, sc, ipl, _, wire, _ = entries[0]
        sec, us = divmod(base + t0 + rel, 1_000_000)
        app((t0 + rel, rec(sec, us, wire, wire)
             + pack(pre, ipl, mid, ap, sr + ci, 0, ofw, -(l4c + ci + sc) % 0xFFFF), tail))
        n += 1
        kk = (l4c + ci + si) % 0xFFFF
        for d, rel, sr, ar, ofw, tail, sc, ipl, _, wire, _ in entries[1:]:
            pre, mid, ap, so, ao = sides[d]
            ts = t0 + rel
            sec, us = divmod(base + ts, 1_000_000)
            app((ts, rec(sec, us, wire, wire)
                 + pack(pre, ipl, mid, ap, sr + so, ar + ao, ofw, -(kk + sc) % 0xFFFF), tail))
            n += 1
        self.n = n

    def _emit_udp(self, entries: list[tuple], t0: int, c: tuple, s: tuple, v6: bool) -> None:
        """Instantiate a UDP template for one flow starting at `t0` (µs)."""
        rnd = self.rng.random
        cb, sb = int(rnd() * _IPID_MAX), int(rnd() * _IPID_MAX)
        sides = ((c[0], c[1], c[2], c[3] + cb, cb), (s[0], s[1], s[2], s[3] + sb, sb))
        l4c = c[4]
        app = self.pending.append
        base = self.start_us
        n = self.n
        for d, rel, ul, payload, sc, ipl, ipk, wire, k in entries:
            pre, mid, ap, ic, ib = sides[d]
            ts = t0 + rel
            c4 = 0xFFFF - (l4c + sc) % 0xFFFF  # UDP: a computed 0 is sent as 0xFFFF
            if v6:
                hdr = _UDP6.pack(pre, ipl, mid, ap, ul, c4)
            else:
                hdr = _UDP4.pack(pre, ipl, ib + k, mid, -(ic + ipk) % 0xFFFF, ap, ul, c4)
            sec, us = divmod(base + ts, 1_000_000)
            app((ts, _REC.pack(sec, us, wire, wire) + hdr, payload))
            n += 1
        self.n = n

    def _flush(self, before: int | None) -> None:
        """Write the pending packets made before time `before` (µs since the start); all when None."""
        pend = self.pending
        pend.sort(key=_TIME)  # stable: packets of equal time stay in the order they were made
        if before is None:
            done, self.pending = pend, []
        else:
            i = bisect_left(pend, before, key=_TIME)
            done, self.pending = pend[:i], pend[i:]
        if not done:
            return
        t = self.truth
        if not t.packets:
            t.first_ts = (self.start_us + done[0][0]) / 1_000_000
        t.last_ts = (self.start_us + done[-1][0]) / 1_000_000
        t.packets += len(done)
        data = b"".join(chain.from_iterable(map(itemgetter(1, 2), done)))
        t.bytes += len(data)
        self.out.write(data)

    # ---------------------------------------------------------------- flows
    def _flow(self, t0: int, kind: str) -> None:
        """One flow: a new template while its pool is small, else a pooled one with a fresh client,
        ephemeral port, ISNs and ip ids."""
        rnd = self.rng.random
        v6 = self.ipv6_ratio > 0 and rnd() < self.ipv6_ratio
        pool = self.pools[kind, v6]
        if len(pool) < _POOL[kind]:
            if kind == "http":
                tpl = self._build_http(v6, len(pool))
            else:
                tpl = self._build_dns(v6, kind == "dns-tcp")
            pool.append(tpl)
        else:
            tpl = pool[int(rnd() * len(pool))]
        clients = self.clients6 if v6 else self.clients4
        cip, cval, pre_c, pre_s = clients[int(rnd() * len(clients))]
        cport = self.next_port.get(cip) or 32768 + int(rnd() * 20000)
        nxt = cport + 1 + int(rnd() * 5)
        self.next_port[cip] = nxt if nxt < 61000 else 32768 + (nxt - 61000)
        sip, sport = tpl.sip, tpl.sport
        l4c = (tpl.l4k + cval + cport) % 0xFFFF  # the pseudo-header + ports sum is the same both ways
        c = (pre_c, tpl.mid_c, cip + sip + _PORTS.pack(cport, sport), (tpl.ipk_c + cval) % 0xFFFF, l4c)
        s = (pre_s, tpl.mid_s, sip + cip + _PORTS.pack(sport, cport), (tpl.ipk_s + cval) % 0xFFFF, l4c)
        entries = tpl.entries
        if t0 + tpl.span > self.dur_us:  # the last flows are squeezed into the window
            budget = max(0, self.dur_us - t0)
            entries = [(e[0], e[1] * budget // tpl.span, *e[2:]) for e in entries]
        if tpl.proto == 17:
            self._emit_udp(entries, t0, c, s, v6)
        elif v6:
            self._emit_tcp6(entries, t0, c, s)
        else:
            self._emit_tcp4(entries, t0, c, s)
        tpl.uses += 1
        npk = len(entries)
        if kind != "http":
            self.dns_packets += npk
        if not self.keep:
            return
        tr = self.truth
        tup = [_ip(cip), cport, _ip(tpl.sip), tpl.sport]
        if kind == "dns":
            tr.udp_streams.append((tup, npk))
            tr.dns_flows.append(["udp", *tup])
            return
        stream = len(tr.tcp_streams)
        tr.tcp_streams.append((tup, npk))
        if kind == "dns-tcp":
            tr.dns_flows.append(["tcp", *tup])
            return
        tr.http_status_by_stream.append({"tcp_stream": stream, "tuple": tup, "codes": list(tpl.codes)})
        if tpl.has500:
            tr.http500_streams.append(tup)

    def _count(self) -> None:
        """The truth's counters, from how often each template was used."""
        tr = self.truth
        for pool in self.pools.values():
            for tpl in pool:
                n = tpl.uses
                if tpl.kind == "http":
                    tr.http_connections += n
                    tr.http_exchanges += n * len(tpl.codes)
                    tr.http500_connections += n * tpl.has500
                    for code in tpl.codes:
                        tr.http_status[code] += n
                else:
                    tr.dns_queries += n * tpl.queries
                    tr.dns_responses += n * tpl.queries
                    tr.dns_tcp_connections += n * (tpl.kind == "dns-tcp")

    def run(self) -> Truth:
        self.out.write(_PCAP_HEADER)
        rng = self.rng
        span = self.dur_us * 0.97
        prev = -1
        dns_flows = 0
        while self.n < self.target:
            frac = (self.n + rng.random() * 14) / self.target if self.n else 0.0
            t = max(prev + 1, int(span * min(frac, 1.0)))  # µs since the start
            prev = t
            if len(self.pending) > _FLUSH_AT:
                self._flush(t)
            if self.dns_packets < self.dns_ratio * self.n:
                dns_flows += 1
                self._flow(t, "dns-tcp" if dns_flows % DNS_TCP_EVERY == 3 else "dns")
            else:
                self._flow(t, "http")
        self._flush(None)
        self._count()
        return self.truth


def _client_info(ip: bytes) -> tuple[bytes, int, bytes, bytes]:
    """(address, its checksum contribution, eth+ip prefix client->server, eth+ip prefix server->client)."""
    mac, gw = b"\x02\x00" + ip[-4:], _MAC_GW
    tail = b"\x86\xdd\x60\x00\x00\x00" if len(ip) == 16 else b"\x08\x00\x45\x00"
    return ip, int.from_bytes(ip, "big"), gw + mac + tail, mac + gw + tail


def _ip(b: bytes) -> str:
    return str(ipaddress.ip_address(b))


def generate(out: BinaryIO, *, packets: int, seed: int = 1, start: float = DEFAULT_START,
             duration: float | None = None, http500_ratio: float = 0.10, dns_ratio: float = 0.10,
             ipv6_ratio: float = 0.0, truth: bool = False, plain: bool = False) -> Truth:
    """Write a pcap of about `packets` packets to `out` (see the module docstring)."""
    gen = _Generator(out, packets, seed, start, duration, http500_ratio, dns_ratio, ipv6_ratio, truth, plain)
    enabled = gc.isenabled()
    gc.disable()  # millions of short-lived tuples, no cycles: the collector only costs time here
    try:
        return gen.run()
    finally:
        if enabled:
            gc.enable()


def write_capture(path: str | Path, *, gzip: bool = False, truth_path: str | Path | None = None,
                  **kw: object) -> Truth:
    """`generate` into a file ("-" = stdout), gzip-compressed if asked or if the name ends in .gz."""
    if truth_path is not None:
        kw["truth"] = True
    zipped = gzip or str(path).endswith(".gz")
    if str(path) == "-":
        raw: BinaryIO = sys.stdout.buffer
        owned = False
    else:
        raw = open(path, "wb")  # noqa: SIM115 - closed below, also on error
        owned = True
    try:
        if zipped:
            with gzip_mod.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                result = generate(gz, **kw)  # type: ignore[arg-type]
        else:
            result = generate(raw, **kw)  # type: ignore[arg-type]
        raw.flush()
    finally:
        if owned:
            raw.close()
    if truth_path is not None:
        result.write_json(truth_path)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.trafficgen", description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, required=True, help="approximate number of packets")
    ap.add_argument("--out", required=True, help="output pcap file, '-' for stdout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=float, default=DEFAULT_START, help="epoch seconds of the first packet")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default packets/20000)")
    ap.add_argument("--http500-ratio", type=float, default=0.10)
    ap.add_argument("--dns-ratio", type=float, default=0.10)
    ap.add_argument("--ipv6-ratio", type=float, default=0.0)
    ap.add_argument("--truth", default=None, help="write the ground-truth JSON here")
    ap.add_argument("--gzip", action="store_true", help="gzip the output")
    ap.add_argument("--plain", action="store_true",
                    help="browser-like GETs, 2-10 keep-alive exchanges, no compressed or chunked bodies")
    a = ap.parse_args(argv)
    t = write_capture(a.out, gzip=a.gzip, truth_path=a.truth, packets=a.packets, seed=a.seed, start=a.start,
                      duration=a.duration, http500_ratio=a.http500_ratio, dns_ratio=a.dns_ratio,
                      ipv6_ratio=a.ipv6_ratio, plain=a.plain)
    print(f"trafficgen: {t.packets} packets, {t.bytes} bytes, {t.http_connections} http connections "
          f"({t.http500_connections} with 500), {t.dns_queries} dns queries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
