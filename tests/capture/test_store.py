"""The stream store: packets per stream in order, pinning, retention on the capture clock, the
per-stream cap, eviction of the oldest unpinned streams, honest memory accounting, counters."""

from __future__ import annotations

import gc
import tracemalloc

from bench.floodgen import syn_frame
from bench.floodgen import udp_frame as flood_udp_frame
from capture import Capture, CaptureConfig, make_handler_factory
from capture.model import NS
from capture.store import HANDLER_OVERHEAD, StoreAt
from tests.capture.tcpbuild import T0, Conn, udp_frame


def _cap(**cfg: float) -> Capture:
    cap = Capture(CaptureConfig(**cfg))
    cap.warn = lambda _t: None
    return cap


def _udp_stream(cap: Capture, port: int, n: int, size: int, t0: int, step: int = 1000) -> list[bytes]:
    frames = [udp_frame(("10.0.0.1", port), ("10.0.0.2", 53), bytes([i % 256]) * size) for i in range(n)]
    for i, frame in enumerate(frames):
        cap.feed(t0 + i * step, 1, frame, len(frame))
    return frames


def test_packets_in_order_with_cursor_and_mixed_link_types() -> None:
    cap = _cap()
    conn = Conn()
    pkts = conn.handshake() + [conn.data(0, 0, b"hello")]
    for ts, raw in pkts:
        cap.feed(ts, 1, raw, len(raw) + 4)
    raw_ip = pkts[-1][1][14:]  # the same flow seen on a raw-IP interface
    cap.feed(pkts[-1][0] + 5, 101, raw_ip, len(raw_ip))
    sid = "000000000000.pcap"
    got = cap.store.packets(sid)
    assert [p[0] for p in got] == [ts for ts, _ in pkts] + [pkts[-1][0] + 5]
    assert [p[1] for p in got] == [1, 1, 1, 1, 101]
    assert got[0][2] == pkts[0][1] and got[0][3] == len(pkts[0][1]) + 4
    assert cap.store.packets(sid, start=3) == got[3:]
    info = cap.store.info(sid)
    assert info.packets == 5 and info.bytes == sum(len(p[2]) for p in got)
    assert info.wire_bytes == sum(p[3] for p in got) and not info.closed


def test_retention_after_close_and_pinning() -> None:
    cap = _cap(retention_s=30)
    released = []
    cap.store.on_release = released.append
    conn = Conn()
    pkts = conn.handshake() + [conn.fin(0), conn.fin(1)]
    for ts, raw in pkts:
        cap.feed(ts, 1, raw, len(raw))
    sid = "000000000000.pcap"
    assert cap.store.info(sid).closed
    assert cap.store.pin(sid)
    cap.tick(pkts[-1][0] + 31 * NS)
    assert cap.store.info(sid) is not None  # pinned: outlives its retention
    cap.store.unpin(sid)
    assert cap.store.info(sid) is None and cap.store.packets(sid) == []
    assert [i.stream_id for i in released] == [sid] and released[0].packets == 5
    assert not cap.store.pin(sid)
    # unpinned: leaves after 30 s of capture time, not before
    other = Conn(client=("10.0.0.9", 40001), t0=pkts[-1][0] + 40 * NS)
    more = other.handshake() + [other.fin(0), other.fin(1)]
    for ts, raw in more:
        cap.feed(ts, 1, raw, len(raw))
    cap.tick(more[-1][0] + 29 * NS)
    assert cap.store.info("000000000001.pcap") is not None
    cap.tick(more[-1][0] + 31 * NS)
    assert cap.store.info("000000000001.pcap") is None
    assert cap.counters["streams_released"] == 2


def test_per_stream_cap_counts_truncation() -> None:
    cap = _cap(stream_cap_bytes=10_000)
    frames = _udp_stream(cap, 5000, 30, 958, T0)
    info = cap.store.info("000000000000_udp.pcap")
    kept = 10_000 // len(frames[0])
    assert len(cap.store.packets(info.stream_id)) == kept
    assert info.packets == 30 and info.truncated_packets == 30 - kept
    c = cap.counters
    assert c["streams_truncated"] == 1 and c["packets_truncated"] == 30 - kept


def test_eviction_drops_oldest_unpinned_closed_streams_first() -> None:
    cap = _cap(budget_bytes=700_000, udp_idle_s=1)
    t = T0
    for port in range(6000, 6010):  # ten streams of ~55 kB each, closed by the idle timeout
        _udp_stream(cap, port, 50, 1000, t)
        t += 2 * NS
    cap.tick(t)
    sids = [f"{i:012d}_udp.pcap" for i in range(10)]
    assert cap.store.pin(sids[0])
    _udp_stream(cap, 7000, 200, 1000, t)  # a live stream pushes the store over budget
    c = cap.counters
    assert c["bytes_held"] <= 700_000
    assert c["streams_evicted"] >= 1 and c["packets_evicted"] == 50 * c["streams_evicted"]
    evicted = [sid for sid in sids if cap.store.info(sid).evicted]
    assert sids[0] not in evicted  # pinned
    assert evicted == sids[1 : 1 + len(evicted)]  # oldest first
    assert all(cap.store.packets(sid) == [] for sid in evicted)
    live = cap.store.info("000000000010_udp.pcap")
    assert not live.evicted and live.packets == 200


