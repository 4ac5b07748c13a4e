"""The outbox: spool first, upload in the background, keep on failure, drain at the next start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wrappers.outbox import Outbox, SpoolError
from wrappers.stores import open_store, store_config


def test_submit_uploads_and_empties_the_spool(tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_text("evidence")
    lines: list[str] = []
    outbox = Outbox(tmp_path / "data", log=lines.append)
    cfg = store_config(tmp_path / "store")
    outbox.submit(cfg, "node/report.txt", src)
    assert outbox.wait_idle(10)
    assert (tmp_path / "store" / "node" / "report.txt").read_text() == "evidence"
    assert [p.name for p in (tmp_path / "data" / "spool").iterdir() if p.name != ".lock"] == ["failed"]
    assert outbox.close(1) == 0 and lines == []


def test_unreachable_store_keeps_the_bundle_and_the_next_start_delivers(seaweed, tmp_path: Path) -> None:
    bucket = seaweed.create_bucket("outbox-retry", object_lock=False)
    down = store_config(f"s3://{bucket}", endpoint="http://127.0.0.1:9", region="us-east-1",
                        access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)
    lines: list[str] = []
    outbox = Outbox(tmp_path / "data", log=lines.append)
    with outbox.stage() as bundle:
        bundle.path("a.pcap.gz").write_bytes(b"pcap")
        bundle.add("n/kfl_0/a.pcap.gz", "a.pcap.gz")
        bundle.path("a.json").write_bytes(b"{}")
        bundle.add("n/kfl_0/a.json", "a.json")
        outbox.commit(bundle, down, meta={"chain": {"seq": 3}})
    assert not outbox.wait_idle(1.5)
    deadline = time.monotonic() + 30
    while outbox.stats()["retries"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = outbox.stats()
    assert stats["pending"] == 1 and stats["spool_bytes"] == 6 and stats["retries"] >= 1
    assert {f["key"] for f in stats["failed"]} == {"n/kfl_0/a.pcap.gz", "n/kfl_0/a.json"}
    assert outbox.close(0.1) == 1
    assert list((tmp_path / "data" / "spool" / "failed").iterdir()) == []  # transient: never set aside
    assert any("retrying with backoff" in line for line in lines)
    assert any("left in" in line and "next start" in line for line in lines)
    # the next process finds the bundle; point its config at the live server and it arrives
    (spooled,) = [p for p in (tmp_path / "data" / "spool").iterdir() if p.name[0].isdigit()]
    doc = json.loads((spooled / "bundle.json").read_text())
    assert doc["meta"] == {"chain": {"seq": 3}} and [f["key"] for f in doc["files"]] == [
        "n/kfl_0/a.pcap.gz", "n/kfl_0/a.json"]
    doc["store"]["endpoint"] = seaweed.endpoint
    (spooled / "bundle.json").write_text(json.dumps(doc))
    again = Outbox(tmp_path / "data", log=lines.append)
    assert again.spooled()[0]["meta"]["chain"]["seq"] == 3
    assert again.wait_idle(30)
    store = open_store(f"s3://{bucket}", endpoint=seaweed.endpoint, access_key_id=seaweed.access_key,
                       secret_access_key=seaweed.secret_key, region="us-east-1")
    assert store.list() == ["n/kfl_0/a.json", "n/kfl_0/a.pcap.gz"]
    assert store.get("n/kfl_0/a.pcap.gz") == b"pcap"
    assert again.stats() == {"pending": 0, "spool_bytes": 0, "done": 1, "retries": 0, "failed": []}
    assert again.close(1) == 0


def test_conflicting_key_moves_the_bundle_aside(tmp_path: Path) -> None:
    cfg = store_config(tmp_path / "store")
    (tmp_path / "store" / "k").parent.mkdir(parents=True)
    (tmp_path / "store" / "k").write_text("original")
    src = tmp_path / "new"
    src.write_text("different")
    lines: list[str] = []
    outbox = Outbox(tmp_path / "data", log=lines.append)
    outbox.submit(cfg, "k", src)
    assert outbox.wait_idle(10)
    assert (tmp_path / "store" / "k").read_text() == "original"
    assert len(list((tmp_path / "data" / "spool" / "failed").iterdir())) == 1
    assert any("different content" in line for line in lines)
    assert outbox.stats()["failed"][0]["key"] == "k" and outbox.stats()["done"] == 0
    outbox.close(1)


def test_permanent_store_errors_set_the_bundle_aside_with_the_reason(seaweed, tmp_path: Path) -> None:
    plain = seaweed.create_bucket("outbox-permanent", object_lock=False)
    opts = dict(endpoint=seaweed.endpoint, region=seaweed.region)
    creds = dict(access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)
    cases = {
        "no-bucket": (store_config("s3://no-such-bucket", **opts, **creds), "does not exist"),
        "refused": (store_config(f"s3://{plain}", access_key_id="nobody", secret_access_key="x", **opts),
                    "wrong credentials"),
        "no-lock": (store_config(f"s3://{plain}", object_lock_mode="COMPLIANCE", object_lock_days=1,
                                 **opts, **creds), "has no Object Lock"),
        "bad-prefix": (store_config(f"s3://{plain}/../x", **opts, **creds), "invalid prefix"),
        "bad-key": (store_config(f"s3://{plain}", **opts, **creds), "invalid object key"),
        "unknown-kind": ({"kind": "ftp", "bucket": plain}, "unknown store kind"),
    }
    src = tmp_path / "artifact"
    src.write_bytes(b"evidence")
    lines: list[str] = []
    outbox = Outbox(tmp_path / "data", log=lines.append)
    ids = {name: outbox.submit(cfg, "../up" if name == "bad-key" else f"{name}/a", src)
           for name, (cfg, _why) in cases.items()}
    assert outbox.wait_idle(60), outbox.stats()
    stats = outbox.stats()
    assert (stats["pending"], stats["done"], stats["retries"]) == (0, 0, 0)
    assert len(stats["failed"]) == len(cases)
    failed = tmp_path / "data" / "spool" / "failed"
    for name, (_cfg, why) in cases.items():
        bundle = failed / ids[name]
        assert (bundle / "artifact").read_bytes() == b"evidence"
        assert why in (bundle / "error.txt").read_text()
        assert any(why in f["error"] for f in stats["failed"])
    assert sum("not retried" in line for line in lines) == len(cases)
    assert seaweed.client().list_objects_v2(Bucket=plain).get("KeyCount", 0) == 0
    outbox.close(1)
    # a later process does not pick set-aside bundles up again
    again = Outbox(tmp_path / "data", log=lines.append)
    assert again.pending() == 0 and len(list(failed.iterdir())) == len(cases)
    again.close(0)


def test_one_process_per_spool(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    code = textwrap.dedent(f"""
        from wrappers.outbox import Outbox, SpoolError
        try:
            Outbox({str(tmp_path)!r})
        except SpoolError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "in use by another kflpcap process" in out.stdout
    outbox.close(0)


def test_staging_leftovers_are_discarded(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    with pytest.raises(RuntimeError), outbox.stage() as bundle:
        bundle.path("x").write_bytes(b"half")
        raise RuntimeError("writer died")
    assert not [p for p in (tmp_path / "spool").iterdir() if p.name.startswith(".tmp-")]
    outbox.close(0)
    leftover = tmp_path / "spool" / ".tmp-0001"
    leftover.mkdir()
    (leftover / "x").write_bytes(b"partial")
    again = Outbox(tmp_path)
    assert not leftover.exists() and again.pending() == 0
    again.close(0)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_full_spool_disk_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(data)], check=True)
    try:
        outbox = Outbox(data)
        big = tmp_path / "big"
        big.write_bytes(os.urandom(1 << 20))
        with pytest.raises(SpoolError, match="spool disk full"):
            outbox.submit(store_config(tmp_path / "store"), "big", big)
        assert outbox.pending() == 0
        assert not [p for p in (data / "spool").iterdir() if p.name.startswith(".tmp-")]
        outbox.close(0)
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True)
