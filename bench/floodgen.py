"""Flood traffic for the stream store's worst case: SYN-only packets or one-packet UDP flows, each
from its own 5-tuple, optionally mixed (by timestamp) into another classic pcap.

    syn_flood(n, start_ns, duration_ns)   n Ethernet/IPv4 TCP SYNs, distinct client address and port
    udp_flood(n, start_ns, duration_ns)   n one-datagram UDP flows (32-byte payload), likewise
    write_pcap(out, packets)              a classic pcap (microseconds, Ethernet) of (ts_ns, frame)
    read_pcap(path)                       the (ts_ns, frame) records of a classic Ethernet pcap
    write_mixed(path, base, flood)        the packets of pcap `base` and `flood`, in timestamp order

CLI: python -m bench.floodgen --syn 200000 [--udp N] [--mix BASE.pcap] --out F.pcap
Checksums are correct (tshark reports no bad checksum); same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import heapq
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_REC = struct.Struct("<IIII")
_ETH = bytes.fromhex("020000000002" "020000000001" "0800")
_SERVER = bytes([10, 99, 0, 1])
_PAYLOAD = b"flood-datagram-payload-32-bytes!"


def _sum16(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _checksum(data: bytes) -> int:
    return ~_sum16(data) & 0xFFFF


def _client(i: int) -> tuple[bytes, int]:
    """A distinct (address, port) per flood packet: 172.16.0.0/12 addresses, ports 1024-65023."""
    return bytes([172, 16 | (i >> 24 & 0x0F), i >> 16 & 0xFF, i >> 8 & 0xFF]), 1024 + (i * 7919) % 64000


def _ipv4(src: bytes, proto: int, l4: bytes, ident: int) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0, 64, proto, 0, src, _SERVER)
    head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
    return _ETH + head + l4


def _l4_checksum(src: bytes, proto: int, l4: bytes) -> int:
    pseudo = src + _SERVER + struct.pack("!BBH", 0, proto, len(l4))
    return _checksum(pseudo + l4)


def syn_frame(i: int) -> bytes:
    src, port = _client(i)
    tcp = struct.pack("!HHIIBBHHH", port, 80, (i * 2654435761) & 0xFFFFFFFF, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", _l4_checksum(src, 6, tcp)) + tcp[18:]
    return _ipv4(src, 6, tcp, i)


def udp_frame(i: int) -> bytes:
    src, port = _client(i)
    udp = struct.pack("!HHHH", port, 47000 + (i & 7), 8 + len(_PAYLOAD), 0) + _PAYLOAD
    udp = udp[:6] + struct.pack("!H", _l4_checksum(src, 17, udp) or 0xFFFF) + udp[8:]
    return _ipv4(src, 17, udp, i)


def _spread(n: int, start_ns: int, duration_ns: int) -> Iterator[tuple[int, int]]:
    for i in range(n):
        yield i, start_ns + (duration_ns * i // n if n else 0)


def syn_flood(n: int, start_ns: int, duration_ns: int) -> Iterator[tuple[int, bytes]]:
    """`n` SYNs spread evenly over [start, start + duration), each from its own client."""
    for i, ts in _spread(n, start_ns, duration_ns):
        yield ts, syn_frame(i)


def udp_flood(n: int, start_ns: int, duration_ns: int) -> Iterator[tuple[int, bytes]]:
    """`n` one-datagram UDP flows spread evenly over [start, start + duration)."""
    for i, ts in _spread(n, start_ns, duration_ns):
        yield ts, udp_frame(i)


def write_pcap(out: BinaryIO, packets: Iterable[tuple[int, bytes]]) -> int:
    out.write(_PCAP_HEADER)
    count = 0
    for ts, frame in packets:
        sec, usec = divmod(ts // 1000, 1_000_000)
        out.write(_REC.pack(sec, usec, len(frame), len(frame)))
        out.write(frame)
        count += 1
    return count


def read_pcap(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Records of a classic microsecond little-endian pcap (as trafficgen and `write_pcap` write)."""
    with open(path, "rb") as f:
        header = f.read(24)
        if header[:4] != _PCAP_HEADER[:4]:
            raise ValueError(f"{path}: not a classic little-endian microsecond pcap")
        while rec := f.read(16):
            sec, usec, caplen, _ = _REC.unpack(rec)
            yield (sec * 1_000_000 + usec) * 1000, f.read(caplen)


def write_mixed(path: str | Path, base: str | Path, flood: Iterable[tuple[int, bytes]]) -> int:
    """The packets of `base` and of `flood` in timestamp order (base first on equal timestamps)."""
    with open(path, "wb") as out:
        return write_pcap(out, heapq.merge(read_pcap(base), flood, key=lambda p: p[0]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floodgen", description=__doc__.split("\n")[0])
    p.add_argument("--syn", type=int, default=0, help="SYN-only packets")
    p.add_argument("--udp", type=int, default=0, help="one-packet UDP flows")
    p.add_argument("--start", type=float, default=1_700_000_000.0, help="first timestamp (epoch seconds)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds the flood is spread over")
    p.add_argument("--mix", default=None, metavar="PCAP", help="classic pcap to mix the flood into")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    start, duration = int(args.start * 1e9), int(args.duration * 1e9)
    flood = heapq.merge(syn_flood(args.syn, start, duration), udp_flood(args.udp, start, duration),
                        key=lambda pkt: pkt[0])
    if args.mix:
        write_mixed(args.out, args.mix, flood)
    else:
        with open(args.out, "wb") as out:
            write_pcap(out, flood)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
