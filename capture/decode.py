"""Lean L2/L3 decoding: link layer to IP, IPv4 fragment reassembly, IPv6 extension headers.

`Decoder.decode(pkt)` returns `(proto, src, dst, buf, off, wlen, frags)` for a TCP/UDP packet:
`src`/`dst` are the raw address bytes, the L4 header starts at `buf[off]`, `wlen` is the L4
length on the wire (from the IP header; `buf` may hold less when the snaplen cut it), `frags` is
None or the list of fragment packets that made up a reassembled datagram. Anything else returns
None after counting the reason in `skipped`.
"""

from __future__ import annotations

from collections.abc import Callable

from capture.model import NS, CaptureConfig, Packet

LT_NULL = 0
LT_ETHERNET = 1
LT_RAW_BSD = 12
LT_RAW_OPENBSD = 14
LT_RAW = 101
LT_LOOP = 108
LT_SLL = 113
LT_IPV4 = 228
LT_IPV6 = 229
LT_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset((0x8100, 0x88A8, 0x9100))
AF_INET6_VALUES = frozenset((10, 24, 28, 30))
IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))

SKIP_REASONS = {
    "unknown_linktype": "unknown link type",
    "truncated_l2": "link-layer header cut short",
    "non_ip": "not IPv4/IPv6 (ARP, LLDP, ...)",
    "truncated_ip": "IP header cut short",
    "bad_ip_header": "bad IP version or header length",
    "bad_ip_length": "IP total length shorter than its header",
    "icmp": "ICMP/ICMPv6 (counted, not streamed)",
    "other_l4": "other IP protocol (counted, not streamed)",
    "ip_fragment_incomplete": "IP fragments never completed (timed out or table full)",
    "ip_fragment_bad": "bad IP fragment (overlapping or oversized)",
    "truncated_tcp": "TCP header cut short",
    "bad_tcp_header": "bad TCP data offset",
    "truncated_udp": "UDP header cut short",
}

MAX_DATAGRAM = 65535 + 40
MAX_FRAGMENT_SETS = 4096


class _Fragments:
    __slots__ = ("first_ts", "have_last", "packets", "parts", "proto", "total")

    def __init__(self, ts: int, proto: int) -> None:
        self.first_ts = ts
        self.proto = proto
        self.parts: list[tuple[int, bytes]] = []
        self.packets: list[Packet] = []
        self.total = -1
        self.have_last = False


