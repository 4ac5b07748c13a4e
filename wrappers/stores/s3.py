"""The S3 store (AWS, SeaweedFS, MinIO): create-only puts, SHA-256 checksums, Object Lock.

Also where `vendor.s3.put` uploads go (`upload_config`, `object_url`): the outbox spools the file
and uploads it here like any other artifact.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from wrappers.stores.base import (
    BucketKeys,
    ConfigError,
    ConflictError,
    ObjectInfo,
    ObjectStatus,
    StoreError,
    clean_key,
    is_vendor_upload,
    register,
)

LIST_WORKERS = 8  # folders listed at once by `scan`

_S3_PERMANENT = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AuthorizationHeaderMalformed",
}


@register
class S3Store(BucketKeys):
    """An S3 bucket (AWS, SeaweedFS, MinIO): `If-None-Match: *` puts, SHA-256 checksums, Object Lock.

    Config: `{"kind": "s3", "bucket", "prefix", "endpoint", "region", "access_key_id",
    "secret_access_key", "object_lock_mode", "object_lock_days"}` (all but bucket optional)."""

    kind = "s3"
    location_scheme = "s3"
    scheme = "s3"

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
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ConfigError(f"S3: invalid prefix {prefix!r}")
        self.prefix = "/".join(parts)
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
                max_pool_connections=2 * LIST_WORKERS,
                s3={"addressing_style": "path"} if endpoint else None,
            ),
            **creds,
        )
        self._lock_checked = False
        self._mutex = threading.Lock()
        self._config = {"bucket": bucket, "prefix": self.prefix, "endpoint": endpoint, "region": region}
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    # ---- the registry's questions ---------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> S3Store:
        return cls(
            bucket=config["bucket"],
            prefix=config.get("prefix", ""),
            endpoint=config.get("endpoint", ""),
            region=config.get("region", ""),
            access_key_id=config.get("access_key_id", ""),
            secret_access_key=config.get("secret_access_key", ""),
            object_lock_mode=config.get("object_lock_mode", ""),
            object_lock_days=config.get("object_lock_days", 0),
        )

    @classmethod
    def describe(cls, config: dict[str, Any]) -> str:
        where = f"s3://{config['bucket']}"
        if config.get("endpoint"):
            where += f" at {config['endpoint']}"
        if config.get("object_lock_mode"):
            where += f" (Object Lock {config['object_lock_mode']}, {config['object_lock_days']} days)"
        return where

    @classmethod
    def ident(cls, config: dict[str, Any]) -> str:
        return f"s3://{config['bucket']}/{config.get('prefix', '')}@{config.get('endpoint', '')}"

    # ---- the Store protocol -----------------------------------------------------------------------------

    def object_url(self, key: str) -> str:
        return object_url(self._config, key)

    def _error(self, exc: Exception, what: str) -> StoreError:
        from botocore.exceptions import ClientError, ParamValidationError

        if isinstance(exc, ParamValidationError):  # a request botocore refuses to send: never cured
            return ConfigError(f"{self.url}: {what}: {exc}")
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

    @property
    def identity(self) -> str:
        return self.ident(self._config)

    def check_readable(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else ""
            if code in ("404", "NoSuchBucket"):
                raise ConfigError(f"{self.url}: bucket {self.bucket!r} does not exist") from exc
            raise self._error(exc, "head bucket") from exc

    def _level(self, prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The objects directly under `prefix` and its sub-folders (`/`-delimited), every page."""
        objects: list[dict[str, Any]] = []
        folders: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                objects.extend(page.get("Contents", []))
                folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except Exception as exc:
            raise self._error(exc, f"list {prefix or '/'}") from exc
        return objects, folders

    def scan(self, prefix: str = "", on_listed: Callable[[int], None] | None = None) -> Iterator[ObjectInfo]:
        base = f"{self.prefix}/" if self.prefix else ""
        with ThreadPoolExecutor(max_workers=LIST_WORKERS, thread_name_prefix="kflpcap-s3-list") as pool:
            pending: set[Future] = {pool.submit(self._level, base + prefix)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    objects, folders = fut.result()
                    pending |= {pool.submit(self._level, f) for f in folders}
                    if on_listed and objects:
                        on_listed(len(objects))
                    for obj in objects:
                        yield ObjectInfo(obj["Key"][len(base) :], obj.get("Size", 0), obj.get("ETag", ""))

    def status(self, key: str) -> ObjectStatus:
        full = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except Exception as exc:
            raise self._error(exc, f"head {key}") from exc
        recorded = head.get("Metadata", {}).get("sha256")
        checksum = head.get("ChecksumSHA256")
        if checksum and "-" not in checksum:
            recorded = base64.b64decode(checksum).hex()
        until = head.get("ObjectLockRetainUntilDate")
        status = ObjectStatus(
            key,
            head.get("ContentLength", 0),
            recorded_sha256=recorded,
            lock_mode=head.get("ObjectLockMode", "") or "",
            retain_until=until.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if until else "",
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )
        try:
            listed = self.client.list_object_versions(Bucket=self.bucket, Prefix=full)
            status.versions = sum(
                v["Key"] == full for kind in ("Versions", "DeleteMarkers") for v in listed.get(kind, [])
            )
        except Exception:  # a store without the versions API: unknown, not a problem
            status.versions = None
        return status


def object_url(config: dict[str, Any], key: str) -> str:
    """The URL of `key` in the S3 store described by `config` (path style with an endpoint)."""
    bucket = config["bucket"]
    prefix = config.get("prefix", "").strip("/")
    full = f"{prefix}/{clean_key(key)}" if prefix else clean_key(key)
    if config.get("endpoint"):
        return f"{config['endpoint'].rstrip('/')}/{bucket}/{full}"
    region = config.get("region")
    host = f"{bucket}.s3.{region}.amazonaws.com" if region else f"{bucket}.s3.amazonaws.com"
    return f"https://{host}/{full}"


def upload_config(
    bucket: str, env: Callable[..., str], region: str = "", key_id: str = "", secret: str = ""
) -> dict[str, Any]:
    """The store config of a script's upload to `bucket` (vendor.s3.put).

    `env(*names)` looks names up in the script's env, then the process's: the endpoint comes from
    S3_ENDPOINT / AWS_ENDPOINT_URL, the region (unless given) from AWS_REGION / AWS_DEFAULT_REGION.
    Empty keys leave the credentials to boto3's default chain."""
    if not bucket:
        raise ConfigError("no bucket given")
    return S3Store.config_for(
        f"s3://{bucket}",
        endpoint=env("S3_ENDPOINT", "AWS_ENDPOINT_URL"),
        region=region or env("AWS_REGION", "AWS_DEFAULT_REGION"),
        access_key_id=key_id,
        secret_access_key=secret,
    )


def delete_uploads(config: dict[str, Any], node_prefix: str) -> list[str]:
    """Delete a node's `vendor.s3.put` uploads (`vendor.s3.clear`); returns the deleted keys.

    Only keys of the exact form `<node_prefix>_<run id digits>/<file name>` are touched: two levels,
    which no kflPcapS3 repository key has (`[prefix/]<node>/kfl_<i>/…`, three or more), and never a
    key of another node whose name merely starts alike. Deletes carry no version id, so in a
    versioned or Object Lock bucket they only add delete markers: locked versions stay retained."""
    store = S3Store.from_config(config)
    keys = [k for k in store.list(node_prefix + "_") if is_vendor_upload(k, node_prefix)]
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        try:
            objects = [{"Key": store._key(k)} for k in chunk]
            delete = {"Objects": objects, "Quiet": True}
            answer = store.client.delete_objects(Bucket=store.bucket, Delete=delete)
        except Exception as exc:
            raise store._error(exc, "delete") from exc
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise StoreError(f"S3 delete {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}")
    return keys


def _hint(code: str, bucket: str) -> str:
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthorizationHeaderMalformed"):
        return "wrong credentials"
    if code == "AccessDenied":
        return "access denied (credentials or bucket policy)"
    return "invalid bucket name"
