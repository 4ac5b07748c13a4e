"""Issue 13, acceptance 2: when the kernel drops packets of a live capture (its ring is full), `kflpcap
run` reports exactly how many — in /metrics (`kflpcap_drops{reason="kernel"}`), in the summary and in
the manifest of the repository written after them — and the count equals the packets sent minus the
packets read."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.netns import linked_pair, netns_available
from tests.seaweed import free_ports

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.live, pytest.mark.skipif(not netns_available(), reason="needs root and ip netns")]

# DNS queries from one socket (one UDP flow, so one stream in the seed script's "dns" repository)
BURST = """
import socket, struct, sys, time
host, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"hello", (host, 9998))  # not captured (the filter takes port 53): resolves the MAC first
time.sleep(0.5)
name = b"".join(bytes([len(p)]) + p for p in b"drops.example.com".split(b".")) + b"\\0"
sent = 0
for i in range(n):
    query = struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
    sent += s.sendto(query, (host, 53)) == len(query)
print(sent)
"""
SENT = 30000
SCRAPE = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def _wait_for(link, port: int, proc: subprocess.Popen, ok, timeout: float = 60.0) -> dict:
    """Scrape /metrics (inside the namespace) until `ok(samples)`."""
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        res = link.a.run([sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{port}/metrics"], check=False)
        got = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(res.stdout) for s in family.samples}
        if res.returncode == 0 and ok(got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out; last scrape: {got}")


def _kernel_drops(got: dict) -> float:
    return got.get(("kflpcap_drops_total", (("reason", "kernel"),)), 0)


def test_run_reports_kernel_drops_exactly(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(REPO / "scripts" / "kfl_pcap_s3.js", scripts)
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))}
    with linked_pair() as link:
        proc = link.a.popen(
            [sys.executable, "-m", "runtime", "run", "--interface", link.a_if, "--bpf", "udp port 53",
             "--ring-mib", "1", "--scripts", str(scripts), "--data-dir", str(tmp_path / "data"),
             "--node", "drop-node", "--metrics-port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(link, port, proc, lambda g: link.a.packet_socket_open(link.a_if))
            os.killpg(proc.pid, signal.SIGSTOP)  # the consumer does not read: the 1 MiB ring fills up
            try:
                out = link.a.run([sys.executable, "-c", BURST, link.b_ip, str(SENT)], timeout=120).stdout
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            sent = int(out)
            got = _wait_for(link, port, proc,
                            lambda g: g[("kflpcap_packets_total", ())] + _kernel_drops(g) >= sent)
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    seen, drops = got[("kflpcap_packets_total", ())], _kernel_drops(got)
    assert sent == SENT and 0 < seen < sent
    assert drops == sent - seen
    assert got[("kflpcap_ring_freezes_total", ())] >= 1
    assert f"{int(drops):,} packets dropped by the kernel" in err
    manifests = [json.loads(p.read_text())
                 for p in (tmp_path / "data" / "repositories" / "drop-node").glob("kfl-pcap-s3/kfl_1/*.json")]
    assert len(manifests) == 1
    assert manifests[0]["capture"] == {"kernel_drops": drops}
    assert manifests[0]["streams"][0]["packets"] == seen

