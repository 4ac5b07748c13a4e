"""Acceptance 2: TCP reassembly on traffic built with scapy: what each direction delivers equals what
was sent, or the gap is reported exactly."""

from __future__ import annotations

import random
import subprocess

import pytest

from capture import CaptureConfig
from capture.model import NS
from tests.capture.tcpbuild import Conn, Harness, chunks, udp_frame

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + bytes(range(256)) * 8


def _exchange(conn: Conn, seg: int = 100) -> dict[str, list]:
    """Handshake, request, response in `seg`-byte segments, FIN both ways: packets by phase."""
    opening = conn.handshake()
    req = [conn.data(0, off, piece) for off, piece in chunks(REQUEST, seg)]
    resp = [conn.data(1, off, piece) for off, piece in chunks(RESPONSE, seg)]
    return {"open": opening, "req": req, "resp": resp, "ack": [conn.ack(0)],
            "close": [conn.fin(0), conn.fin(1), conn.ack(0)]}


def _run(packets: list, config: CaptureConfig | None = None) -> Harness:
    h = Harness(config)
    h.feed(packets)
    h.cap.finish()
    return h


def test_in_order_both_directions() -> None:
    conn = Conn()
    p = _exchange(conn)
    h = _run(p["open"] + p["req"] + p["resp"] + p["ack"] + p["close"])
    rec = h.only()
    assert rec.stream(0) == [REQUEST]
    assert rec.stream(1) == [RESPONSE]
    assert rec.closes == ["fin"]
    assert rec.meta.client_port == 40000 and rec.meta.server_port == 80
    assert h.cap.counters["tcp_gaps"] == 0


def test_out_of_order_segments_are_buffered_and_delivered_in_order() -> None:
    conn = Conn()
    p = _exchange(conn, seg=64)
    resp = list(p["resp"])
    random.Random(7).shuffle(resp)
    h = _run(p["open"] + p["req"] + resp + p["ack"] + p["close"])
    rec = h.only()
    assert rec.stream(1) == [RESPONSE]
    assert h.cap.counters["tcp_out_of_order"] > 0
    assert h.cap.counters["tcp_gaps"] == 0


def test_retransmissions_are_dropped() -> None:
    conn = Conn()
    p = _exchange(conn)
    resp = []
    for pkt in p["resp"]:
        resp += [pkt, pkt]
    h = _run(p["open"] + p["req"] + p["req"][:1] + resp + p["ack"] + p["close"])
    rec = h.only()
    assert rec.stream(0) == [REQUEST]
    assert rec.stream(1) == [RESPONSE]
    assert h.cap.counters["tcp_retransmitted"] == len(p["resp"]) + 1


def test_overlapping_segments_are_trimmed() -> None:
    conn = Conn()
    hs = conn.handshake()
    segs = [conn.data(1, 0, RESPONSE[0:300]), conn.data(1, 200, RESPONSE[200:700]),
            conn.data(1, 650, RESPONSE[650:1000]),
            # an out-of-order segment overlapping both its neighbours
            conn.data(1, 1500, RESPONSE[1500:]), conn.data(1, 900, RESPONSE[900:1600])]
    h = _run(hs + segs)
    rec = h.only()
    assert rec.stream(1) == [RESPONSE]
    assert h.cap.counters["tcp_overlaps"] >= 2


def test_missing_segment_is_reported_as_an_exact_gap_when_acked() -> None:
    conn = Conn()
    hs = conn.handshake()
    segs = [conn.data(1, off, piece) for off, piece in chunks(RESPONSE, 500)]
    lost = segs.pop(1)  # bytes 500..999 never reach the capture
    assert lost
    h = Harness()
    h.feed(hs + segs[:1])
    h.feed(segs[1:])
    rec = h.only()
    # the data after the hole is held back until the client acknowledges past it
    assert rec.stream(1) == [RESPONSE[:500]]
    h.feed([conn.ack(0)])
    assert rec.stream(1) == [RESPONSE[:500], ("gap", 500), RESPONSE[1000:]]
    h.cap.finish()
    assert rec.closes == ["end"]
    assert h.cap.counters["tcp_gap_bytes"] == 500


