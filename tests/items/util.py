"""Run traffic through the real `Capture` with the dissectors and collect the items."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from capture import Capture, CaptureConfig, open_sources
from capture.dissect import DissectConfig, NodeInfo, make_handler_factory
from capture.model import NS, StreamMeta
from capture.names import NameTable
from tests.capture.tcpbuild import T0, Conn, udp_frame
from tests.conftest import PCAPS

NODE = NodeInfo("node-a", "10.1.1.1")
MSS = 1448


def run_frames(frames: list[tuple[int, bytes]], names: NameTable | None = None,
               config: DissectConfig | None = None, cap_config: CaptureConfig | None = None) -> list[dict]:
    """Feed Ethernet frames `(ts_ns, bytes)` to a Capture; the items in the order they were emitted."""
    items: list[dict] = []
    factory = make_handler_factory(items.append, NODE, names or NameTable(), config)
    cap = Capture(cap_config or CaptureConfig(), factory)
    cap.warn = lambda _text: None
    for ts, raw in frames:
        cap.feed(ts, 1, raw, len(raw))
    cap.finish()
    assert cap.counters["handler_errors"] == 0
    return items


def items_of(pcap: Path, names: NameTable | None = None) -> list[dict]:
    items: list[dict] = []
    cap = Capture(CaptureConfig(), make_handler_factory(items.append, NODE, names or NameTable()))
    cap.warn = lambda _text: None
    cap.consume(open_sources([str(pcap)], on_error=lambda _text: None))
    cap.finish()
    assert cap.counters["handler_errors"] == 0
    return items


class Talk:
    """A TCP conversation built with scapy: handshake, messages cut at the MSS, losses, FIN."""

    def __init__(self, client: tuple[str, int] = ("10.0.0.1", 40000),
                 server: tuple[str, int] = ("10.0.0.2", 80), handshake: bool = True, t0: int = T0) -> None:
        self.conn = Conn(client, server, t0=t0)
        self.frames: list[tuple[int, bytes]] = self.conn.handshake() if handshake else []
        self.offset = [0, 0]

    def send(self, d: int, payload: bytes, mss: int = MSS, lost: tuple[int, ...] = ()) -> Talk:
        """`payload` from direction `d` (0 = client); segments whose index is in `lost` are not captured."""
        for i in range(0, len(payload), mss):
            frame = self.conn.data(d, self.offset[d] + i, payload[i:i + mss])
            if i // mss not in lost:
                self.frames.append(frame)
        self.offset[d] += len(payload)
        self.frames.append(self.conn.ack(1 - d))
        return self

    def wait(self, seconds: float) -> Talk:
        self.conn.ts += int(seconds * 1e9)
        return self

    def close(self) -> list[tuple[int, bytes]]:
        self.frames += [self.conn.fin(0), self.conn.fin(1), self.conn.ack(0)]
        return self.frames


def udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ts: int) -> tuple[int, bytes]:
    return ts, udp_frame(src, dst, payload)



@cache
def sample_items(name: str) -> tuple[dict, ...]:
    """Items of one bundled sample capture (computed once per test session)."""
    return tuple(items_of(PCAPS / name))


def answered(item: dict) -> bool:
    """Did the request of this HTTP or DNS item get its response (an unanswered one still has a
    `response`, with status 0 / code "")?"""
    resp = item["response"]
    return bool(resp["status"]) if item["protocol"]["name"] == "http" else resp["code"] != ""


def dissect_events(events: list[tuple[int, bytes]], server_port: int, gap_at: int = -1) -> list[dict]:
    """The items of one TCP stream fed straight to the registry's handler: `(direction, bytes)` in
    order, 1 µs apart; the event at `gap_at` is lost (a gap of its length)."""
    items: list[dict] = []
    meta = StreamMeta("000000000001.pcap", "tcp", "10.0.0.1", 40000, "10.0.0.2", server_port,
                      1_700_000_000 * NS)
    handler = make_handler_factory(items.append, NodeInfo("n", "10.0.0.9"), NameTable())(meta)
    ts = meta.first_ts_ns
    for i, (direction, data) in enumerate(events):
        ts += 1000
        if i == gap_at:
            handler.on_gap(direction, len(data), ts)
        elif data:
            handler.on_data(direction, data, ts)
    handler.on_close(ts + 1, "fin")
    return items
