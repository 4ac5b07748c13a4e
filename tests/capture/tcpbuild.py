"""Build TCP/UDP conversations with scapy and record what a `Capture` hands to stream handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from capture import Capture, CaptureConfig, StreamMeta
from capture.model import NS

T0 = 1_700_000_000 * NS


@dataclass
class Recorder:
    """A StreamHandler that keeps every event."""

    meta: StreamMeta
    events: list[tuple] = field(default_factory=list)

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        self.events.append(("data", direction, bytes(data), ts_ns))

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        self.events.append(("gap", direction, length, ts_ns))

    def on_close(self, ts_ns: int, reason: str) -> None:
        self.events.append(("close", reason, ts_ns))

    def stream(self, direction: int) -> list:
        """Data of one direction: consecutive bytes joined, gaps as ("gap", n)."""
        out: list = []
        for ev in self.events:
            if ev[0] == "data" and ev[1] == direction:
                if out and isinstance(out[-1], bytes):
                    out[-1] += ev[2]
                else:
                    out.append(ev[2])
            elif ev[0] == "gap" and ev[1] == direction:
                out.append(("gap", ev[2]))
        return out

    @property
    def closes(self) -> list[str]:
        return [ev[1] for ev in self.events if ev[0] == "close"]


class Harness:
    """A Capture whose handlers are Recorders, indexed by stream id."""

    def __init__(self, config: CaptureConfig | None = None) -> None:
        self.handlers: dict[str, Recorder] = {}
        self.cap = Capture(config or CaptureConfig(), handler_factory=self._make)
        self.cap.warn = lambda _text: None

    def _make(self, meta: StreamMeta) -> Recorder:
        rec = self.handlers[meta.stream_id] = Recorder(meta)
        return rec

    def feed(self, packets: list[tuple[int, bytes]]) -> None:
        for ts, raw in packets:
            self.cap.feed(ts, 1, raw, len(raw))

    def only(self) -> Recorder:
        assert len(self.handlers) == 1, list(self.handlers)
        return next(iter(self.handlers.values()))


class Conn:
    """One TCP connection; every method returns `(ts_ns, ethernet frame bytes)`.

    Offsets are relative to the first payload byte of each direction (ISN + 1).
    """

    def __init__(self, client: tuple[str, int] = ("10.0.0.1", 40000),
                 server: tuple[str, int] = ("10.0.0.2", 80), isn_c: int = 1000, isn_s: int = 5000,
                 t0: int = T0, v6: bool = False) -> None:
        self.ends = (client, server)
        self.isn = (isn_c, isn_s)
        self.ts = t0
        self.v6 = v6
        self.sent = [0, 0]  # highest offset sent per direction (for ACK numbers)

    def _pkt(self, d: int, flags: str, seq: int, payload: bytes = b"", ack: int | None = None,
             dt: int = 1_000_000) -> tuple[int, bytes]:
        (sip, sport), (dip, dport) = self.ends[d], self.ends[1 - d]
        ip = IPv6(src=sip, dst=dip) if self.v6 else IP(src=sip, dst=dip)
        tcp = TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF,
                  ack=(ack if ack is not None else self.isn[1 - d] + 1 + self.sent[1 - d]) & 0xFFFFFFFF)
        self.ts += dt
        return self.ts, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / tcp / payload)

    def syn(self) -> tuple[int, bytes]:
        return self._pkt(0, "S", self.isn[0], ack=0)

    def synack(self) -> tuple[int, bytes]:
        return self._pkt(1, "SA", self.isn[1], ack=self.isn[0] + 1)

    def handshake(self) -> list[tuple[int, bytes]]:
        return [self.syn(), self.synack(), self.ack(0)]

    def ack(self, d: int, ack_offset: int | None = None) -> tuple[int, bytes]:
        ack = None if ack_offset is None else self.isn[1 - d] + 1 + ack_offset
        return self._pkt(d, "A", self.isn[d] + 1 + self.sent[d], ack=ack)

    def data(self, d: int, offset: int, payload: bytes, flags: str = "PA") -> tuple[int, bytes]:
        self.sent[d] = max(self.sent[d], offset + len(payload))
        return self._pkt(d, flags, self.isn[d] + 1 + offset, payload)

    def fin(self, d: int) -> tuple[int, bytes]:
        pkt = self._pkt(d, "FA", self.isn[d] + 1 + self.sent[d])
        return pkt

    def rst(self, d: int, offset: int | None = None) -> tuple[int, bytes]:
        off = self.sent[d] if offset is None else offset
        return self._pkt(d, "R", self.isn[d] + 1 + off, ack=0)


def chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    """(offset, piece) pairs cutting `data` every `size` bytes."""
    return [(i, data[i : i + size]) for i in range(0, len(data), size)]


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    return bytes(Ether() / IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / payload)