def test_missing_tail_before_close_is_a_gap() -> None:
    conn = Conn()
    hs = conn.handshake()
    segs = [conn.data(1, off, piece) for off, piece in chunks(RESPONSE, 500)]
    del segs[2]  # bytes 1000..1499 lost; 1500.. buffered out of order
    h = _run(hs + segs + [conn.fin(1), conn.fin(0)])
    rec = h.only()
    assert rec.stream(1) == [RESPONSE[:1000], ("gap", 500), RESPONSE[1500:]]
    assert rec.closes == ["fin"]


def test_interleaved_directions_keep_their_own_order() -> None:
    conn = Conn()
    pkts = conn.handshake()
    reqs = [b"REQ%d " % i * 30 for i in range(5)]
    resps = [b"RESP%d " % i * 50 for i in range(5)]
    off_c = off_s = 0
    for req, resp in zip(reqs, resps, strict=True):
        # request pieces and response pieces alternate on the wire
        half = len(req) // 2
        pkts.append(conn.data(0, off_c, req[:half]))
        pkts.append(conn.data(1, off_s, resp[:100]))
        pkts.append(conn.data(0, off_c + half, req[half:]))
        pkts.append(conn.data(1, off_s + 100, resp[100:]))
        off_c += len(req)
        off_s += len(resp)
    h = _run(pkts)
    rec = h.only()
    assert rec.stream(0) == [b"".join(reqs)]
    assert rec.stream(1) == [b"".join(resps)]
    order = [ev[1] for ev in rec.events if ev[0] == "data"]
    assert order[:4] == [0, 1, 0, 1]


def test_syn_less_pickup_starts_at_the_first_segment() -> None:
    conn = Conn(client=("192.0.2.7", 51000), server=("198.51.100.1", 8080))
    conn.handshake()  # not captured
    resp = [conn.data(1, off, piece) for off, piece in chunks(RESPONSE, 400)]
    req2 = conn.data(0, 0, REQUEST)
    h = _run(resp[2:] + [req2])
    rec = h.only()
    assert rec.stream(1) == [RESPONSE[800:]]
    assert rec.stream(0) == [REQUEST]
    # no SYN seen: the higher port is the client
    assert (rec.meta.client_ip, rec.meta.client_port) == ("192.0.2.7", 51000)


def test_rst_closes_the_stream() -> None:
    conn = Conn()
    pkts = conn.handshake() + [conn.data(0, 0, REQUEST), conn.rst(1)]
    h = Harness()
    h.feed(pkts)
    rec = h.only()
    assert rec.closes == []  # a RST closes once no payload followed it for half a second
    h.cap.tick(pkts[-1][0] + NS)
    assert rec.closes == ["rst"]
    assert rec.stream(0) == [REQUEST]
    info = h.cap.store.info(rec.meta.stream_id)
    assert info is not None and info.closed


def test_rst_followed_by_payload_does_not_close() -> None:
    conn = Conn()
    pkts = conn.handshake() + [conn.rst(0), conn.data(0, 0, REQUEST), conn.data(1, 0, RESPONSE)]
    h = _run(pkts)
    rec = h.only()
    assert rec.stream(0) == [REQUEST] and rec.stream(1) == [RESPONSE]
    assert rec.closes == ["end"]
    assert h.cap.counters["tcp_rst_overridden"] == 1


def test_out_of_window_rst_is_ignored() -> None:
    conn = Conn()
    pkts = conn.handshake() + [conn.data(0, 0, REQUEST), conn.rst(1, offset=123456)]
    pkts += [conn.data(1, 0, RESPONSE)]
    h = _run(pkts)
    rec = h.only()
    assert rec.stream(1) == [RESPONSE]
    assert rec.closes == ["end"]
    assert h.cap.counters["tcp_rst_ignored"] == 1


