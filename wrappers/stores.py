"""Object stores behind one small interface: a local folder and S3 (create-only, checksummed, locked).

Both stores never overwrite: a put of a key that already holds the same bytes (same SHA-256) counts
as done, a put of a key that holds other bytes raises `ConflictError`. A store is described by a
plain, JSON-serialisable config dict (`{"kind": "local", "root": ...}` or `{"kind": "s3", "bucket":
..., "prefix": ..., ...}`) so the spool can record where each artifact goes and resume after a restart.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

_CHUNK = 1 << 20


class StoreError(Exception):
    """The store refused or could not take an artifact; `permanent` ones need a person to act."""

    permanent = False


class ConflictError(StoreError):
    """The key already holds different bytes: the store is never overwritten."""

    permanent = True


class ConfigError(StoreError):
    """The store is not usable as configured (no bucket, no Object Lock, bad credentials, …)."""

    permanent = True


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Store(Protocol):
    """What the spool, the wrapper and `kflpcap repo` need from a store. Keys use `/`."""

    url: str

    def put(self, key: str, path: Path, sha256: str) -> str:
        """Store the file under `key` (create-only); returns the object's URL."""

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def exists(self, key: str) -> bool: ...


def _clean_key(key: str) -> str:
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise StoreError(f"invalid object key {key!r}")
    return "/".join(parts)


