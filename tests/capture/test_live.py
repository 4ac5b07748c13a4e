"""Acceptance 4: live capture (AF_PACKET ring, promiscuous, BPF, kernel timestamps) in network namespaces:
`kflpcap streams --interface` sees the TCP streams a real HTTP client made to a real HTTP server,
every packet sent, and counts exactly what the kernel dropped when its ring was full."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns import linked_pair, netns_available

pytestmark = [pytest.mark.live, pytest.mark.skipif(not netns_available(), reason="needs root and ip netns")]

CLIENT = """
import socket, sys, urllib.request
host, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with urllib.request.urlopen(f"http://{host}:8080/?req={i}", timeout=5) as r:
        assert r.status == 200
        r.read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"not http", (host, 9999))
"""


BURST = """
import socket, sys, time
host, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"hello", (host, 9998))  # not counted (the filter takes port 9999): resolves the MAC first
time.sleep(0.5)
payload = bytes(200)
sent = sum(s.sendto(payload, (host, 9999)) == len(payload) for _ in range(n))
print(sent)
"""


REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0  # generous: the tests wait for events (a bound socket, an empty queue, an exit)
HANG_GUARD_S = 600  # --duration, far beyond every wait: the tests stop the capture themselves


def _capture(link, *extra: str) -> subprocess.Popen:
    return link.a.popen([sys.executable, "-m", "runtime", "streams", "--json", "--interface", link.a_if,
                         "--duration", str(HANG_GUARD_S), *extra],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(proc: subprocess.Popen) -> tuple[list[dict], dict, str]:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    return rows[:-1], rows[-1]["summary"], err


def _packet_socket(link, proc: subprocess.Popen) -> str | None:
    """The `ss -0` line of the capture's packet socket bound to the interface, if it is open."""
    if proc.poll() is not None:
        raise AssertionError(proc.communicate()[1])
    for line in link.a.run(["ss", "-a", "-0", "-n"], check=False).stdout.splitlines():
        if f"*:{link.a_if}" in line:
            return line
    return None


