"""TCP reassembly of one direction: in-order delivery, overlap trimming, bounded out-of-order buffer.

Sequence numbers are compared modulo 2**32. Bytes that never show up in the capture are reported
as gaps: when the peer acknowledges past them, when the out-of-order buffer is full, and when the
stream closes with segments still buffered. A segment cut by the snaplen delivers what was
captured, then a gap for the rest.
"""

from __future__ import annotations

from capture.model import StreamHandler

M = 0xFFFFFFFF
HALF = 0x80000000


class TcpDirection:
    """Reassembles one direction of a TCP stream into `handler.on_data` / `on_gap` calls."""

    __slots__ = ("direction", "fin_seq", "handler", "max_ooo", "next", "ooo", "ooo_bytes", "stats")

    def __init__(self, handler: StreamHandler, direction: int, max_ooo: int, stats: dict[str, int]) -> None:
        self.handler = handler
        self.direction = direction
        self.max_ooo = max_ooo
        self.next: int | None = None
        self.ooo: dict[int, tuple[bytes, int, int]] = {}
        self.ooo_bytes = 0
        self.fin_seq: int | None = None
        self.stats = stats

    def syn(self, seq: int) -> None:
        if self.next is None:
            self.next = (seq + 1) & M

    def segment(self, seq: int, data: bytes, wlen: int, ts: int, fin: bool) -> None:
        """`data` is what was captured of the `wlen` payload bytes starting at `seq`."""
        if fin:
            self.fin_seq = (seq + wlen) & M
        if not wlen:
            return
        nxt = self.next
        if nxt is None:
            nxt = self.next = seq
        rel = (seq - nxt) & M
        if rel == 0:
            self._deliver(data, wlen, ts)
        elif rel & HALF:
            behind = (nxt - seq) & M
            if behind >= wlen:
                self.stats["tcp_retransmitted"] += 1
                return
            self.stats["tcp_overlaps"] += 1
            self._deliver(data[behind:], wlen - behind, ts)
        else:
            old = self.ooo.get(seq)
            if old is not None:
                if old[1] >= wlen:
                    self.stats["tcp_retransmitted"] += 1
                    return
                self.ooo_bytes -= old[1]
            self.stats["tcp_out_of_order"] += 1
            self.ooo[seq] = (data, wlen, ts)
            self.ooo_bytes += wlen
            if self.ooo_bytes > self.max_ooo:
                self.stats["tcp_ooo_overflow"] += 1
                self._skip_to_buffered(ts)
            return
        if self.ooo:
            self._drain()

    def ack(self, ack_no: int, ts: int) -> None:
        """The peer acknowledged `ack_no`: bytes before it that we never saw are lost to the capture."""
        nxt = self.next
        if nxt is None:
            return
        if self.fin_seq is not None and ack_no == (self.fin_seq + 1) & M:
            ack_no = self.fin_seq
        rel = (ack_no - nxt) & M
        if rel == 0 or rel & HALF:
            return
        while True:
            nxt = self.next
            first = self._first_buffered()
            if first is not None and (first - nxt) & M < (ack_no - nxt) & M:
                self._gap(first, ts)
                self._drain()
                continue
            if (ack_no - nxt) & M and not (ack_no - nxt) & HALF:
                self._gap(ack_no, ts)
                if self.ooo:
                    self._drain()
            return

    def flush(self, ts: int) -> None:
        """Deliver everything still buffered, reporting the holes between (stream closing)."""
        while self.ooo:
            self._skip_to_buffered(ts)

    def _first_buffered(self) -> int | None:
        if not self.ooo:
            return None
        nxt = self.next
        return min(self.ooo, key=lambda s: (s - nxt) & M)

    def _skip_to_buffered(self, ts: int) -> None:
        first = self._first_buffered()
        if first is None:
            return
        if (first - self.next) & M and not (first - self.next) & HALF:
            self._gap(first, ts)
        self._drain()

    def _gap(self, upto: int, ts: int) -> None:
        length = (upto - self.next) & M
        self.stats["tcp_gaps"] += 1
        self.stats["tcp_gap_bytes"] += length
        self.next = upto
        self.handler.on_gap(self.direction, length, ts)

    def _deliver(self, data: bytes, wlen: int, ts: int) -> None:
        if data:
            self.handler.on_data(self.direction, data, ts)
        self.next = (self.next + wlen) & M
        if wlen > len(data):
            self.stats["tcp_snaplen_gap_bytes"] += wlen - len(data)
            self.handler.on_gap(self.direction, wlen - len(data), ts)

    def _drain(self) -> None:
        """Deliver buffered segments that now start at or before `next`."""
        ooo = self.ooo
        progress = True
        while ooo and progress:
            progress = False
            nxt = self.next
            for seq in list(ooo):
                rel = (seq - nxt) & M
                if rel and not rel & HALF:
                    continue
                data, wlen, ts = ooo.pop(seq)
                self.ooo_bytes -= wlen
                behind = (nxt - seq) & M
                if behind < wlen:
                    self._deliver(data[behind:], wlen - behind, ts)
                else:
                    self.stats["tcp_retransmitted"] += 1
                progress = True
                break