class LocalStore:
    """A folder with the same key layout as S3; files are written atomically and left read-only."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def put(self, key: str, path: Path, sha256: str) -> str:
        target = self._path(key)
        if target.exists():
            return self._already(target, key, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)  # create-only: fails if the key appeared meanwhile
            except FileExistsError:
                return self._already(target, key, sha256)
        finally:
            os.unlink(tmp)
        _fsync_dir(target.parent)
        return str(target)

    def _already(self, target: Path, key: str, sha256: str) -> str:
        if sha256_file(target) != sha256:
            raise ConflictError(f"{self.url}: {key} already exists with different content; not overwritten")
        return str(target)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.url}: no object {key}") from None

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".put-"):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_S3_PERMANENT = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AuthorizationHeaderMalformed",
}


class S3Store:
    """An S3 bucket (AWS, SeaweedFS, MinIO): `If-None-Match: *` puts, SHA-256 checksums, Object Lock."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        object_lock_mode: str = "",
        object_lock_days: float = 0,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise ConfigError("S3: no bucket given")
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)
        self.endpoint = endpoint
        self.lock_mode = object_lock_mode.upper()
        self.lock_days = float(object_lock_days or 0)
        if self.lock_mode and self.lock_mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ConfigError(f"objectLockMode must be COMPLIANCE or GOVERNANCE, not {object_lock_mode!r}")
        if self.lock_mode and self.lock_days <= 0:
            raise ConfigError("objectLockMode needs objectLockDays > 0")
        creds: dict[str, Any] = {}
        if access_key_id and secret_access_key:
            creds = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
        session = boto3.session.Session()
        self.client = session.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"} if endpoint else None,
            ),
            **creds,
        )
        self._lock_checked = False
        self._mutex = threading.Lock()
        self._config = {"bucket": bucket, "prefix": self.prefix, "endpoint": endpoint, "region": region}
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, key: str) -> str:
        key = _clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def object_url(self, key: str) -> str:
        return s3_object_url(self._config, key)

    def _error(self, exc: Exception, what: str) -> StoreError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            err: StoreError = StoreError(f"{self.url}: {what}: {code}: {exc}")
            if code in _S3_PERMANENT:
                err = ConfigError(f"{self.url}: {what}: {code} ({_hint(code, self.bucket)})")
            return err
        return StoreError(f"{self.url}: {what}: {type(exc).__name__}: {exc}")

    def check_object_lock(self) -> None:
        """Raise ConfigError when a lock is asked for and the bucket has no Object Lock."""
        from botocore.exceptions import ClientError

        with self._mutex:
            if self._lock_checked or not self.lock_mode:
                return
            try:
                cfg = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = cfg.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code != "ObjectLockConfigurationNotFoundError":
                    raise self._error(exc, "object lock configuration") from exc
                enabled = False
            except Exception as exc:
                raise self._error(exc, "object lock configuration") from exc
            if not enabled:
                raise ConfigError(
                    f"{self.url}: bucket {self.bucket!r} has no Object Lock, but objectLockMode "
                    f"{self.lock_mode} was asked for; create the bucket with Object Lock enabled "
                    "or drop objectLockMode"
                )
            self._lock_checked = True

    def put(self, key: str, path: Path, sha256: str) -> str:
        from botocore.exceptions import ClientError

        self.check_object_lock()
        full = self._key(key)
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "IfNoneMatch": "*",
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode(),
            "Metadata": {"sha256": sha256},
        }
        if self.lock_mode:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.lock_days)
            args["ObjectLockMode"] = self.lock_mode
            args["ObjectLockRetainUntilDate"] = until
        try:
            with open(path, "rb") as body:
                self.client.put_object(Body=body, **args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                existing = self.remote_sha256(key)
                if existing != sha256:
                    raise ConflictError(
                        f"{self.url}: {key} already exists with different content "
                        f"(sha256 {existing or 'unknown'}); not overwritten"
                    ) from exc
                return self.object_url(key)
            raise self._error(exc, f"put {key}") from exc
        except Exception as exc:
            raise self._error(exc, f"put {key}") from exc
        return self.object_url(key)

    def remote_sha256(self, key: str) -> str:
        """The SHA-256 (hex) the store holds for `key`: its checksum, its metadata, else re-hashed."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except Exception as exc:
            raise self._error(exc, f"head {key}") from exc
        if head.get("ChecksumSHA256") and "-" not in head["ChecksumSHA256"]:
            return base64.b64decode(head["ChecksumSHA256"]).hex()
        if head.get("Metadata", {}).get("sha256"):
            return head["Metadata"]["sha256"]
        return hashlib.sha256(self.get(key)).hexdigest()

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as exc:
            raise self._error(exc, f"get {key}") from exc

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys.extend(obj["Key"][len(base) :] for obj in page.get("Contents", []))
        except Exception as exc:
            raise self._error(exc, "list") from exc
        return sorted(keys)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise self._error(exc, f"head {key}") from exc
        return True


def s3_object_url(config: dict[str, Any], key: str) -> str:
    """The URL of `key` in the S3 store described by `config` (path style with an endpoint)."""
    bucket = config["bucket"]
    prefix = config.get("prefix", "").strip("/")
    full = f"{prefix}/{_clean_key(key)}" if prefix else _clean_key(key)
    if config.get("endpoint"):
        return f"{config['endpoint'].rstrip('/')}/{bucket}/{full}"
    region = config.get("region")
    host = f"{bucket}.s3.{region}.amazonaws.com" if region else f"{bucket}.s3.amazonaws.com"
    return f"https://{host}/{full}"


def _hint(code: str, bucket: str) -> str:
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthorizationHeaderMalformed"):
        return "wrong credentials"
    if code == "AccessDenied":
        return "access denied (credentials or bucket policy)"
    return "invalid bucket name"


def store_from_config(config: dict[str, Any]) -> LocalStore | S3Store:
    """Build a store from the JSON-serialisable config the spool records."""
    kind = config.get("kind")
    if kind == "local":
        return LocalStore(config["root"])
    if kind == "s3":
        return S3Store(
            bucket=config["bucket"],
            prefix=config.get("prefix", ""),
            endpoint=config.get("endpoint", ""),
            region=config.get("region", ""),
            access_key_id=config.get("access_key_id", ""),
            secret_access_key=config.get("secret_access_key", ""),
            object_lock_mode=config.get("object_lock_mode", ""),
            object_lock_days=config.get("object_lock_days", 0),
        )
    raise ConfigError(f"unknown store kind {kind!r}")


def store_config(url_or_dir: str | Path, **s3opts: Any) -> dict[str, Any]:
    """Config dict for `s3://bucket/prefix` (with `endpoint=`, `region=`, keys, lock) or a folder."""
    text = str(url_or_dir)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        cfg = {"kind": "s3", "bucket": parsed.netloc, "prefix": parsed.path.strip("/")}
        cfg.update({k: v for k, v in s3opts.items() if v not in (None, "")})
        return cfg
    return {"kind": "local", "root": str(Path(text).absolute())}


def open_store(url_or_dir: str | Path, **s3opts: Any) -> LocalStore | S3Store:
    """`open_store("s3://bucket/prefix", endpoint=..., region=...)` or `open_store("/some/folder")`."""
    return store_from_config(store_config(url_or_dir, **s3opts))
