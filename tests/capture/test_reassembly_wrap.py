"""TCP reassembly around the 2**32 sequence wrap, in both directions: loss, reordering and
retransmission of segments just before and just after the wrap deliver exactly what was sent, or the
exact gap (sequence order, not plain integer order, decides which buffered segment comes first)."""

from __future__ import annotations

import random

import pytest

from tests.capture.tcpbuild import Conn, Harness, chunks

DATA = bytes(range(256)) * 12  # 3072 bytes
SEG = 300
WRAP_AT = 700  # the offset whose sequence number is 0: the first payload byte is 2**32 - 700


def _conn(direction: int) -> Conn:
    near_wrap = 0xFFFFFFFF - WRAP_AT  # ISN; ISN + 1 + 700 == 2**32
    return Conn(isn_c=near_wrap) if direction == 0 else Conn(isn_s=near_wrap)


def _segments(conn: Conn, direction: int) -> list[tuple[int, bytes]]:
    return [conn.data(direction, off, piece) for off, piece in chunks(DATA, SEG)]


@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_segment_lost_just_before_the_wrap_is_an_exact_gap_when_acked(direction: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    del segs[1]  # bytes 300..599 (sequence 2**32-400 .. 2**32-101) never reach the capture
    h = Harness()
    h.feed(hs + segs)  # 600..899 straddles the wrap; the rest lies after it: all buffered
    rec = h.only()
    assert rec.stream(direction) == [DATA[:300]]
    h.feed([conn.ack(1 - direction, ack_offset=len(DATA))])
    assert rec.stream(direction) == [DATA[:300], ("gap", 300), DATA[600:]]
    assert h.cap.counters["tcp_gap_bytes"] == 300


@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_segment_lost_just_after_the_wrap_is_an_exact_gap_at_close(direction: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    del segs[3]  # bytes 900..1199: sequence 200..499, just after the wrap
    h = Harness()
    h.feed(hs + segs)
    h.cap.finish()  # no ACK: the stream ends with segments still buffered
    rec = h.only()
    assert rec.stream(direction) == [DATA[:900], ("gap", 300), DATA[1200:]]
    assert h.cap.counters["tcp_gap_bytes"] == 300


@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_loss_before_the_wrap_then_close_without_ack(direction: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    del segs[1]
    h = Harness()
    h.feed(hs + segs)
    h.cap.finish()
    assert h.only().stream(direction) == [DATA[:300], ("gap", 300), DATA[600:]]
    assert h.cap.counters["tcp_gap_bytes"] == 300


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_reordering_across_the_wrap(direction: int, seed: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    rest = segs[1:]
    random.Random(seed).shuffle(rest)
    h = Harness()
    h.feed(hs + segs[:1] + rest)
    h.cap.finish()
    assert h.only().stream(direction) == [DATA]
    assert h.cap.counters["tcp_gaps"] == 0


@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_retransmissions_before_and_after_the_wrap_are_dropped(direction: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    # in order, each segment retransmitted once; and the two around the wrap again, late
    stream = [pkt for seg in segs for pkt in (seg, seg)] + [segs[1], segs[2], segs[3]]
    h = Harness()
    h.feed(hs + stream)
    h.cap.finish()
    assert h.only().stream(direction) == [DATA]
    assert h.cap.counters["tcp_retransmitted"] == len(segs) + 3


@pytest.mark.parametrize("direction", [0, 1], ids=["client-to-server", "server-to-client"])
def test_retransmitted_out_of_order_segments_across_the_wrap(direction: int) -> None:
    conn = _conn(direction)
    hs = conn.handshake()
    segs = _segments(conn, direction)
    # 0 arrives, then everything after the wrap twice, then what straddles it, then 300..599
    late = segs[3:] + segs[3:] + [segs[2], segs[2], segs[1]]
    h = Harness()
    h.feed(hs + segs[:1] + late)
    h.cap.finish()
    assert h.only().stream(direction) == [DATA]
    assert h.cap.counters["tcp_gaps"] == 0
