"""The Google Cloud Storage store (`vendor.gcs.put` uploads), with google-cloud-storage.

Create-only as every store: uploads carry `ifGenerationMatch=0`; a key that exists already is
done when its `sha256` metadata matches, a conflict otherwise. Credentials are a service-account
key (the parsed JSON), or Google's default credentials when none is given. `endpoint` overrides
the API address (an emulator or a test server; `STORAGE_EMULATOR_HOST` works as well).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wrappers.stores.base import (
    BucketKeys,
    ConfigError,
    ConflictError,
    StoreError,
    is_vendor_upload,
    register,
)

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
_PERMANENT = (400, 401, 403, 404)
_URL_SAFE = "/!*'()"  # what JavaScript's encodeURIComponent leaves as is, besides "/" (the prelude's URL)


@register
class GcsStore(BucketKeys):
    """A GCS bucket. Config: `{"kind": "gcs", "bucket", "prefix", "endpoint", "credentials"}`."""

    kind = "gcs"
    location_scheme = "gs"
    scheme = None  # only vendor helpers upload here: no repositories (no Object Lock check)

    def __init__(self, bucket: str, prefix: str = "", endpoint: str = "",
                 credentials: dict[str, Any] | None = None) -> None:
        from google.cloud import storage

        if not bucket:
            raise ConfigError("GCS: no bucket given")
        self.bucket_name = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)
        self.url = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        options = {"api_endpoint": endpoint} if endpoint else None
        try:
            if credentials:
                from google.oauth2 import service_account

                creds = service_account.Credentials.from_service_account_info(credentials, scopes=[SCOPE])
                self.client = storage.Client(project=credentials.get("project_id"), credentials=creds,
                                             client_options=options)
            else:
                self.client = storage.Client(client_options=options)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"GCS: unusable credentials: {exc}") from exc
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and the like
            raise ConfigError(f"GCS: {exc}") from exc
        self.bucket = self.client.bucket(bucket)

    # ---- the registry's questions ---------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GcsStore:
        return cls(config["bucket"], config.get("prefix", ""), config.get("endpoint", ""),
                   config.get("credentials") or None)

    @classmethod
    def describe(cls, config: dict[str, Any]) -> str:
        where = f"gs://{config['bucket']}"
        return where + (f" at {config['endpoint']}" if config.get("endpoint") else "")

    @classmethod
    def ident(cls, config: dict[str, Any]) -> str:
        return f"gs://{config['bucket']}/{config.get('prefix', '')}@{config.get('endpoint', '')}"

    # ---- the Store protocol -----------------------------------------------------------------------------

    def _error(self, exc: Exception, what: str) -> StoreError:
        code = getattr(exc, "code", None)
        return StoreError(f"{self.url}: {what}: {exc}", permanent=code in _PERMANENT)

    def put(self, key: str, path: Path, sha256: str) -> str:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.bucket.blob(self._key(key))
        blob.metadata = {"sha256": sha256}
        kind = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        try:
            blob.upload_from_filename(str(path), content_type=kind, if_generation_match=0)
        except PreconditionFailed as exc:
            existing = self.bucket.get_blob(self._key(key))
            remote = (existing.metadata or {}).get("sha256") if existing is not None else None
            if remote != sha256:
                raise ConflictError(f"{self.url}: {key} already exists with different content "
                                    f"(sha256 {remote or 'unknown'}); not overwritten") from exc
        except Exception as exc:
            raise self._error(exc, f"put {key}") from exc
        return object_url(self.bucket_name, self._key(key))

    def get(self, key: str) -> bytes:
        try:
            return self.bucket.blob(self._key(key)).download_as_bytes()
        except Exception as exc:
            raise self._error(exc, f"get {key}") from exc

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        try:
            blobs = self.client.list_blobs(self.bucket_name, prefix=base + prefix)
            return sorted(b.name[len(base) :] for b in blobs)
        except Exception as exc:
            raise self._error(exc, "list") from exc

    def exists(self, key: str) -> bool:
        try:
            return bool(self.bucket.blob(self._key(key)).exists())
        except Exception as exc:
            raise self._error(exc, f"exists {key}") from exc

    def delete_uploads(self, node_prefix: str) -> list[str]:
        """Delete a node's `vendor.gcs.put` uploads (see `is_vendor_upload`); the deleted keys."""
        keys = [k for k in self.list(node_prefix + "_") if is_vendor_upload(k, node_prefix)]
        for key in keys:
            try:
                self.bucket.blob(self._key(key)).delete()
            except Exception as exc:
                raise self._error(exc, f"delete {key}") from exc
        return keys


def object_url(bucket: str, key: str) -> str:
    """The object's public URL form (what `vendor.gcs.put` returns)."""
    return f"https://storage.googleapis.com/{bucket}/{quote(key, safe=_URL_SAFE)}"