def test_tuple_reused_after_fin_is_a_new_stream() -> None:
    first = Conn(isn_c=1000, isn_s=5000)
    p1 = _exchange(first)
    second = Conn(isn_c=900000, isn_s=700000, t0=first.ts + NS)
    packets = [pkt for phase in ("open", "req", "resp", "ack", "close") for pkt in p1[phase]]
    packets += second.handshake() + [second.data(0, 0, b"second request"),
                                     second.data(1, 0, b"second response"), second.fin(0), second.fin(1)]
    h = _run(packets)
    assert sorted(h.handlers) == ["000000000000.pcap", "000000000001.pcap"]
    one, two = h.handlers["000000000000.pcap"], h.handlers["000000000001.pcap"]
    assert one.stream(0) == [REQUEST] and one.stream(1) == [RESPONSE]
    assert two.stream(0) == [b"second request"] and two.stream(1) == [b"second response"]
    assert one.closes == ["fin"] and two.closes == ["fin"]
    assert h.cap.store.info("000000000000.pcap").packets == sum(len(v) for v in p1.values())


def test_sequence_numbers_wrap_around() -> None:
    conn = Conn(isn_s=0xFFFFFFFF - 700)
    hs = conn.handshake()
    segs = [conn.data(1, off, piece) for off, piece in chunks(RESPONSE, 300)]
    segs[2], segs[3] = segs[3], segs[2]
    h = _run(hs + segs)
    assert h.only().stream(1) == [RESPONSE]


def test_snaplen_cut_segment_delivers_captured_bytes_then_a_gap() -> None:
    conn = Conn()
    hs = conn.handshake()
    ts, frame = conn.data(1, 0, RESPONSE[:1000])
    nxt = conn.data(1, 1000, RESPONSE[1000:1100])
    h = Harness()
    h.feed(hs)
    h.cap.feed(ts, 1, frame[:96], len(frame))
    h.feed([nxt])
    h.cap.finish()
    captured = 96 - 14 - 20 - 20
    assert h.only().stream(1) == [RESPONSE[:captured], ("gap", 1000 - captured), RESPONSE[1000:1100]]


def test_ipv6_stream() -> None:
    conn = Conn(client=("2001:db8::1", 40001), server=("2001:db8::2", 443), v6=True)
    p = _exchange(conn, seg=333)
    h = _run(p["open"] + p["req"] + p["resp"] + p["close"])
    rec = h.only()
    assert rec.meta.client_ip == "2001:db8::1"
    assert rec.stream(0) == [REQUEST] and rec.stream(1) == [RESPONSE]


def test_udp_datagrams_and_idle_timeout() -> None:
    h = Harness(CaptureConfig(udp_idle_s=60))
    client, server = ("10.1.1.1", 53000), ("10.1.1.2", 53)
    t = 1_700_000_000 * NS
    h.feed([(t, udp_frame(client, server, b"query1")), (t + NS, udp_frame(server, client, b"answer1")),
            (t + 200 * NS, udp_frame(client, server, b"query2"))])
    h.cap.finish()
    assert sorted(h.handlers) == ["000000000000_udp.pcap", "000000000001_udp.pcap"]
    first, second = h.handlers["000000000000_udp.pcap"], h.handlers["000000000001_udp.pcap"]
    assert first.stream(0) == [b"query1"] and first.stream(1) == [b"answer1"]
    assert first.closes == ["idle"] and second.closes == ["end"]
    assert second.stream(0) == [b"query2"]
    assert first.meta.server_port == 53


def test_tcp_idle_timeout_starts_a_new_stream() -> None:
    conn = Conn()
    pkts = conn.handshake() + [conn.data(0, 0, b"early")]
    late = conn.data(0, 5, b"late")
    h = Harness(CaptureConfig(tcp_idle_s=10))
    h.feed(pkts)
    h.feed([(late[0] + 11 * NS, late[1])])
    h.cap.finish()
    assert sorted(h.handlers) == ["000000000000.pcap", "000000000001.pcap"]
    assert h.handlers["000000000000.pcap"].closes == ["idle"]
    assert h.handlers["000000000001.pcap"].stream(0) == [b"late"]