def test_live_stream_eviction_closes_its_handler() -> None:
    closes = []

    class Handler:
        def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
            pass

        def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
            pass

        def on_close(self, ts_ns: int, reason: str) -> None:
            closes.append(reason)

    cap = Capture(CaptureConfig(budget_bytes=200_000), handler_factory=lambda meta: Handler())
    cap.warn = lambda _t: None
    _udp_stream(cap, 8000, 100, 1000, T0)
    _udp_stream(cap, 8001, 150, 1000, T0 + NS)
    assert closes == ["evicted"]
    info = cap.store.info("000000000000_udp.pcap")
    assert info.evicted and info.packets == 100
    _udp_stream(cap, 8000, 5, 1000, T0 + 2 * NS)  # later packets are counted, not kept
    assert cap.store.info("000000000000_udp.pcap").packets == 105
    assert cap.counters["packets_evicted"] == 105


def test_accounting_matches_real_memory() -> None:
    """`bytes_held` is within 15 % of what tracemalloc sees the stored packets take."""
    sizes = [60, 200, 600, 1500, 9000]
    frames = {size: udp_frame(("10.0.0.1", 9000 + size), ("10.0.0.2", 53), b"x" * size) for size in sizes}
    for size in sizes:
        cap = _cap()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            # a copy made by the "reader": the store then holds the only reference
            frame = bytes(bytearray(frames[size]))
            cap.feed(T0 + i, 1, frame, len(frame))
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        held = cap.counters["bytes_held"]
        assert abs(held - used) <= 0.15 * used, (size, held, used)


def _flood(cap: Capture, frames, t0: int, every: int = 100) -> int:
    """Feed flood frames one by one; the highest `bytes_held` seen at every `every`-th packet."""
    peak = 0
    for i, frame in enumerate(frames):
        cap.feed(t0 + i * 1000, 1, frame, len(frame))
        if i % every == 0:
            peak = max(peak, cap.store.held)
    return max(peak, cap.store.held)


def test_a_syn_flood_goes_first_and_the_streams_with_payload_stay() -> None:
    """Streams that never carried payload leave the store first, whole; the store stays in its budget
    and says so once; a pinned stream and a live one with payload keep every packet."""
    warnings: list[str] = []
    cap = Capture(CaptureConfig(budget_bytes=1 << 20))
    cap.warn = warnings.append
    kept = Conn(client=("10.0.0.7", 40007))
    pinned = Conn(client=("10.0.0.8", 40008))
    for conn in (kept, pinned):
        for ts, raw in conn.handshake() + [conn.data(0, 0, b"GET / HTTP/1.1\r\n\r\n" + b"x" * 4000)]:
            cap.feed(ts, 1, raw, len(raw))
    assert cap.store.pin("000000000001.pcap")
    peak = _flood(cap, (syn_frame(i) for i in range(6000)), T0 + NS)
    c = cap.counters
    assert peak <= 1 << 20 and c["over_budget_all_pinned"] == 0
    assert c["bare_streams_dropped"] >= 6000 - (1 << 20) // 1000 and c["streams_evicted"] == 0
    assert c["streams_held"] == 6002 - c["bare_streams_dropped"]
    assert [w for w in warnings if "never carried payload" in w] == warnings and len(warnings) == 1
    for sid in ("000000000000.pcap", "000000000001.pcap"):
        info = cap.store.info(sid)
        assert info.packets == 4 and not info.evicted and len(cap.store.packets(sid)) == 4
    assert cap.store.info("000000000002.pcap") is None  # the oldest SYN went first
    assert cap.store.info(f"{6001:012d}.pcap").packets == 1  # the newest is still there


