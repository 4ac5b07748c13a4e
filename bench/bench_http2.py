"""HTTP/2 and gRPC items speed: `kflpcap items` beside tshark on the same generated captures, same run.

    python3 -m bench.bench_http2 [--connections 200] [--requests 20] [--repeat 3]

Two captures are generated (bench/out/, once per parameters) with the `h2` library talking to itself:
h2c with prior knowledge on port 8080 (GET, JSON answers, shared headers that HPACK indexes) and
gRPC on port 50051 (unary calls, protobuf messages, trailers). For each, `kflpcap items --jobs 1` is
timed beside `tshark -d tcp.port==P,http2 -Y http2 -T ek` (medians of alternating runs) and the
items per second printed.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import RequestReceived

from bench.harness import OUT_DIR, TSHARK, compare, print_table

MSS = 1448
_PCAP_HEAD = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


class _Writer:
    """Ethernet/IPv4/TCP frames of one connection at a time into a classic pcap (checksums zero)."""

    def __init__(self, out: object) -> None:
        self.out = out
        self.ts = 1_700_000_000.0
        self.packets = 0

    def frame(self, src: tuple[bytes, int], dst: tuple[bytes, int], seq: int, ack: int, flags: int,
              payload: bytes = b"") -> None:
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                          65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0,
                         src[0], dst[0])
        raw = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload
        self.ts += 0.0001
        sec = int(self.ts)
        self.out.write(struct.pack("<IIII", sec, int((self.ts - sec) * 1e6), len(raw), len(raw)) + raw)
        self.packets += 1


class _Conn:
    def __init__(self, w: _Writer, n: int, port: int) -> None:
        self.w = w
        self.ends = ((bytes([10, 1, n >> 8 & 255, n & 255]), 20000 + n % 40000), (bytes([10, 2, 0, 1]), port))
        self.seq = [1000, 5000]
        w.frame(self.ends[0], self.ends[1], 999, 0, 0x02)
        w.frame(self.ends[1], self.ends[0], 4999, 1000, 0x12)
        w.frame(self.ends[0], self.ends[1], 1000, 5000, 0x10)

    def send(self, d: int, data: bytes) -> None:
        for i in range(0, len(data), MSS):
            piece = data[i:i + MSS]
            self.w.frame(self.ends[d], self.ends[1 - d], self.seq[d], self.seq[1 - d], 0x18, piece)
            self.seq[d] += len(piece)

    def close(self) -> None:
        for d in (0, 1):
            self.w.frame(self.ends[d], self.ends[1 - d], self.seq[d], self.seq[1 - d], 0x11)
            self.seq[d] += 1
        self.w.frame(self.ends[0], self.ends[1], self.seq[0], self.seq[1], 0x10)


def _grpc_message(n: int) -> bytes:
    name = f"item-{n}".encode()
    msg = b"\x0a" + bytes([len(name)]) + name + b"\x10" + bytes([n & 0x7F])
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


def generate(path: Path, connections: int, requests: int, grpc: bool) -> int:
    """Write the capture; returns its packet count."""
    port = 50051 if grpc else 8080
    with open(path, "wb") as out:
        out.write(_PCAP_HEAD)
        w = _Writer(out)
        for n in range(connections):
            conn = _Conn(w, n, port)
            client = H2Connection(H2Configuration(client_side=True))
            server = H2Connection(H2Configuration(client_side=False))
            client.initiate_connection()
            server.initiate_connection()
            _pump(conn, client, server, grpc)
            for r in range(requests):
                sid = client.get_next_available_stream_id()
                if grpc:
                    method = "GetItem" if r % 4 else "Create"
                    client.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                              (":path", f"/kfl.bench.Inventory/{method}"),
                                              (":authority", "inventory:50051"),
                                              ("content-type", "application/grpc"), ("te", "trailers")])
                    client.send_data(sid, _grpc_message(r), end_stream=True)
                else:
                    client.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                        (":path", f"/api/items/{r}?page={n}"), (":authority", "shop:8080"),
                                        ("user-agent", "bench/1.0"), ("x-tenant", "acme")], end_stream=True)
                _pump(conn, client, server, grpc)
                _pump(conn, client, server, grpc)
            conn.close()
        return w.packets


def _pump(conn: _Conn, client: H2Connection, server: H2Connection, grpc: bool) -> None:
    """Move what each side has to send to the other (and onto the wire); the server answers requests."""
    for d, src, dst in ((0, client, server), (1, server, client)):
        data = src.data_to_send()
        if data:
            conn.send(d, data)
            for event in dst.receive_data(data):
                if isinstance(event, RequestReceived):
                    _answer(server, event.stream_id, grpc)


def _answer(server: H2Connection, sid: int, grpc: bool) -> None:
    if grpc:
        failed = sid % 8 == 1
        server.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        if not failed:
            server.send_data(sid, _grpc_message(sid))
        server.send_headers(sid, [("grpc-status", "5" if failed else "0"),
                                  ("grpc-message", "not found" if failed else "")], end_stream=True)
    else:
        body = b'{"id": %d, "name": "widget", "tags": ["a", "b"]}' % sid
        server.send_headers(sid, [(":status", "404" if sid % 10 == 1 else "200"),
                                  ("content-type", "application/json"), ("content-length", str(len(body)))])
        server.send_data(sid, body, end_stream=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("kflpcap")
    kfl_items = [*([exe] if exe else [sys.executable, "-m", "runtime"]), "items", "--jobs", "1", "--pcap"]
    for label, grpc in (("HTTP/2", False), ("gRPC", True)):
        pcap = OUT_DIR / f"h2-{'grpc' if grpc else 'h2c'}-{args.connections}x{args.requests}.pcap"
        packets = generate(pcap, args.connections, args.requests, grpc)
        port = 50051 if grpc else 8080
        tshark = [TSHARK, "-n", "-r", str(pcap), "-d", f"tcp.port=={port},http2", "-Y", "http2", "-T", "ek"]
        items = subprocess.run([*kfl_items, str(pcap)], capture_output=True, check=True).stdout.count(b"\n")
        base = "tshark -Y http2 -T ek"
        results = compare({base: tshark, "kflpcap items --jobs 1": [*kfl_items, str(pcap)]}, baseline=base,
                          repeat=args.repeat)
        print(f"{label}: {pcap.name} ({packets:,} packets, {items:,} items)")
        print_table(results, packets=packets, baseline=base, bench="http2")
        for name, st in results.items():
            print(f"  {name}: {items / st.wall:,.0f} items/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
