"""KflPcapS3 against a real S3 server (SeaweedFS): Object Lock, create-only, durability, SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from bench.trafficgen import write_capture
from tests.seaweed import SeaweedS3
from tests.wrappers.checks import (
    by_query,
    contiguous_totals,
    stream_tuples,
    tshark_500_tuples,
    tshark_packets,
)
from tests.wrappers.drive import SEED_QUERIES, drive, synthetic_items
from wrappers.outbox import Outbox
from wrappers.repos import load_repositories, verify
from wrappers.stores import open_store

ROOT = Path(__file__).parents[2]


def generated(tmp_path: Path, name: str, **kw) -> tuple[Path, dict]:
    pcap = tmp_path / f"{name}.pcap"
    write_capture(pcap, truth_path=tmp_path / f"{name}.json", **kw)
    return pcap, json.loads((tmp_path / f"{name}.json").read_text())


def s3_store(server: SeaweedS3, bucket: str):
    return open_store(f"s3://{bucket}", endpoint=server.endpoint, region=server.region,
                      access_key_id=server.access_key, secret_access_key=server.secret_key)


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, dict]:
    return generated(tmp_path_factory.mktemp("gen"), "s3", packets=4000, seed=21)


def test_repositories_are_locked_create_only_and_verifiable(seaweed, capture, tmp_path: Path) -> None:
    pcap, truth = capture
    bucket = seaweed.create_bucket("kfl-locked", object_lock=True)
    options = {"kflArr": SEED_QUERIES, "objectLockMode": "GOVERNANCE", "objectLockDays": 2, "s3Prefix": "ev"}
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth), env=seaweed.env(bucket))
    assert run.errors == [] and run.left_spooled == 0
    store = s3_store(seaweed, bucket)
    repos = by_query(open_store(f"s3://{bucket}/ev", endpoint=seaweed.endpoint, region=seaweed.region,
                                access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key))
    assert stream_tuples(repos[0]) == Counter(tuple(t) for t in truth["http500_streams"])
    assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
    client = seaweed.client()
    for chain in repos.values():
        contiguous_totals(chain)
        for repo in chain:
            local = tmp_path / Path(repo.data_key).name
            local.write_bytes(store.get("ev/" + repo.data_key))
            assert tshark_packets(local) == repo.manifest["pcap"]["packets"]
            if repo.manifest["query"]["index"] == 0:
                assert tshark_500_tuples(local) == set(stream_tuples([repo]))
            for key in ("ev/" + repo.data_key, "ev/" + repo.key):
                head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
                assert head["ObjectLockMode"] == "GOVERNANCE"
                left = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
                assert dt.timedelta(days=1, hours=23) < left <= dt.timedelta(days=2)
                assert head["ChecksumSHA256"]
    victim = "ev/" + repos[1][0].data_key
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=bucket, Key=victim, Body=b"replacement", IfNoneMatch="*")
    version = client.list_object_versions(Bucket=bucket, Prefix=victim)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=victim, VersionId=version)
    env = {**os.environ, **seaweed.env()}
    cli = [sys.executable, "-m", "runtime", "repo"]
    ok = subprocess.run([*cli, "verify", f"s3://{bucket}/ev", "--s3-endpoint", seaweed.endpoint],
                        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert ok.returncode == 0 and "OK: " in ok.stdout, ok.stdout + ok.stderr
    listing = subprocess.run([*cli, "list", f"s3://{bucket}/ev"], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=120)
    assert listing.returncode == 0 and "node-1/kflpcaps3-test/kfl_1/" in listing.stdout


def test_bucket_without_object_lock_is_a_clear_error(seaweed, capture, tmp_path: Path) -> None:
    pcap, truth = capture
    bucket = seaweed.create_bucket("kfl-unlocked", object_lock=False)
    options = {"kflArr": ["dns"], "objectLockMode": "COMPLIANCE", "objectLockDays": 1}
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth), env=seaweed.env(bucket),
                close_timeout=30)
    # a configuration error is permanent: the repository is set aside with the reason, not retried
    assert run.left_spooled == 0
    assert any("has no Object Lock" in line and bucket in line for line in run.lines)
    (failed,) = (tmp_path / "data" / "spool" / "failed").iterdir()
    assert "has no Object Lock" in (failed / "error.txt").read_text()
    assert {p.suffix for p in failed.iterdir()} == {".gz", ".json", ".txt"}
    assert s3_store(seaweed, bucket).list() == []


def test_s3_down_during_the_run_then_up(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    with SeaweedS3(tmp_path / "weed") as server:
        bucket = server.create_bucket("kfl-durable", object_lock=True)
        server.stop()
        options = {"kflArr": SEED_QUERIES, "maxL4Streams": 20}
        run = drive(pcap, tmp_path / "data", options, synthetic_items(truth), env=server.env(bucket),
                    close_timeout=2)
        written = run.wrapper.counters["repositories"]
        assert written > 2 and run.left_spooled == written
        assert any("retrying with backoff" in line for line in run.lines)
        assert any("left in" in line for line in run.lines)
        server.start()
        lines: list[str] = []
        outbox = Outbox(tmp_path / "data", log=lines.append)
        assert outbox.wait_idle(60), lines
        assert outbox.close(1) == 0
        store = s3_store(server, bucket)
        repos = by_query(store)
        assert sum(len(c) for c in repos.values()) == written
        assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
        assert verify(store).problems == []


CHILD = """
import sys
from pathlib import Path
from tests.wrappers.drive import SEED_QUERIES, drive, synthetic_items
import json
truth = json.loads(Path(sys.argv[2]).read_text())
env = json.loads(sys.argv[4])
options = {"kflArr": SEED_QUERIES, "maxL4Streams": 3}
drive(Path(sys.argv[1]), Path(sys.argv[3]), options, synthetic_items(truth), env=env, echo=True)
"""


def test_sigkill_in_the_middle_of_flushing_loses_and_doubles_nothing(seaweed, tmp_path: Path) -> None:
    pcap, truth = generated(tmp_path, "kill", packets=30000, seed=8)
    bucket = seaweed.create_bucket("kfl-kill", object_lock=True)
    data = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(pcap), str(tmp_path / "kill.json"), str(data),
         json.dumps(seaweed.env(bucket))],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    flushes = 0
    deadline = time.monotonic() + 120
    assert child.stdout is not None
    for line in child.stdout:
        flushes += "New PCAP" in line
        if flushes >= 40 or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert flushes >= 40, "the child did not get far enough to be killed while flushing"
    spool = data / "spool"
    committed = [json.loads((p / "bundle.json").read_text()) for p in spool.iterdir() if p.name[0].isdigit()]
    # restart: a new process drains the spool and continues each chain with a new capture
    pcap2, truth2 = generated(tmp_path, "after", packets=2000, seed=9)
    run = drive(pcap2, data, {"kflArr": SEED_QUERIES, "maxL4Streams": 3}, synthetic_items(truth2),
                env=seaweed.env(bucket))
    assert run.errors == [] and run.left_spooled == 0
    assert not [p for p in spool.iterdir() if p.name.startswith((".tmp-", "0", "1"))]
    store = s3_store(seaweed, bucket)
    keys = set(store.list())
    for bundle in committed:
        assert {f["key"] for f in bundle["files"]} <= keys
    manifests = load_repositories(store)
    assert {r.data_key for r in manifests} | {r.key for r in manifests} == keys  # no orphan artifact
    report = verify(store)
    assert report.problems == [] and report.chains == 2
    for chain in by_query(store).values():
        contiguous_totals(chain)  # every stream's packets once, in order, across the kill and restart


def test_vendor_s3_put_is_durable_and_create_only(seaweed, tmp_path: Path) -> None:
    from capture import StreamStore
    from runtime.helpers.files import DataDir, HelperError
    from runtime.helpers.vendor import s3_put
    from wrappers import ScriptContext

    bucket = seaweed.create_bucket("vendor-put", object_lock=False)
    data = tmp_path / "data"
    (data / "reports").mkdir(parents=True)
    (data / "reports" / "summary.json").write_text('{"ok": true}')
    lines: list[str] = []
    outbox = Outbox(data, log=lines.append)
    ctx = ScriptContext(
        title="t", source_sha256="0" * 64, env={**seaweed.env(), "AWS_REGION": "eu-west-1"},
        node={"name": "n1", "ip": "10.0.0.9"},
        data_dir=data, store=StreamStore(), names=dict, clock=time.time_ns, console=lines.append,
        error=lines.append, outbox=outbox,
    )
    folder = DataDir(data)
    url = s3_put(ctx, folder, bucket, "reports/summary.json")
    assert url.startswith(f"{seaweed.endpoint}/{bucket}/n1_10.0.0.9_") and url.endswith("/summary.json")
    (data / "reports" / "summary.json").write_text("changed after the call")  # the spool has its own copy
    assert outbox.wait_idle(30), lines
    key = url.removeprefix(f"{seaweed.endpoint}/{bucket}/")
    assert s3_store(seaweed, bucket).get(key) == b'{"ok": true}'
    with pytest.raises(HelperError, match="escapes the data folder"):
        s3_put(ctx, folder, bucket, "../../etc/passwd")
    with pytest.raises(HelperError, match="no file"):
        s3_put(ctx, folder, bucket, "reports/missing.json")
    (data / "link.json").symlink_to(tmp_path / "outside.json")
    (tmp_path / "outside.json").write_text("secret")
    with pytest.raises(HelperError, match="symbolic link"):  # a planted link is never read through
        s3_put(ctx, folder, bucket, "link.json")
    outbox.close(1)