def test_a_flood_of_one_packet_flows_with_payload_stays_in_budget() -> None:
    """Records alone over the budget: evicted streams leave before their retention ends, oldest first;
    the pinned stream and its packets stay."""
    warnings: list[str] = []
    cap = Capture(CaptureConfig(budget_bytes=1 << 20))
    cap.warn = warnings.append
    _udp_stream(cap, 5000, 20, 500, T0)
    assert cap.store.pin("000000000000_udp.pcap")
    peak = _flood(cap, (flood_udp_frame(i) for i in range(6000)), T0 + NS)
    c = cap.counters
    assert peak <= 1 << 20 and c["over_budget_all_pinned"] == 0
    assert c["evicted_streams_dropped"] > 0 and c["bare_streams_dropped"] == 0
    assert c["streams_held"] <= (1 << 20) // 960
    assert len(cap.store.packets("000000000000_udp.pcap")) == 20
    assert any("stream records alone" in w for w in warnings)
    assert cap.store.info("000000000001_udp.pcap") is None
    cap.store.unpin("000000000000_udp.pcap")  # unpinned: queued again, and goes when its turn comes
    _flood(cap, (flood_udp_frame(i) for i in range(6000, 12000)), T0 + 2 * NS)
    assert cap.store.info("000000000000_udp.pcap") is None
    assert cap.counters["over_budget_all_pinned"] == 0


def test_when_everything_is_pinned_the_counter_says_so() -> None:
    cap = _cap(budget_bytes=100_000)
    _udp_stream(cap, 5000, 1, 1000, T0)
    assert cap.store.pin("000000000000_udp.pcap")
    _udp_stream(cap, 5000, 200, 1000, T0 + 1000)
    c = cap.counters
    assert c["over_budget_all_pinned"] > 0 and c["streams_evicted"] == 0
    assert len(cap.store.packets("000000000000_udp.pcap")) == 201


def test_accounting_of_flood_streams_with_their_dissectors_matches_real_memory() -> None:
    """A stream that just opened costs its record and, while it has one, its dissector: `bytes_held`
    is within 15 % of what tracemalloc sees, for SYNs and one-packet UDP flows."""
    for make, l4 in ((syn_frame, "tcp"), (flood_udp_frame, "udp")):
        frames = [make(i) for i in range(5000)]
        cap = Capture(handler_factory=make_handler_factory(lambda _item: None))
        cap.warn = lambda _t: None
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i, frame in enumerate(frames):
            cap.feed(T0 + i * 1000, 1, frame, len(frame))
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        held = cap.counters["bytes_held"]
        assert abs(held - used) <= 0.15 * used, (make.__name__, held, used)
        cap.finish()  # every dissector closed: their share leaves the count
        assert cap.counters["bytes_held"] == held - 5000 * HANDLER_OVERHEAD[l4]


def _mixed_traffic() -> tuple[list[tuple[int, bytes]], str, str]:
    """A TCP connection (closed by FIN) interleaved with a UDP flow: (ts, frame) in reading order."""
    conn = Conn()
    tcp = conn.handshake() + [conn.data(0, 0, b"GET / HTTP/1.1\r\n\r\n")]
    tcp += [conn.data(1, 0, b"HTTP/1.1 200 OK\r\n"), conn.fin(0), conn.fin(1)]
    udp = [udp_frame(("10.0.0.1", 4000), ("10.0.0.2", 53), bytes([i]) * 40) for i in range(len(tcp))]
    packets = []
    for i, (ts, frame) in enumerate(tcp):
        packets += [(ts, frame), (ts + 1, udp[i])]
    return packets, "000000000000.pcap", "000000000001_udp.pcap"


def test_a_view_as_of_packets_read_is_what_the_store_held_then() -> None:
    """`info(sid, upto)` and `packets(sid, start, upto)` answer as the store was when the capture had
    read `upto` packets (what a wrapper tick or a hook's helpers see after the batch), on the fast
    path of `consume` and on `feed` alike."""
    packets, tcp, udp = _mixed_traffic()
    fed = _cap()
    then: dict[int, dict[str, tuple]] = {}
    for ts, frame in packets:
        fed.feed(ts, 1, frame, len(frame))
        then[fed.store.seq] = {sid: (fed.store.info(sid), fed.store.packets(sid)) for sid in (tcp, udp)}
    consumed = _cap()
    consumed.consume([(ts, 1, frame, len(frame)) for ts, frame in packets])
    assert fed.store.seq == consumed.store.seq == len(packets)
    for cap in (fed, consumed):
        view_seq: list[int | None] = [None]
        view = StoreAt(cap.store, lambda seq=view_seq: seq[0])
        for seq, state in then.items():
            view_seq[0] = seq
            for sid, (info, held) in state.items():
                assert cap.store.packets(sid, 0, seq) == held == view.packets(sid)
                assert cap.store.info(sid, seq) == info == view.info(sid)
                held_bytes = None if info is None else (info.bytes, info.closed or info.evicted)
                assert cap.store.held_bytes(sid, seq) == held_bytes
    assert then[1][udp][0] is None  # the UDP flow starts with the second packet
    assert [then[s][tcp][0].closed for s in sorted(then)].count(True) == 2  # from the last FIN on
    assert not fed.store.info(tcp, len(packets) - 2).closed and fed.store.info(tcp, len(packets) - 1).closed
