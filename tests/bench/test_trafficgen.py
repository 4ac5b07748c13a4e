"""bench.trafficgen checked against real tshark: truth sidecar, clean sequence analysis, determinism."""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import trafficgen
from bench.trafficgen import generate, write_capture

TSHARK = "/usr/bin/tshark"
REPO = Path(__file__).resolve().parents[2]
# what tshark must never say about a clean generated capture
BAD_EXPERT = ("not captured", "retransmission", "malformed", "dup ack", "duplicate ack", "unseen",
              "out-of-order", "keep-alive", "window full", "zero window", "reused", "checksum",
              "bounderror", "exception", "spurious", "lost segment")
FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.stream",
          "tcp.srcport", "tcp.dstport", "udp.stream", "udp.srcport", "udp.dstport", "http.response.code",
          "dns.flags.response", "tcp.checksum.status", "udp.checksum.status", "ip.checksum.status",
          "_ws.expert.message", "http.request.method"]
CHECK_OPTS = ["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
              "-o", "ip.check_checksum:TRUE", "-o", "tcp.desegment_tcp_streams:TRUE",
              "-o", "http.desegment_body:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE"]


def tshark_rows(pcap: Path | str, *extra: str, stdin: bytes | None = None) -> list[dict[str, str]]:
    cmd = [TSHARK, "-n", "-r", str(pcap), *CHECK_OPTS, *extra, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, input=stdin, capture_output=True, check=True)
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in res.stdout.decode().splitlines()]


def _last(v: str) -> str:
    return v.split("|")[-1]


def _endpoints(r: dict[str, str]) -> tuple[str, str]:
    if r["ip.src"]:
        return _last(r["ip.src"]), _last(r["ip.dst"])
    return _last(r["ipv6.src"]), _last(r["ipv6.dst"])


def describe(rows: list[dict[str, str]]) -> dict:
    """The oracle's view of a capture, computed from tshark's fields (same shape as the truth)."""
    first: dict[tuple[str, int], list] = {}
    packets: Counter = Counter()
    http500: dict[int, list] = {}
    dns: dict[tuple[str, int], list] = {}
    codes: Counter = Counter()
    dns_q = dns_r = 0
    for r in rows:
        src, dst = _endpoints(r)
        if r["tcp.stream"]:
            key = ("tcp", int(r["tcp.stream"]))
            sp, dp = int(r["tcp.srcport"]), int(r["tcp.dstport"])
        else:
            key = ("udp", int(r["udp.stream"]))
            sp, dp = int(r["udp.srcport"]), int(r["udp.dstport"])
        first.setdefault(key, [src, sp, dst, dp])
        packets[key] += 1
        for c in filter(None, r["http.response.code"].split("|")):
            codes[int(c)] += 1
            if c == "500":
                http500.setdefault(key[1], [dst, dp, src, sp])
        for flag in filter(None, r["dns.flags.response"].split("|")):
            is_resp = flag in ("1", "True", "true")
            dns_r += is_resp
            dns_q += not is_resp
            dns.setdefault(key, [key[0], dst, dp, src, sp] if is_resp else [key[0], src, sp, dst, dp])
    return {
        "http500_streams": [http500[k] for k in sorted(http500)],
        "dns_flows": sorted(dns.values()),
        "packets": {(k[0], k[1], *first[k]): n for k, n in packets.items()},
        "codes": codes,
        "dns_queries": dns_q,
        "dns_responses": dns_r,
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[dict[str, str]]]:
    """5k packets; the pools of distinct flows are shrunk so that most flows are re-instantiated
    templates (new client, port, ISNs, ip ids), as in big captures."""
    d = tmp_path_factory.mktemp("gen")
    pcap, truth_json = d / "small.pcap", d / "small.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trafficgen, "_POOL", {"http": 40, "dns": 20, "dns-tcp": 2})
        truth = write_capture(pcap, truth_path=truth_json, packets=5000, seed=7, ipv6_ratio=0.2)
    assert truth.http_connections > 3 * 40
    return pcap, json.loads(truth_json.read_text()), tshark_rows(pcap)


def test_http500_streams_match_tshark(small: tuple) -> None:
    _, truth, rows = small
    seen = describe(rows)
    assert truth["http500_streams"], "a 5k capture at 10 % must hold some 500 streams"
    assert seen["http500_streams"] == truth["http500_streams"]
    assert truth["http500_connections"] == len(truth["http500_streams"])
    share = len(seen["http500_streams"]) / len(truth["http_status_by_stream"])
    assert 0.05 <= share <= 0.15  # http500_ratio defaults to 10 % of the connections


def test_dns_flows_and_counts_match_tshark(small: tuple) -> None:
    _, truth, rows = small
    seen = describe(rows)
    assert {f[0] for f in truth["dns_flows"]} == {"udp", "tcp"}
    assert seen["dns_flows"] == sorted(truth["dns_flows"])
    assert (seen["dns_queries"], seen["dns_responses"]) == (truth["dns_queries"], truth["dns_responses"])


