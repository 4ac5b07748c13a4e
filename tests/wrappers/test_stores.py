"""Local and S3 stores: create-only puts, identical re-put is success, checksums, Object Lock; the
registry by kind and which errors are permanent."""

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

from wrappers.stores import (
    ConfigError,
    ConflictError,
    LocalStore,
    S3Store,
    StoreError,
    base,
    describe,
    open_store,
    register,
    sha256_file,
    store_config,
    store_from_config,
    store_ident,
    store_location,
)

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


def test_local_store_follows_no_planted_link(tmp_path: Path) -> None:
    """A `repositories` link (or a link to a folder below it) planted in the data folder does not
    redirect repositories: the put is refused as permanent, nothing is written outside."""
    src = tmp_path / "a.pcap"
    src.write_bytes(b"x" * 100)
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "repositories").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link") as refused:
        open_store(data / "repositories").put("node/kfl_0/a.pcap", src, sha256_file(src))
    assert refused.value.permanent
    (data / "repositories").unlink()
    (data / "repositories" / "node").mkdir(parents=True)
    (data / "repositories" / "node" / "kfl_0").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link"):
        open_store(data / "repositories").put("node/kfl_0/a.pcap", src, sha256_file(src))
    assert list(outside.iterdir()) == []


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


def test_the_registry_picks_the_kind_and_names_unknown_ones(tmp_path: Path) -> None:
    local = store_config(tmp_path / "repos")
    s3 = store_config("s3://bucket/a/b", endpoint="http://127.0.0.1:9", region="")
    assert local == {"kind": "local", "root": str(tmp_path / "repos")}
    assert s3 == {"kind": "s3", "bucket": "bucket", "prefix": "a/b", "endpoint": "http://127.0.0.1:9"}
    assert isinstance(store_from_config(s3), S3Store) and isinstance(store_from_config(local), LocalStore)
    assert (describe(local), describe(s3)) == (str(tmp_path / "repos"), "s3://bucket at http://127.0.0.1:9")
    assert store_location(local, "n/k") == f"{tmp_path}/repos/n/k"
    assert store_location(s3, "n/k") == "s3://bucket/a/b/n/k"
    assert store_ident(s3) == "s3://bucket/a/b@http://127.0.0.1:9" and store_ident(local).startswith("file://")
    known = r"\(known: azure, gcs, local, s3\)"
    with pytest.raises(ConfigError, match=r"unknown store kind 'ftp' " + known) as err:
        store_from_config({"kind": "ftp", "bucket": "b"})
    assert err.value.permanent
    with pytest.raises(ConfigError, match="no store for gs:// URLs"):
        open_store("gs://bucket/prefix")


def test_a_new_kind_is_one_registered_class(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(base, "_KINDS", dict(base._KINDS))
    monkeypatch.setattr(base, "_SCHEMES", dict(base._SCHEMES))

    @register
    class MirrorStore(LocalStore):
        kind = "mirror"
        scheme = "mirror"

        @classmethod
        def config_for(cls, url_or_dir: str, **_opts: object) -> dict:
            return {"kind": cls.kind, "root": str(tmp_path / url_or_dir.removeprefix("mirror://"))}

    store = open_store("mirror://m")
    assert isinstance(store, MirrorStore) and store.root == tmp_path / "m"
    path, sha = artifact(tmp_path, b"via the registry")
    store.put("k", path, sha)
    assert open_store(tmp_path / "m").get("k") == b"via the registry"


def test_permanent_store_errors(seaweed, tmp_path: Path) -> None:
    assert not StoreError("network").permanent and StoreError("bad", permanent=True).permanent
    assert ConflictError("x").permanent and ConfigError("x").permanent
    assert not ConfigError("x", permanent=False).permanent
    path, sha = artifact(tmp_path, b"data")
    for key in ("../x", "a/../../x", "", "/./"):
        with pytest.raises(StoreError, match="invalid object key") as err:
            open_store(tmp_path / "store").put(key, path, sha)
        assert err.value.permanent
    with pytest.raises(ConfigError, match="invalid prefix"):
        open_store("s3://bucket/../x")
    opts = dict(endpoint=seaweed.endpoint, region=seaweed.region)
    plain = seaweed.create_bucket("stores-permanent", object_lock=False)
    denied = open_store(f"s3://{plain}", access_key_id="nobody", secret_access_key="x", **opts)
    with pytest.raises(StoreError) as err:
        denied.put("k", path, sha)
    assert err.value.permanent
    down = open_store(f"s3://{plain}", endpoint="http://127.0.0.1:9", access_key_id=seaweed.access_key,
                      secret_access_key=seaweed.secret_key)
    with pytest.raises(StoreError) as err:
        down.list()
    assert not err.value.permanent


def test_a_request_botocore_refuses_to_send_is_permanent(tmp_path: Path) -> None:
    """An invalid bucket name (vendor.s3.put takes any): retrying cannot cure it."""
    path, sha = artifact(tmp_path, b"x")
    store = S3Store("a/b", endpoint="http://127.0.0.1:9", region="us-east-1", access_key_id="k",
                    secret_access_key="s")
    with pytest.raises(StoreError) as caught:
        store.put("n/x", path, sha)
    assert caught.value.permanent and "Invalid bucket name" in str(caught.value)