class Decoder:
    """Stateful decoder (fragment reassembly). Counts every skipped packet by reason."""

    def __init__(self, config: CaptureConfig, on_skip: Callable[[str], None]) -> None:
        self._frag_ns = int(config.fragment_timeout_s * NS)
        self._frags: dict[tuple, _Fragments] = {}
        self._skip = on_skip
        self.fragmented_packets = 0

    def decode(self, pkt: Packet) -> tuple | None:
        ts, lt, data, _wirelen = pkt
        try:
            if lt == LT_ETHERNET:
                et = (data[12] << 8) | data[13]
                off = 14
                while et in ETH_VLAN:
                    et = (data[off + 2] << 8) | data[off + 3]
                    off += 4
            elif lt == LT_SLL:
                et = (data[14] << 8) | data[15]
                off = 16
            elif lt == LT_SLL2:
                et = (data[0] << 8) | data[1]
                off = 20
            elif lt in (LT_NULL, LT_LOOP):
                af = int.from_bytes(data[:4], "big" if lt == LT_LOOP else "little")
                if af > 0xFFFF:
                    af = int.from_bytes(data[:4], "big")
                et = ETH_IPV4 if af == 2 else ETH_IPV6 if af in AF_INET6_VALUES else 0
                off = 4
            elif lt in (LT_RAW, LT_RAW_BSD, LT_RAW_OPENBSD, LT_IPV4, LT_IPV6):
                v = data[0] >> 4
                et = ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0
                off = 0
            else:
                self._skip("unknown_linktype")
                return None
        except IndexError:
            self._skip("truncated_l2")
            return None
        if et == ETH_IPV4:
            return self._ipv4(pkt, data, off)
        if et == ETH_IPV6:
            return self._ipv6(pkt, data, off)
        self._skip("non_ip")
        return None

    def _ipv4(self, pkt: Packet, data: bytes, off: int) -> tuple | None:
        if len(data) < off + 20:
            self._skip("truncated_ip")
            return None
        b0 = data[off]
        ihl = (b0 & 15) << 2
        if b0 >> 4 != 4 or ihl < 20:
            self._skip("bad_ip_header")
            return None
        tot = (data[off + 2] << 8) | data[off + 3]
        if tot == 0:  # TSO segment captured before segmentation: length unknown, use what we have
            tot = len(data) - off
        if tot < ihl:
            self._skip("bad_ip_length")
            return None
        if len(data) < off + ihl:
            self._skip("truncated_ip")
            return None
        proto = data[off + 9]
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        frag = (data[off + 6] << 8) | data[off + 7]
        if frag & 0x3FFF:
            payload = data[off + ihl : off + tot]
            if len(payload) < tot - ihl:
                self._skip("ip_fragment_incomplete")
                return None
            key = (src, dst, data[off + 4 : off + 6], proto)
            foff = (frag & 0x1FFF) << 3
            return self._fragment(pkt, key, proto, src, dst, foff, bool(frag & 0x2000), payload)
        if proto != 6 and proto != 17:
            self._skip("icmp" if proto == 1 else "other_l4")
            return None
        return proto, src, dst, data, off + ihl, tot - ihl, None

    def _ipv6(self, pkt: Packet, data: bytes, off: int) -> tuple | None:
        if len(data) < off + 40:
            self._skip("truncated_ip")
            return None
        if data[off] >> 4 != 6:
            self._skip("bad_ip_header")
            return None
        plen = (data[off + 4] << 8) | data[off + 5]
        if plen == 0:  # jumbogram or TSO: use what was captured
            plen = len(data) - off - 40
        nh = data[off + 6]
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        p = off + 40
        end = p + plen
        try:
            while True:
                if nh in IPV6_EXT:
                    nh, p = data[p], p + ((data[p + 1] + 1) << 3)
                elif nh == 51:
                    nh, p = data[p], p + ((data[p + 1] + 2) << 2)
                elif nh == 44:
                    fo = (data[p + 2] << 8) | data[p + 3]
                    fnh = data[p]
                    ident = data[p + 4 : p + 8]
                    payload = data[p + 8 : end]
                    if len(payload) < end - p - 8:
                        self._skip("ip_fragment_incomplete")
                        return None
                    return self._fragment(pkt, (src, dst, ident, None), fnh, src, dst, fo & 0xFFF8,
                                          bool(fo & 1), payload)
                else:
                    break
        except IndexError:
            self._skip("truncated_ip")
            return None
        if p > end:
            self._skip("bad_ip_length")
            return None
        if nh != 6 and nh != 17:
            self._skip("icmp" if nh == 58 else "other_l4")
            return None
        return nh, src, dst, data, p, end - p, None

    def _fragment(self, pkt: Packet, key: tuple, proto: int, src: bytes, dst: bytes, foff: int,
                  more: bool, payload: bytes) -> tuple | None:
        self.fragmented_packets += 1
        fs = self._frags.get(key)
        if fs is None:
            if len(self._frags) >= MAX_FRAGMENT_SETS:
                self.expire(None)
            fs = self._frags[key] = _Fragments(pkt[0], proto)
        if foff + len(payload) > MAX_DATAGRAM:
            del self._frags[key]
            for _ in range(len(fs.packets) + 1):
                self._skip("ip_fragment_bad")
            return None
        if foff == 0:
            fs.proto = proto
        fs.parts.append((foff, payload))
        fs.packets.append(pkt)
        if not more:
            fs.have_last = True
            fs.total = foff + len(payload)
        if not fs.have_last:
            return None
        fs.parts.sort(key=lambda x: x[0])
        have = 0
        chunks = []
        for start, part in fs.parts:
            if start > have:
                return None
            if start + len(part) > have:
                chunks.append(part[have - start :])
                have = start + len(part)
        if have < fs.total:
            return None
        del self._frags[key]
        datagram = b"".join(chunks)[: fs.total]
        proto = fs.proto
        if proto != 6 and proto != 17:
            self._skip("icmp" if proto in (1, 58) else "other_l4")
            return None
        return proto, src, dst, datagram, 0, len(datagram), fs.packets

    def expire(self, now_ns: int | None) -> None:
        """Drop fragment sets older than the timeout (all but the newest half when `now_ns` is None)."""
        if now_ns is None:
            victims = list(self._frags)[: len(self._frags) // 2 + 1]
        else:
            limit = now_ns - self._frag_ns
            victims = [k for k, fs in self._frags.items() if fs.first_ts < limit]
        for k in victims:
            fs = self._frags.pop(k)
            for _ in fs.packets:
                self._skip("ip_fragment_incomplete")
