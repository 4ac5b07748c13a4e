"""Local and S3 stores: create-only puts, identical re-put is success, checksums, Object Lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import stat
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from wrappers.stores import ConfigError, ConflictError, LocalStore, StoreError, open_store, sha256_file

_names = itertools.count()


def artifact(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    path = tmp_path / f"artifact{next(_names)}"
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_local_store_is_create_only_and_read_only(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    assert isinstance(store, LocalStore)
    path, sha = artifact(tmp_path, b"first")
    url = store.put("n/kfl_0/a.pcap.gz", path, sha)
    target = tmp_path / "store" / "n" / "kfl_0" / "a.pcap.gz"
    assert url == str(target) and target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert store.put("n/kfl_0/a.pcap.gz", path, sha) == url  # identical again: done
    other, other_sha = artifact(tmp_path, b"second")
    with pytest.raises(ConflictError, match="different content"):
        store.put("n/kfl_0/a.pcap.gz", other, other_sha)
    assert target.read_bytes() == b"first"
    assert store.list() == ["n/kfl_0/a.pcap.gz"] and store.list("n/kfl_1") == []
    assert store.exists("n/kfl_0/a.pcap.gz") and not store.exists("n/kfl_0/b")
    assert store.get("n/kfl_0/a.pcap.gz") == b"first"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".put-")]
    with pytest.raises(StoreError, match="invalid object key"):
        store.put("../escape", path, sha)


def test_s3_create_only_checksum_and_lock(seaweed, tmp_path: Path) -> None:
    bucket = seaweed.create_bucket("stores-locked", object_lock=True)
    store = open_store(
        f"s3://{bucket}/pre/fix",
        endpoint=seaweed.endpoint,
        region=seaweed.region,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        object_lock_mode="COMPLIANCE",
        object_lock_days=1,
    )
    path, sha = artifact(tmp_path, os.urandom(300_000))
    url = store.put("node/kfl_0/x.pcap.gz", path, sha)
    assert url == f"{seaweed.endpoint}/{bucket}/pre/fix/node/kfl_0/x.pcap.gz"
    assert store.list() == ["node/kfl_0/x.pcap.gz"]
    assert store.exists("node/kfl_0/x.pcap.gz") and not store.exists("node/kfl_0/y")
    assert hashlib.sha256(store.get("node/kfl_0/x.pcap.gz")).hexdigest() == sha == sha256_file(path)
    assert store.remote_sha256("node/kfl_0/x.pcap.gz") == sha

    client = seaweed.client()
    key = "pre/fix/node/kfl_0/x.pcap.gz"
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    remaining = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < remaining <= dt.timedelta(days=1)
    # a second put of the same key, by another store object of the same bucket: done for identical
    # bytes, a conflict for others, and the object keeps its first bytes and its only version
    again = open_store(f"s3://{bucket}/pre/fix", endpoint=seaweed.endpoint, region=seaweed.region,
                       access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key,
                       object_lock_mode="COMPLIANCE", object_lock_days=1)
    assert again.put("node/kfl_0/x.pcap.gz", path, sha) == url
    other, other_sha = artifact(tmp_path, b"other bytes")
    with pytest.raises(ConflictError, match="different content"):
        again.put("node/kfl_0/x.pcap.gz", other, other_sha)
    assert hashlib.sha256(store.get("node/kfl_0/x.pcap.gz")).hexdigest() == sha
    assert len(client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 1
    version = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert store.remote_sha256("node/kfl_0/x.pcap.gz") == sha


def test_s3_put_is_create_only_without_object_lock(seaweed, tmp_path: Path) -> None:
    """Create-only comes from the put itself (If-None-Match), not from versioning or Object Lock: on a
    plain bucket, of two stores racing to write different bytes under one key exactly one wins, the
    other is told of the conflict, and the object holds the winner's bytes."""
    bucket = seaweed.create_bucket("stores-race", object_lock=False)

    def store():
        return open_store(f"s3://{bucket}", endpoint=seaweed.endpoint, region=seaweed.region,
                          access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)

    contents = [os.urandom(200_000) for _ in range(4)]
    files = [artifact(tmp_path, c) for c in contents]
    outcomes: list[str | Exception] = [""] * len(files)
    start = threading.Barrier(len(files))

    def put(i: int) -> None:
        mine = store()
        start.wait(timeout=60)
        try:
            outcomes[i] = mine.put("k/race.pcap.gz", *files[i])
        except ConflictError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=put, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, ConflictError) for i, o in enumerate(outcomes) if i != winners[0]), outcomes
    assert store().get("k/race.pcap.gz") == contents[winners[0]]
    # and a later put of other bytes, one at a time, changes nothing either
    later, later_sha = artifact(tmp_path, b"later")
    with pytest.raises(ConflictError):
        store().put("k/race.pcap.gz", later, later_sha)
    assert store().get("k/race.pcap.gz") == contents[winners[0]]


def test_s3_errors_are_clear(seaweed, tmp_path: Path) -> None:
    plain = seaweed.create_bucket("stores-plain", object_lock=False)
    opts = dict(endpoint=seaweed.endpoint, region=seaweed.region)
    creds = dict(access_key_id=seaweed.access_key, secret_access_key=seaweed.secret_key)
    path, sha = artifact(tmp_path, b"data")
    locked = open_store(f"s3://{plain}", object_lock_mode="GOVERNANCE", object_lock_days=2, **opts, **creds)
    with pytest.raises(ConfigError, match="has no Object Lock"):
        locked.put("k", path, sha)
    missing = open_store("s3://no-such-bucket", **opts, **creds)
    with pytest.raises(ConfigError, match="does not exist"):
        missing.put("k", path, sha)
    wrong = open_store(f"s3://{plain}", access_key_id="nobody", secret_access_key="x", **opts)
    with pytest.raises(ConfigError, match="wrong credentials"):
        wrong.put("k", path, sha)
    with pytest.raises(ConfigError, match="COMPLIANCE or GOVERNANCE"):
        open_store(f"s3://{plain}", object_lock_mode="FOREVER", object_lock_days=1, **opts)
    down = open_store(f"s3://{plain}", endpoint="http://127.0.0.1:9", **creds)
    with pytest.raises(StoreError) as err:
        down.put("k", path, sha)
    assert not err.value.permanent
    assert open_store(f"s3://{plain}", **opts, **creds).put("k", path, sha).endswith(f"/{plain}/k")