def test_packets_per_stream_match_tshark(small: tuple) -> None:
    _, truth, rows = small
    seen = describe(rows)["packets"]
    expected = {(proto, s["stream"], *s["tuple"]): s["packets"]
                for proto in ("tcp", "udp") for s in truth["packets_per_stream"][proto]}
    assert seen == expected
    assert sum(expected.values()) == truth["packets"] == len(rows)


def test_every_http_exchange_reassembled(small: tuple) -> None:
    _, truth, rows = small
    seen = describe(rows)
    assert {str(k): v for k, v in seen["codes"].items()} == truth["http_status"]
    assert sum(seen["codes"].values()) == truth["http_exchanges"]
    requests = sum(len(list(filter(None, r["http.request.method"].split("|")))) for r in rows)
    assert requests == truth["http_exchanges"]


def problems(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """tshark's complaints: bad expert infos and checksums that are not 'good'."""
    bad = []
    for r in rows:
        for msg in filter(None, r["_ws.expert.message"].split("|")):
            if any(b in msg.lower() for b in BAD_EXPERT):
                bad.append((r["frame.number"], msg))
        for f in ("tcp.checksum.status", "udp.checksum.status", "ip.checksum.status"):
            if r[f] not in ("", "1"):
                bad.append((r["frame.number"], f, r[f]))
    return bad


def test_tshark_finds_nothing_wrong(small: tuple) -> None:
    _, _, rows = small
    assert problems(rows) == []
    assert all(r["tcp.stream"] or r["udp.stream"] for r in rows)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, b, c = io.BytesIO(), io.BytesIO(), io.BytesIO()
    ta = generate(a, packets=3000, seed=11, ipv6_ratio=0.1)
    generate(b, packets=3000, seed=11, ipv6_ratio=0.1)
    generate(c, packets=3000, seed=12, ipv6_ratio=0.1)
    assert a.getvalue() == b.getvalue()
    assert a.getvalue() != c.getvalue()
    assert ta.bytes + 24 == len(a.getvalue())


def _timestamps(data: bytes) -> list[float]:
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    out, off = [], 24
    while off < len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        out.append(sec + usec / 1e6)
        off += 16 + incl
    return out


def test_duration_spreads_timestamps_and_flows_interleave(tmp_path: Path) -> None:
    start, duration = 1_750_000_000.0, 3 * 3600.0
    pcap, tj = tmp_path / "long.pcap", tmp_path / "long.json"
    truth = write_capture(pcap, truth_path=tj, packets=4000, seed=3, start=start, duration=duration)
    ts = _timestamps(pcap.read_bytes())
    assert len(ts) == truth.packets
    assert ts == sorted(ts)
    assert ts[0] == start
    assert start + 0.9 * duration <= ts[-1] <= start + duration
    # tshark agrees on the times, and TCP streams overlap (not one after another)
    rows = tshark_rows(pcap)
    assert [float(r["frame.time_epoch"]) for r in rows] == pytest.approx(ts, abs=1e-6)
    assert problems(rows) == []  # long think times and idle gaps: still no dup ACK etc.
    spans: dict[int, list[float]] = {}
    for r in rows:
        if r["tcp.stream"]:
            spans.setdefault(int(r["tcp.stream"]), []).append(float(r["frame.time_epoch"]))
    ordered = [spans[k] for k in sorted(spans)]
    overlapping = sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[-1])
    assert overlapping > len(ordered) // 4


def test_cli_streams_to_stdout_and_gzip(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench.trafficgen", "--packets", "800", "--seed", "5"]
    out = subprocess.run([*args, "--out", "-", "--truth", str(tmp_path / "t.json")], cwd=REPO,
                         capture_output=True, check=True).stdout
    truth = json.loads((tmp_path / "t.json").read_text())
    assert len(out) == 24 + truth["bytes"]
    rows = tshark_rows("-", stdin=out)
    assert len(rows) == truth["packets"]
    subprocess.run([*args, "--out", str(tmp_path / "f.pcap.gz"), "--gzip"], cwd=REPO, check=True,
                   capture_output=True)
    assert gzip.decompress((tmp_path / "f.pcap.gz").read_bytes()) == out


def test_plain_shape_browser_http_without_compressed_bodies(tmp_path: Path) -> None:
    """The plain shape (bench/README.md): browser GETs on keep-alive connections, bodies sent as they
    are; tshark reassembles it cleanly and agrees with the truth."""
    pcap, tj = tmp_path / "plain.pcap", tmp_path / "plain.json"
    write_capture(pcap, truth_path=tj, packets=4000, seed=5, plain=True, duration=120.0)
    truth = json.loads(tj.read_text())
    data = pcap.read_bytes()
    assert b"Content-Encoding" not in data and b"Transfer-Encoding" not in data
    assert b"Accept-Language: " in data and b"Cookie: session=" in data
    rows = tshark_rows(pcap)
    assert problems(rows) == []
    seen = describe(rows)
    assert truth["http500_streams"] and seen["http500_streams"] == truth["http500_streams"]
    assert seen["dns_flows"] == sorted(truth["dns_flows"])
    assert sum(seen["codes"].values()) == truth["http_exchanges"] >= 2 * truth["http_connections"]
    ts = _timestamps(data)
    assert 0.9 * 120.0 <= ts[-1] - ts[0] <= 120.0
