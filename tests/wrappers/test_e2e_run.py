"""`kflpcap run` with the seed script on every sample capture, repositories in real S3 (SeaweedFS).

Per capture: query 0's repositories hold exactly tshark's HTTP-500 connections and query 1's exactly
its DNS flows (oracle, as 5-tuple multisets); tshark opens every export, counts the packets the
manifest says, and finds the same HTTP-500 connections in it; the bucket verifies afterwards.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import oracle, sample_pcaps
from tests.wrappers.checks import (
    by_query,
    contiguous_totals,
    stream_tuples,
    tshark_500_tuples,
    tshark_packets,
)
from wrappers.repos import verify
from wrappers.stores import open_store

ROOT = Path(__file__).parents[2]
# A fuzzed capture where tshark and our dissectors disagree on what is DNS (capture/dissect's call):
# tshark decodes 6 fuzzed datagrams between non-53 ports as DNS and orients one response-only flow
# by its (fuzzed) QR bit, where our flow table orients it by port.
FUZZED = {"ndpi_dns_big-endian_fuzzed-malformed.pcap"}
FUZZED_DNS = "tshark sees DNS on fuzzed non-53 ports; capture/dissect does not (reported, not wrappers)"


@pytest.fixture(scope="module")
def bucket(seaweed) -> str:
    return seaweed.create_bucket("e2e-seed", object_lock=True)


@pytest.fixture(scope="module")
def seed_scripts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scripts")
    shutil.copy(ROOT / "scripts" / "kfl_pcap_s3.js", folder)
    return folder


def udp_once(flows: Counter) -> Counter:
    """UDP 5-tuples counted once: our flow table splits a UDP flow after 60 s idle (docs/architecture.md),
    tshark's udp.stream never does; TCP tuples stay a multiset (a reused tuple is a new connection for
    both)."""
    return Counter({k: (1 if k[0] == "udp" else n) for k, n in flows.items()})


def node_of(pcap: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", pcap.stem)


@pytest.fixture(scope="module")
def runs(seaweed, bucket: str, seed_scripts: Path, tmp_path_factory) -> dict[str, tuple[Path, Any]]:
    """`kflpcap run` on every sample capture, three at a time (each run is mostly process start-up)."""
    lock = {"S3_OBJECT_LOCK_MODE": "GOVERNANCE", "S3_OBJECT_LOCK_DAYS": "1"}
    env = {**os.environ, **seaweed.env(bucket), **lock}
    base = tmp_path_factory.mktemp("runs")

    def one(pcap: Path) -> tuple[str, tuple[Path, Any]]:
        data = base / node_of(pcap)
        proc = subprocess.run(
            [sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(seed_scripts),
             "--data-dir", str(data), "--node", node_of(pcap)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
        )
        return pcap.name, (data, proc)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, sample_pcaps()))


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize("pcap", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=FUZZED_DNS)) if p.name in FUZZED else p
    for p in sample_pcaps()
], ids=lambda p: p.name)
def test_seed_script_on_sample_capture(pcap: Path, seaweed, bucket: str, runs, tmp_path: Path) -> None:
    data, run = runs[pcap.name]
    node = node_of(pcap)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ERROR" not in run.stdout + run.stderr
    assert not [p for p in (data / "spool").iterdir() if p.name[0].isdigit()]
    store = open_store(f"s3://{bucket}/{node}", endpoint=seaweed.endpoint, region=seaweed.region,
                       access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)
    repos = by_query(open_store(f"s3://{bucket}", endpoint=seaweed.endpoint, region=seaweed.region,
                                access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key))
    repos = {i: [r for r in chain if r.folder.startswith(f"{node}/")] for i, chain in repos.items()}
    truth = oracle(pcap)
    assert stream_tuples(repos.get(0, [])) == Counter(tuple(t) for t in truth["http500_streams"])
    dns = stream_tuples(repos.get(1, []), with_l4=True)
    assert udp_once(dns) == udp_once(Counter(tuple(t) for t in truth["dns_flows"]))
    for index, chain in repos.items():
        contiguous_totals(chain)
        for repo in chain:
            local = tmp_path / Path(repo.data_key).name
            local.write_bytes(store.get(repo.data_key.removeprefix(f"{node}/")))
            assert tshark_packets(local) == sum(s["packets"] for s in repo.manifest["streams"])
            if pcap_header(pcap) and pcap_header(local):  # classic pcap in, classic pcap out
                assert pcap_header(local) == pcap_header(pcap), "the export keeps link type and snaplen"
            if index == 0:
                assert tshark_500_tuples(local) == set(stream_tuples([repo]))
    assert verify(store).problems == []


DENSE_SCRIPT = """// KFL PCAP S3 small repositories
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["http and response.status == 500", "dns"], maxL4Streams: 3 });
}
"""

def dense_setup(tmp_path: Path, packets: int, seed: int) -> tuple[Path, Path]:
    """A generated capture and a scripts folder holding DENSE_SCRIPT: (pcap, scripts)."""
    from bench.trafficgen import write_capture

    pcap = tmp_path / "t.pcap"
    write_capture(pcap, packets=packets, seed=seed)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dense.js").write_text(DENSE_SCRIPT)
    return pcap, scripts


def pcap_header(path: Path) -> tuple[int, int] | None:
    """(snaplen, link type) of a classic pcap file (gzipped too), None for pcapng."""
    with (gzip.open(path) if path.suffix == ".gz" else path.open("rb")) as fh:
        head = fh.read(24)
    for order in "<>":
        magic, *_rest, snaplen, linktype = struct.unpack(order + "IHHiIII", head)
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            return snaplen, linktype
    return None


def kflpcap_run(pcap: Path, scripts: Path, data: Path, env: dict[str, str], **kw: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(scripts),
         "--data-dir", str(data), "--node", "n1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}, cwd=ROOT,
        start_new_session=True, **kw,
    )


@pytest.mark.s3
@pytest.mark.slow
def test_run_with_s3_down_then_a_quiet_next_run_delivers(tmp_path: Path) -> None:
    from tests.seaweed import SeaweedS3

    pcap, scripts = dense_setup(tmp_path, 3000, 4)
    with SeaweedS3(tmp_path / "weed") as server:
        bucket = server.create_bucket("down-then-up", object_lock=True)
        server.stop()
        first = kflpcap_run(pcap, scripts, tmp_path / "data", server.env(bucket))
        out, _ = first.communicate(timeout=240)
        assert first.returncode == 1, out  # exit 1: uploads failed (the artifacts stay spooled)
        assert "still spooled" in out
        spooled = [p for p in (tmp_path / "data" / "spool").iterdir() if p.name[0].isdigit()]
        assert len(spooled) > 2 and "New PCAP" in out
        server.start()
        # the next run is quiet: its script never calls the wrapper, nothing is uploaded by it; the
        # backlog is drained all the same
        quiet = tmp_path / "quiet"
        quiet.mkdir()
        (quiet / "quiet.js").write_text("// Quiet\nfunction onItemCaptured(data) {}\n")
        second = kflpcap_run(pcap, quiet, tmp_path / "data", server.env(bucket))
        out2, _ = second.communicate(timeout=240)
        assert second.returncode == 0, out2
        assert f"{len(spooled)} spooled bundle(s) from an earlier run: uploading them" in out2
        assert not [p for p in (tmp_path / "data" / "spool").iterdir() if p.name[0].isdigit()]
        store = open_store(f"s3://{bucket}", endpoint=server.endpoint, region=server.region,
                           access_key_id=server.access_key, secret_access_key=server.secret_key)
        assert len([k for k in store.list() if k.endswith(".pcap.gz")]) == len(spooled)
        assert verify(store).problems == []


@pytest.mark.slow
def test_a_store_that_accepts_and_never_answers_fails_the_run_like_one_that_refuses(tmp_path: Path) -> None:
    """Uploads still pending at the end exit 1 whatever the failure mode (README, exit codes)."""
    import socket
    import threading

    pcap, scripts = dense_setup(tmp_path, 600, 4)
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])  # accepted, never read nor answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    env = {"S3_BUCKET": "silent", "S3_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    try:
        proc = kflpcap_run(pcap, scripts, tmp_path / "data", env)
        out, _ = proc.communicate(timeout=240)
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        silent.close()
    assert held, "the store was never asked"
    assert proc.returncode == 1, out
    spooled = [p for p in (tmp_path / "data" / "spool").iterdir() if p.name[0].isdigit()]
    assert f"{len(spooled)} upload(s) not confirmed by the store at the end" in out
    assert out.count("New PCAP (spooled): ") == len(spooled) and "Uploaded: " not in out


@pytest.mark.s3
@pytest.mark.slow
def test_run_killed_with_sigkill_while_flushing(seaweed, tmp_path: Path) -> None:
    import signal

    from bench.trafficgen import write_capture

    pcap, scripts = dense_setup(tmp_path, 20000, 6)
    bucket = seaweed.create_bucket("run-sigkill", object_lock=True)
    data = tmp_path / "data"
    proc = kflpcap_run(pcap, scripts, data, seaweed.env(bucket))
    flushes = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        flushes += "New PCAP" in line
        if flushes >= 20:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert flushes >= 20
    after = tmp_path / "after.pcap"
    write_capture(after, packets=2000, seed=7)
    again = kflpcap_run(after, scripts, data, seaweed.env(bucket))
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    assert not [p for p in (data / "spool").iterdir() if p.name[0].isdigit() or p.name.startswith(".tmp-")]
    store = open_store(f"s3://{bucket}", endpoint=seaweed.endpoint, region=seaweed.region,
                       access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)
    keys = set(store.list())
    repos = by_query(store)
    manifests = [r for chain in repos.values() for r in chain]
    assert {r.data_key for r in manifests} | {r.key for r in manifests} == keys  # nothing half-uploaded
    assert verify(store).problems == []  # hash chains unbroken across the kill: no repository lost
    for chain in repos.values():
        contiguous_totals(chain)  # no packet written twice


@pytest.mark.slow
def test_run_rotates_on_capture_time_over_three_hours(tmp_path: Path) -> None:
    import json

    from bench.trafficgen import write_capture

    pcap = tmp_path / "3h.pcap"
    write_capture(pcap, packets=4000, seed=5, duration=10800, truth_path=tmp_path / "truth.json")
    truth = json.loads((tmp_path / "truth.json").read_text())
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "hourly.js").write_text(DENSE_SCRIPT.replace("maxL4Streams: 3", "maxMinutes: 60"))
    proc = kflpcap_run(pcap, scripts, tmp_path / "data", {})
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0 and "ERROR" not in out, out
    store = open_store(tmp_path / "data" / "repositories")
    repos = by_query(store)
    for index in (0, 1):
        chain = sorted(repos[index], key=lambda r: r.manifest["seq"])
        assert [r.manifest["reason"] for r in chain][:2] == ["maxMinutes", "maxMinutes"]
        assert len(chain) == 3, [r.key for r in chain]
        windows = [(r.manifest["window"]["start_ns"], r.manifest["window"]["end_ns"]) for r in chain]
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
        contiguous_totals(chain)
    dns = stream_tuples(repos[1], with_l4=True)
    assert udp_once(dns) == udp_once(Counter(tuple(t) for t in truth["dns_flows"]))
    assert stream_tuples(repos[0]) == Counter(tuple(t) for t in truth["http500_streams"])
    assert verify(store).problems == []


@pytest.mark.slow
def test_streams_of_two_link_types_share_one_pcapng_repository(tmp_path: Path) -> None:
    import gzip

    from tests.conftest import PCAPS

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    # the two captures are years apart: one repository for all of it
    (scripts / "forever.js").write_text(DENSE_SCRIPT.replace("maxL4Streams: 3", "maxMinutes: 1e9"))
    null_loop = PCAPS / "sv_http500_bidir-flowbits.pcap"  # DLT_NULL
    ether = PCAPS / "ndpi_mixed_http500-502-keepalive_1kxun_2.5MB.pcap"  # Ethernet
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", "run", "--pcap", str(ether), "--pcap", str(null_loop),
         "--scripts", str(scripts), "--data-dir", str(tmp_path / "data"), "--node", "n1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    root = tmp_path / "data" / "repositories"
    (export,) = sorted(root.glob("n1/kfl-pcap-s3-small-repositories/kfl_0/*.pcap.gz"))
    assert gzip.decompress(export.read_bytes())[:4] == bytes.fromhex("0a0d0d0a")  # pcapng
    want = {tuple(t) for p in (null_loop, ether) for t in oracle(p)["http500_streams"]}
    assert tshark_500_tuples(export) == want
    manifest = json.loads(export.with_name(export.name.replace(".pcap.gz", ".json")).read_text())
    assert sorted(manifest["pcap"]["linktypes"]) == [0, 1]
    assert tshark_packets(export) == manifest["pcap"]["packets"]
