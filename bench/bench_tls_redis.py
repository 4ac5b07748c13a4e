"""TLS and Redis items speed: `kflpcap items` beside tshark on the same generated captures, same run.

    python3 -m bench.bench_tls_redis [--connections 3000] [--repeat 3] [--json FILE]

Two captures are generated into bench/out/ (once per parameters): TLS connections whose handshakes
are real (Python `ssl` client and server talking through memory BIOs: TLS 1.2 with a certificate
chain and TLS 1.3, varied SNI and ALPN), and Redis connections with pipelined commands, MULTI/EXEC,
HGETALL and error replies. Each is dissected by `kflpcap items --jobs 1` and by tshark
(`-Y tls.handshake.type == 1 -T ek`, `-Y resp -T ek`). Printed: the side-by-side table per
protocol (medians of alternating runs) and items per second of kflpcap (one item per TLS connection,
one per Redis command) beside tshark's matching packets per second, and the dissectors' own rate
in this process (items per CPU second of capture + dissection, no JSON).
"""

from __future__ import annotations

import argparse
import random
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import TSHARK, compare, print_table
from capture import Capture, CaptureConfig, NameTable, NodeInfo, make_handler_factory, open_sources
from runtime.demo.protocol_servers import self_signed

OUT = Path(__file__).parent / "out"
MSS = 1448
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


class _Writer:
    """Classic pcap of IPv4/TCP conversations (checksums left 0)."""

    def __init__(self, path: Path) -> None:
        self.out = path.open("wb")
        self.out.write(_PCAP_HEADER)
        self.ts = 1_700_000_000_000_000
        self.packets = 0

    def _frame(self, src: tuple[bytes, int], dst: tuple[bytes, int], seq: int, ack: int, flags: int,
               payload: bytes) -> None:
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags,
                          65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0,
                         src[0], dst[0])
        frame = _ETH + ip + tcp + payload
        self.ts += 50
        sec, usec = divmod(self.ts, 1_000_000)
        self.out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        self.packets += 1

    def conversation(self, client: tuple[bytes, int], server: tuple[bytes, int],
                     messages: list[tuple[int, bytes]]) -> None:
        """Handshake, each `(direction, bytes)` in MSS-sized segments (acked), FIN both ways."""
        ends, seq = (client, server), [1000, 5000]
        self._frame(client, server, seq[0] - 1, 0, 0x02, b"")
        self._frame(server, client, seq[1] - 1, seq[0], 0x12, b"")
        self._frame(client, server, seq[0], seq[1], 0x10, b"")
        for d, data in messages:
            for i in range(0, len(data), MSS):
                chunk = data[i:i + MSS]
                self._frame(ends[d], ends[1 - d], seq[d], seq[1 - d], 0x18, chunk)
                seq[d] += len(chunk)
            self._frame(ends[1 - d], ends[d], seq[1 - d], seq[d], 0x10, b"")
        self._frame(client, server, seq[0], seq[1], 0x11, b"")
        self._frame(server, client, seq[1], seq[0] + 1, 0x11, b"")
        self._frame(client, server, seq[0] + 1, seq[1] + 1, 0x10, b"")

    def close(self) -> None:
        self.out.close()


