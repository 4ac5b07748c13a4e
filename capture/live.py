"""Live capture: an AF_PACKET socket with a TPACKET_V3 memory-mapped receive ring, promiscuous, with an
optional kernel BPF filter and kernel timestamps. Needs root or CAP_NET_RAW.

The kernel fills blocks of the ring (`PACKET_RX_RING`) and hands each over when it is full or
`RETIRE_MS` old; this side waits with `poll` (so `stop()` is noticed within `POLL_S`), copies the
packets of every block the kernel handed over and gives the block back: no system call per packet.
After `stop()` the blocks handed over within `DRAIN_S` are still read, so every packet the kernel
took before is either read or counted as dropped.
Packets that found the ring full are counted by the kernel; `PACKET_STATISTICS` is read (it resets on
read, so the figures are summed here) at least every `STATS_S` and by `counters()`.
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from capture.bpf import Filter
from capture.decode import LT_ETHERNET, LT_RAW
from capture.model import NS, Packet

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
SNAPLEN = 262144
POLL_S = 0.25
STATS_S = 0.25
RETIRE_MS = 10  # a block that is not full is handed over this old (latency of a quiet interface)
DRAIN_S = 5 * RETIRE_MS / 1000  # after stop(): what the kernel still hands over meanwhile is read
BLOCK_SIZE = 1 << 20
DEFAULT_RING_MIB = 32
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 (block_status, num_pkts,
# offset_to_first_pkt, ...)
BLOCK_STATUS_OFF = 8
BLOCK_STATUS = struct.Struct("I")
BLOCK_PACKETS_OFF = 12
BLOCK_PACKETS = struct.Struct("II")
# struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net, then tpacket_hdr_variant1
# (rxhash, vlan_tci, vlan_tpid); struct sockaddr_ll follows at TPACKET_ALIGN(48)
PKT_HDR = struct.Struct("IIIIIIHHIIH")
SLL_PKTTYPE_OFF = 48 + 10
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100
# ARPHRD_* -> link type: Ethernet and loopback carry an Ethernet header, IP tunnels none
ARPHRD_LINKTYPES = {1: LT_ETHERNET, 772: LT_ETHERNET, 65534: LT_RAW, 768: LT_RAW, 769: LT_RAW, 776: LT_RAW}


def interface_linktype(name: str) -> int:
    try:
        arphrd = int(Path(f"/sys/class/net/{name}/type").read_text())
    except (OSError, ValueError) as exc:
        raise OSError(f"no such interface {name!r}") from exc
    if arphrd not in ARPHRD_LINKTYPES:
        raise OSError(f"interface {name!r} has an unsupported hardware type {arphrd}")
    return ARPHRD_LINKTYPES[arphrd]


@dataclass
class KernelStats:
    """What the kernel counted for one socket since it was opened."""

    packets: int = 0  # that passed the filter, dropped ones included
    drops: int = 0  # that found the ring full
    freezes: int = 0  # times the ring was full (every block waiting for this side)


def _ring_request(ring_mib: int, snaplen: int) -> tuple[bytes, int, int]:
    """`struct tpacket_req3` for a ring of `ring_mib` MiB in 1 MiB blocks: (request, block size, blocks)."""
    blocks = max(1, ring_mib)
    # the largest packet a block takes: headers (tpacket3_hdr, sockaddr_ll, room for a VLAN tag) + snaplen
    frame = min(BLOCK_SIZE // 2, (48 + 32 + 16 + snaplen + 15) & ~15)
    frames = (BLOCK_SIZE // frame) * blocks
    req = struct.pack("IIIIIII", BLOCK_SIZE, blocks, frame, frames, RETIRE_MS, 0, 0)
    return req, BLOCK_SIZE, blocks


class LiveSource:
    """Iterates `(ts_ns, linktype, data, orig_len)` from one interface until `stop()`."""

    def __init__(self, name: str, bpf: str | None = None, snaplen: int = SNAPLEN,
                 ring_mib: int = DEFAULT_RING_MIB) -> None:
        self.name = name
        self.linktype = interface_linktype(name)
        self.snaplen = snaplen
        self.heartbeat: Callable[[], None] | None = None
        self.on_error: Callable[[str], None] | None = None
        self.kernel = KernelStats()
        self._stats_lock = threading.Lock()
        self._stopped = False
        self._closed = False
        self._loopback = Path(f"/sys/class/net/{name}/type").read_text().strip() == "772"
        # protocol 0: nothing is queued before the ring and the filter are in place and the socket is bound
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if bpf:
                fprog, keep = Filter(bpf, self.linktype, snaplen).sock_fprog()
                sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
                del keep
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            req, self._block_size, self._blocks = _ring_request(ring_mib, snaplen)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self._ring = mmap.mmap(sock.fileno(), self._block_size * self._blocks, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)
            sock.bind((name, ETH_P_ALL))
            ifindex = socket.if_nametoindex(name)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except BaseException:
            if hasattr(self, "_ring"):
                self._ring.close()
            sock.close()
            raise
        self._sock = sock

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self.read_stats()  # the last figures, kept after the socket is gone
        with self._stats_lock:
            if not self._closed:
                self._closed = True
                self._ring.close()
                self._sock.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def read_stats(self) -> KernelStats:
        """Add what the kernel counted since the last read (`PACKET_STATISTICS` resets on read)."""
        with self._stats_lock:
            if not self._closed:
                try:
                    raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
                except OSError:
                    return self.kernel
                packets, drops, freezes = struct.unpack("III", raw)
                k = self.kernel
                k.packets += packets
                k.drops += drops
                k.freezes += freezes
            return self.kernel

    def _block(self, ring: mmap.mmap, base: int) -> list[Packet]:
        """The packets of the block at `base` (copied), then the block goes back to the kernel."""
        num, first = BLOCK_PACKETS.unpack_from(ring, base + BLOCK_PACKETS_OFF)
        lt = self.linktype
        vlan_ok = lt == LT_ETHERNET
        skip_outgoing = self._loopback  # loopback shows every packet twice (out and in)
        snaplen = self.snaplen
        unpack = PKT_HDR.unpack_from
        out: list[Packet] = []
        off = base + first
        for _ in range(num):
            nxt, sec, nsec, caplen, length, status, mac, _net, _hash, tci, tpid = unpack(ring, off)
            if not (skip_outgoing and ring[off + SLL_PKTTYPE_OFF] == socket.PACKET_OUTGOING):
                start = off + mac
                data = ring[start : start + min(caplen, snaplen)]
                if vlan_ok and status & TP_STATUS_VLAN_VALID and len(data) >= 12:
                    # the tag was taken off by the driver: put it back where it was on the wire
                    proto = tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
                    data = data[:12] + struct.pack("!HH", proto, tci & 0xFFFF) + data[12:]
                    length += 4
                out.append((sec * NS + nsec or time.time_ns(), lt, data, length))
            off += nxt
        BLOCK_STATUS.pack_into(ring, base + BLOCK_STATUS_OFF, TP_STATUS_KERNEL)
        return out

    def __iter__(self) -> Iterator[Packet]:
        for block in self.blocks():
            yield from block

    def blocks(self) -> Iterator[list[Packet]]:
        """The packets of each ring block, a list at a time (copied out: the block is back with the
        kernel before they are processed)."""
        ring = self._ring
        size = self._block_size
        blocks = self._blocks
        status = BLOCK_STATUS.unpack_from
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLERR)
        index = 0
        next_stats = time.monotonic() + STATS_S
        drain_until = 0.0  # once stopped: the blocks the kernel fills until then are still read
        while True:
            base = index * size
            if status(ring, base + BLOCK_STATUS_OFF)[0] & TP_STATUS_USER:
                packets = self._block(ring, base)
                index = (index + 1) % blocks
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_S
                    self.read_stats()
                yield packets
                continue
            wait = POLL_S
            if self._stopped:
                now = time.monotonic()
                if not drain_until:
                    drain_until = now + DRAIN_S
                wait = drain_until - now
                if wait <= 0:
                    return
            try:
                events = poller.poll(wait * 1000)
            except InterruptedError:
                continue
            if status(ring, base + BLOCK_STATUS_OFF)[0] & TP_STATUS_USER:
                continue
            if any(ev & select.POLLERR for _fd, ev in events):
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:  # the interface went away, ...: end this input, say why
                    if self.on_error is not None:
                        self.on_error(f"iface:{self.name}: capture stopped: [Errno {err}] {os.strerror(err)}")
                    return
            if not events and not self._stopped:
                self.read_stats()
                next_stats = time.monotonic() + STATS_S
                if self.heartbeat is not None:
                    self.heartbeat()