def _wait(cond, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def _wait_listening(link, proc: subprocess.Popen) -> None:
    """The capture is up once its packet socket is bound to the interface (`ss -0` lists it): from
    then on the kernel queues every packet of the interface for it."""
    _wait(lambda: _packet_socket(link, proc) is not None, "the capture did not open its socket")


def _stop_when_read(link, proc: subprocess.Popen) -> None:
    """SIGTERM: the capture still reads what the kernel put in its ring before it ends."""
    _wait_listening(link, proc)
    os.killpg(proc.pid, signal.SIGTERM)


def test_live_capture_sees_the_http_streams() -> None:
    with linked_pair() as link:
        link.b.popen([sys.executable, "-m", "http.server", "8080", "--bind", link.b_ip])
        link.b.wait_tcp(link.b_ip, 8080)
        before = time.time_ns()
        cap = _capture(link)
        _wait_listening(link, cap)
        link.a.run([sys.executable, "-c", CLIENT, link.b_ip, "3"])
        _stop_when_read(link, cap)
        after = time.time_ns()
        rows, summary, _err = _rows(cap)
    http = [r for r in rows if r["l4"] == "tcp" and r["dst_port"] == 8080]
    assert len(http) == 3
    for r in http:
        assert (r["src_ip"], r["dst_ip"]) == (link.a_ip, link.b_ip)
        assert r["src_port"] > 1024
        assert r["packets"] >= 8  # handshake, request, response, FINs and ACKs
        assert before <= r["first_ts_ns"] <= r["last_ts_ns"] <= after  # kernel timestamps, ns
    udp = [r for r in rows if r["l4"] == "udp" and r["dst_port"] == 9999]
    assert len(udp) == 1 and udp[0]["packets"] == 5
    assert summary["packets_streamed"] >= sum(r["packets"] for r in http) + 5


def test_live_capture_with_bpf_filter() -> None:
    with linked_pair() as link:
        link.b.popen([sys.executable, "-m", "http.server", "8080", "--bind", link.b_ip])
        link.b.wait_tcp(link.b_ip, 8080)
        cap = _capture(link, "--bpf", "tcp port 8080")
        _wait_listening(link, cap)
        link.a.run([sys.executable, "-c", CLIENT, link.b_ip, "2"])
        _stop_when_read(link, cap)
        rows, summary, _err = _rows(cap)
    assert {(r["l4"], r["dst_port"]) for r in rows} == {("tcp", 8080)}
    assert len(rows) == 2
    assert summary["packets_read"] == summary["packets_streamed"]


def test_live_capture_stops_on_sigterm() -> None:
    with linked_pair() as link:
        cap = _capture(link)  # would run for HANG_GUARD_S; _rows gives up long before that
        _wait_listening(link, cap)
        os.killpg(cap.pid, signal.SIGTERM)
        _rows_, summary, _err = _rows(cap)
        assert "packets_read" in summary


def test_bad_interface_and_bad_filter() -> None:
    proc = subprocess.run([sys.executable, "-m", "runtime", "streams", "--interface", "nosuchif0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "iface:nosuchif0: cannot capture" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "runtime", "streams", "--interface", "lo",
                           "--bpf", "tcp port"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "bad BPF filter" in proc.stderr and "Traceback" not in proc.stderr


def test_interface_going_away_ends_the_capture_with_one_warning() -> None:
    with linked_pair() as link:
        cap = _capture(link)
        _wait_listening(link, cap)
        link.a.run(["ip", "link", "del", link.a_if])
        _rows_, summary, err = _rows(cap)
    # (the link's own IPv6 neighbour discovery may add a "skipping packets: ICMP" warning)
    warnings = [line for line in err.splitlines()
                if line.startswith("kflpcap: warning:") and "skipping packets" not in line]
    assert len(warnings) == 1 and f"iface:{link.a_if}: capture stopped" in warnings[0]
    assert summary["input_errors"] == 1


def _burst(link, n: int) -> int:
    """Send `n` UDP datagrams from `a` to `b` port 9999 at full speed; the number sent."""
    return int(link.a.run([sys.executable, "-c", BURST, link.b_ip, str(n)], timeout=TIMEOUT_S).stdout)


def test_live_capture_sees_every_packet_sent() -> None:
    with linked_pair() as link:
        cap = _capture(link, "--bpf", "udp port 9999")
        _wait_listening(link, cap)
        sent = _burst(link, 20000)
        _stop_when_read(link, cap)
        rows, summary, _err = _rows(cap)
    assert sent == 20000
    assert summary["kernel_drops"] == 0
    assert summary["packets_read"] == sent
    assert [r["packets"] for r in rows if r["dst_port"] == 9999] == [sent]


def test_kernel_drops_are_counted_exactly() -> None:
    """A 1 MiB ring and a consumer that does not read (stopped) while a burst comes: the kernel drops
    most of it, and the capture reports exactly the packets it did not see."""
    with linked_pair() as link:
        cap = _capture(link, "--bpf", "udp port 9999", "--ring-mib", "1")
        _wait_listening(link, cap)
        os.killpg(cap.pid, signal.SIGSTOP)
        try:
            sent = _burst(link, 30000)
        finally:
            os.killpg(cap.pid, signal.SIGCONT)
        _stop_when_read(link, cap)
        rows, summary, _err = _rows(cap)
    seen = summary["packets_read"]
    assert 0 < seen < sent
    assert summary["kernel_drops"] == sent - seen
    assert summary["kernel_freezes"] >= 1
    assert [r["packets"] for r in rows if r["dst_port"] == 9999] == [seen]


VLAN_READER = """
import json, sys, threading
from capture.live import LiveSource
src = LiveSource(sys.argv[1])
threading.Timer(float(sys.argv[2]), src.stop).start()
print("ready", flush=True)
with src:
    for _ts, lt, data, orig_len in src:
        print(json.dumps([lt, data[:18].hex(), len(data), orig_len]), flush=True)
"""


TAGGED_SENDER = """
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
head = bytes.fromhex("ffffffffffff" "020000000042") + struct.pack("!HHH", 0x8100, 42, 0x88B5)
for i in range(int(sys.argv[2])):
    s.send(head + bytes([i]) * 46)
"""


def test_vlan_tags_taken_off_by_the_kernel_are_put_back() -> None:
    """Frames received with an 802.1Q tag keep it: the kernel moves it to the ring's header
    (tp_vlan_tci), the capture puts it back where it was on the wire."""
    with linked_pair() as link:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        reader = link.a.popen([sys.executable, "-c", VLAN_READER, link.a_if, "3"], stdout=subprocess.PIPE,
                              text=True, env=env)
        assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
        link.b.run([sys.executable, "-c", TAGGED_SENDER, link.b_if, "5"])
        out, _ = reader.communicate(timeout=TIMEOUT_S)
    frames = [json.loads(line) for line in out.splitlines()]
    tagged = [f for f in frames if f[1][12:24] == "020000000042"]
    assert [f[1][24:36] for f in tagged] == ["8100002a88b5"] * 5
    assert [(f[2], f[3]) for f in tagged] == [(64, 64)] * 5