def tls_handshake(server_ctx: ssl.SSLContext, sni: str, alpn: list[str], tls12: bool
                  ) -> list[tuple[int, bytes]]:
    """A real handshake's flights `(direction, bytes)` from two `ssl` objects joined by memory BIOs."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    client_ctx.set_alpn_protocols(alpn)
    if tls12:
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    bios = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]
    ends = [client_ctx.wrap_bio(*bios[0], server_hostname=sni),
            server_ctx.wrap_bio(*bios[1], server_side=True)]
    flights: list[tuple[int, bytes]] = []
    done = [False, False]
    for _ in range(8):
        for d in (0, 1):
            if not done[d]:
                try:
                    ends[d].do_handshake()
                    done[d] = True
                except ssl.SSLWantReadError:
                    pass
            out = bios[d][1].read()
            if out:
                flights.append((d, out))
                bios[1 - d][0].write(out)
        if all(done):
            break
    return flights


def redis_session(rng: random.Random) -> list[tuple[int, bytes]]:
    """A pipelined batch, a MULTI/EXEC block, HGETALL and an error reply, as RESP2 bytes."""
    def cmd(*words: str) -> bytes:
        return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)

    keys = [f"session:{rng.randrange(10**6)}" for _ in range(20)]
    batch = b"".join(cmd("SET", k, "v" * rng.randrange(1, 200)) + cmd("GET", k) for k in keys)
    replies = b"".join(b"+OK\r\n$5\r\nhello\r\n" for _ in keys)
    block = cmd("MULTI") + cmd("INCR", "hits") + cmd("HGETALL", "user:1") + cmd("EXEC")
    block_replies = (b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:7\r\n"
                     b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n")
    return [(0, batch), (1, replies), (0, block), (1, block_replies), (0, cmd("INCR", "user:1")),
            (1, b"-ERR value is not an integer or out of range\r\n")]


def make_captures(connections: int) -> tuple[Path, Path]:
    """The TLS and the Redis capture (cached in bench/out/ per `connections`)."""
    OUT.mkdir(exist_ok=True)
    tls_pcap, redis_pcap = OUT / f"tls_{connections}.pcap", OUT / f"redis_{connections}.pcap"
    if tls_pcap.exists() and redis_pcap.exists():
        return tls_pcap, redis_pcap
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(Path(tmp), ["bench.kfl.internal"])
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        server_ctx.set_alpn_protocols(["h2", "http/1.1"])
        variants = [tls_handshake(server_ctx, f"svc{i}.kfl.internal",
                                  ["h2", "http/1.1"] if i % 3 else ["http/1.1"], tls12=i % 2 == 0)
                    for i in range(16)]
    for path, sessions, port in ((tls_pcap, lambda i: variants[i % len(variants)], 443),
                                 (redis_pcap, lambda i: redis_session(rng), 6379)):
        writer = _Writer(path)
        for i in range(connections):
            client = (bytes([10, 1, (i >> 8) & 0xFF, i & 0xFF]), 30000 + i % 30000)
            writer.conversation(client, (bytes([10, 2, 0, 1 + i % 50]), port), sessions(i))
        writer.close()
    return tls_pcap, redis_pcap


def in_process(pcap: Path) -> tuple[int, float]:
    """Items and CPU seconds (best of 3) of capture + dissectors in this process, items dropped."""
    packets = list(open_sources([str(pcap)]))
    best, count = float("inf"), [0]
    for _ in range(3):
        count[0] = 0
        cap = Capture(CaptureConfig(), make_handler_factory(lambda _i: count.__setitem__(0, count[0] + 1),
                                                            NodeInfo("bench", "10.0.0.1"), NameTable()))
        cap.warn = lambda _t: None
        start = time.process_time()
        cap.consume(packets)
        cap.finish()
        best = min(best, time.process_time() - start)
    return count[0], best


def _count(argv: list[str]) -> int:
    return subprocess.run(argv, capture_output=True, check=True, timeout=600).stdout.count(b"\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write one JSON line per result here")
    args = ap.parse_args()
    exe = shutil.which("kflpcap")
    kflpcap = [*([exe] if exe else [sys.executable, "-m", "runtime"]), "items", "--jobs", "1", "--pcap"]
    json_file = open(args.json, "w") if args.json else None  # noqa: SIM115
    try:
        for name, pcap, display_filter in zip(("tls", "redis"), make_captures(args.connections),
                                              ("tls.handshake.type == 1", "resp"), strict=True):
            theirs = [TSHARK, "-n", "-r", str(pcap), "-Y", display_filter, "-T", "ek"]
            ours = [*kflpcap, str(pcap)]
            items = _count(ours)
            matched = _count([TSHARK, "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
                              "-e", "frame.number"])
            packets = _count([TSHARK, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"])
            base = f"tshark -Y '{display_filter}' -T ek"
            results = compare({base: theirs, f"kflpcap items ({name})": ours}, baseline=base,
                              repeat=args.repeat, warmup=0)
            print(f"{name}: {pcap.name} ({packets:,} packets, {items:,} kflpcap items, "
                  f"{matched:,} tshark matching packets)")
            print_table(results, packets=packets, baseline=base, bench=f"tls_redis.{name}",
                        json_file=json_file)
            mine, tshark = results[f"kflpcap items ({name})"], results[base]
            n, cpu = in_process(pcap)
            print(f"  kflpcap {items / mine.wall:,.0f} items/s; tshark {matched / tshark.wall:,.0f} "
                  f"matching packets/s; {tshark.wall / mine.wall:.2f}x; in process {n / cpu:,.0f} "
                  f"items per CPU second\n")
    finally:
        if json_file is not None:
            json_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
