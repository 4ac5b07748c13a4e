"""Acceptance 2 and 3: `kflpcap run --interface` on a live test network with the seed script and a
real S3 (SeaweedFS): /metrics counters move while traffic flows; after SIGTERM the bucket holds
exactly the HTTP-500 connections and the DNS flows (what the clients did, and what tshark finds in
the dumpcap reference capture of the same traffic), and the exit code is 0."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.demo.clients import ClientPlan
from runtime.demo.livenet import LiveNet, record_reference
from tests.product.tshark_oracle import dns_flows, http500_streams, l4_flows
from tests.seaweed import SeaweedS3, free_ports

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.live


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(port: int, proc: subprocess.Popen, ok, timeout: float = 60.0, poke=None) -> dict:
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kflpcap run ended early"
        try:
            got = scrape(port)
        except OSError:
            got = {}
        if got and ok(got):
            return got
        if poke is not None:
            poke()
        time.sleep(0.2)
    raise AssertionError(f"timed out; last scrape: {got}")


def items(got: dict, protocol: str) -> float:
    return got.get(("kflpcap_items_total", (("protocol", protocol),)), 0)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_live_run_keeps_exactly_the_500s_and_dns(livenet: LiveNet, seaweed: SeaweedS3, tmp_path: Path,
                                                 stop: str) -> None:
    """SIGTERM: repositories uploaded to S3; SIGINT: written to the local store of the data folder."""
    s3 = stop == "SIGTERM"
    bucket = seaweed.create_bucket("live-repos") if s3 else ""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(REPO / "scripts" / "kfl_pcap_s3.js", scripts)
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))}
    env.update(seaweed.env(bucket) if s3 else {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", "run", "--interface", livenet.capture_iface,
         "--scripts", str(scripts), "--data-dir", str(tmp_path / "data"),
         "--node", "live-node", "--metrics-port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        before = wait_for(port, proc, lambda g: g.get(("kflpcap_packets_total", ()), 0) > 0,
                          poke=livenet.send_probe)
        log, want = record_reference(livenet, tmp_path / "reference.pcap", ClientPlan.quick())
        after = wait_for(port, proc, lambda g: items(g, "http") >= want["http_requests"]
                         and items(g, "dns") >= want["dns_queries"], timeout=30)
        proc.send_signal(getattr(signal, stop))
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    # acceptance 3: the counters moved while the traffic flowed
    assert after[("kflpcap_packets_total", ())] > before[("kflpcap_packets_total", ())]
    assert items(before, "http") == 0 and items(after, "http") >= want["http_requests"]
    seed = (("index", "0"), ("query", "http and response.status == 500"), ("script", "KFL PCAP S3"))
    assert after[("kflpcap_matches_total", seed)] >= len(want["http500_streams"]) > 0
    assert after[("kflpcap_script_batch_seconds_count", (("script", "all scripts"),))] > 0
    # acceptance 2: exactly the 500 connections and the DNS flows, uploaded to S3
    assert "Repositories written: 2" in err and f"{stop}: stopping" in err
    flows: dict[int, set[str]] = {0: set(), 1: set()}
    if s3:
        assert f"s3://{bucket}/" in err
        client = seaweed.client()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        for key in keys:
            if key.endswith(".pcap.gz"):
                assert key.startswith("live-node/kfl-pcap-s3/kfl_"), key
                path = tmp_path / key.replace("/", "_")
                client.download_file(bucket, key, str(path))
                flows[int(key.split("/")[2].removeprefix("kfl_"))] |= l4_flows(path)
    else:
        for path in (tmp_path / "data" / "repositories" / "live-node").glob("kfl-pcap-s3/kfl_*/*.pcap.gz"):
            flows[int(path.parent.name.removeprefix("kfl_"))] |= l4_flows(path)
    reference = tmp_path / "reference.pcap"
    assert flows[0] == set(want["http500_streams"]) == http500_streams(reference)
    assert flows[1] == set(want["dns_flows"]) == dns_flows(reference)
    assert log["http"] and log["dns"]
