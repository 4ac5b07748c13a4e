"""BPF filters (tcpdump syntax) compiled by libpcap through ctypes.

libpcap comes with tshark (Debian `libpcap0.8`); scapy's `compile_filter` would need the tcpdump
binary, which is not installed. The same compiled program serves the kernel (SO_ATTACH_FILTER on
a live socket) and files (`pcap_offline_filter`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from functools import cache

SNAPLEN = 262144


class BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(BpfInsn))]


class PcapPkthdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


class BpfError(ValueError):
    """The filter does not compile (or libpcap is missing)."""


@cache
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise BpfError("BPF filters need libpcap (apt-get install libpcap0.8)")
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(BpfProgram)]
    lib.pcap_offline_filter.argtypes = [ctypes.POINTER(BpfProgram), ctypes.POINTER(PcapPkthdr),
                                        ctypes.c_char_p]
    return lib


class Filter:
    """A compiled BPF program for one link type."""

    def __init__(self, expression: str, linktype: int, snaplen: int = SNAPLEN) -> None:
        lib = _libpcap()
        self._lib = lib
        self.program = BpfProgram()
        handle = lib.pcap_open_dead(linktype, snaplen)
        try:
            if lib.pcap_compile(handle, ctypes.byref(self.program), expression.encode(), 1, 0xFFFFFFFF) != 0:
                raise BpfError(f"bad BPF filter {expression!r}: {lib.pcap_geterr(handle).decode()}")
        finally:
            lib.pcap_close(handle)
        self._hdr = PcapPkthdr()

    def __del__(self) -> None:
        if getattr(self, "program", None) is not None and self.program.bf_len:
            self._lib.pcap_freecode(ctypes.byref(self.program))

    def sock_fprog(self) -> tuple[bytes, ctypes.Array]:
        """`struct sock_fprog` for SO_ATTACH_FILTER (keep the returned array alive during the call)."""
        n = self.program.bf_len
        insns = (BpfInsn * n).from_address(ctypes.addressof(self.program.bf_insns.contents))
        copy = (BpfInsn * n)(*insns)
        return struct.pack("HL", n, ctypes.addressof(copy)), copy

    def match(self, data: bytes, orig_len: int) -> bool:
        hdr = self._hdr
        hdr.caplen = len(data)
        hdr.len = orig_len
        return self._lib.pcap_offline_filter(ctypes.byref(self.program), ctypes.byref(hdr), data) != 0