def test_a_failing_handler_is_detached_and_counted() -> None:
    class Boom:
        def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
            raise ValueError("dissector bug")

        def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
            pass

        def on_close(self, ts_ns: int, reason: str) -> None:
            pass

    from capture import Capture

    warnings: list[str] = []
    cap = Capture(handler_factory=lambda meta: Boom())
    cap.warn = warnings.append
    conn = Conn()
    for ts, raw in conn.handshake() + [conn.data(0, 0, REQUEST), conn.data(1, 0, RESPONSE)]:
        cap.feed(ts, 1, raw, len(raw))
    assert cap.counters["handler_errors"] == 1
    assert len(warnings) == 1 and "dissector bug" in warnings[0]
    assert cap.store.info("000000000000.pcap").packets == 5


def test_packet_listener_sees_every_stream_packet() -> None:
    seen: list[tuple] = []
    h = Harness()
    h.cap.packet_listener = lambda *args: seen.append(args)
    conn = Conn()
    pkts = conn.handshake() + [conn.data(0, 0, REQUEST)]
    h.feed(pkts)
    assert [s[0] for s in seen] == ["000000000000.pcap"] * 4
    assert [s[1] for s in seen] == [ts for ts, _ in pkts]
    assert all(s[2] == s[3] and s[4] is False for s in seen)


FOLLOW_FILES = [
    "zeek_http_pipelined.pcap", "sv_http_vlan_keepalive-11req.pcap", "sv_dns_tcp_multirequest.pcap",
    "zeek_http_chunked_100-continue_keepalive.pcap", "ndpi_http4xx_webdav_keepalive.pcap",
    "ndpi_http404_midstream.pcapng", "sv_http_linux-sll_rst-injection.pcap",
]


def _tshark_follow(pcap, indexes: list[int]) -> dict[int, dict[tuple, bytes]]:
    """tshark's reassembled bytes per stream index, keyed by sending endpoint (ip, port)."""
    args = ["tshark", "-n", "-r", str(pcap), "-q", "-o", "tcp.reassemble_out_of_order:TRUE"]
    for i in indexes:
        args += ["-z", f"follow,tcp,raw,{i}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    result: dict[int, dict[tuple, bytes]] = {}
    nodes: list[tuple] = []
    current: dict[tuple, bytes] = {}
    for line in out.splitlines():
        if line.startswith("Filter: tcp.stream eq "):
            current = result.setdefault(int(line.rsplit(" ", 1)[1]), {})
            nodes = []
        elif line.startswith(("Node 0: ", "Node 1: ")):
            host, port = line[8:].rsplit(":", 1)
            nodes.append((host.strip("[]"), int(port)))
            current.setdefault(nodes[-1], b"")
        elif line and all(c in "0123456789abcdef\t" for c in line) and len(nodes) == 2:
            node = nodes[1] if line.startswith("\t") else nodes[0]
            current[node] += bytes.fromhex(line.strip())
    return result


@pytest.mark.parametrize("name", FOLLOW_FILES)
def test_reassembled_bytes_equal_tshark_follow(name: str) -> None:
    from capture import open_sources
    from tests.conftest import PCAPS, oracle

    pcap = PCAPS / name
    h = Harness()
    h.cap.consume(open_sources([str(pcap)]))
    h.cap.finish()
    streams = oracle(pcap)["packets_per_stream"]["tcp"]
    follow = _tshark_follow(pcap, [s["stream"] for s in streams])
    ours = {}
    for rec in h.handlers.values():
        if rec.meta.l4 != "tcp":
            continue
        client = (rec.meta.client_ip, rec.meta.client_port)
        server = (rec.meta.server_ip, rec.meta.server_port)
        data = {}
        for d, end in ((0, client), (1, server)):
            pieces = rec.stream(d)
            assert all(isinstance(p, bytes) for p in pieces), (name, rec.meta, "unexpected gap")
            data[end] = b"".join(pieces)
        ours[frozenset((client, server))] = data
    assert len(ours) == len(streams)
    for s in streams:
        theirs = follow[s["stream"]]
        mine = ours[frozenset(theirs)]
        for end, payload in theirs.items():
            assert mine[end] == payload, (name, s["stream"], end, len(mine[end]), len(payload))
