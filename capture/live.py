"""Live capture: an AF_PACKET raw socket, promiscuous, with an optional kernel BPF filter and
kernel (SO_TIMESTAMPNS) timestamps. Needs root or CAP_NET_RAW."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from capture.bpf import Filter
from capture.decode import LT_ETHERNET, LT_RAW
from capture.model import NS, Packet

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SNAPLEN = 262144
POLL_S = 0.25
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


class LiveSource:
    """Iterates `(ts_ns, linktype, data, orig_len)` from one interface until `stop()`."""

    def __init__(self, name: str, bpf: str | None = None, snaplen: int = SNAPLEN) -> None:
        self.name = name
        self.linktype = interface_linktype(name)
        self.snaplen = snaplen
        self.heartbeat: Callable[[], None] | None = None
        self.on_error: Callable[[str], None] | None = None
        self._stopped = False
        self._loopback = Path(f"/sys/class/net/{name}/type").read_text().strip() == "772"
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            if bpf:
                fprog, keep = Filter(bpf, self.linktype, snaplen).sock_fprog()
                sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
                del keep
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((name, ETH_P_ALL))
            ifindex = socket.if_nametoindex(name)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.settimeout(POLL_S)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Packet]:
        buf = bytearray(self.snaplen)
        view = memoryview(buf)
        anc_size = socket.CMSG_SPACE(16)
        sock = self._sock
        lt = self.linktype
        snaplen = self.snaplen
        skip_outgoing = self._loopback  # loopback shows every packet twice (out and in)
        while not self._stopped:
            try:
                n, anc, _flags, addr = sock.recvmsg_into([view], anc_size, socket.MSG_TRUNC)
            except TimeoutError:
                if self.heartbeat is not None:
                    self.heartbeat()
                continue
            except OSError as exc:  # the interface went away, ...: end this input, say why
                if self.on_error is not None:
                    self.on_error(f"iface:{self.name}: capture stopped: {exc}")
                return
            if skip_outgoing and addr[2] == socket.PACKET_OUTGOING:
                continue
            ts = 0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack_from("qq", value)
                    ts = sec * NS + nsec
            yield ts or time.time_ns(), lt, bytes(view[: min(n, snaplen)]), n
