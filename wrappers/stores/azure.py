"""The Azure Blob Storage store (`vendor.azure.put` uploads), with azure-storage-blob.

Create-only as every store: uploads never overwrite (`overwrite=False`); a blob that exists already
is done when its `sha256` metadata matches, a conflict otherwise. Authentication: a connection
string (Azurite's, or an account's), or an account name and key. An account name alone (managed
identity) needs the azure-identity package, which kflpcap does not install.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wrappers.stores.base import BucketKeys, ConfigError, ConflictError, StoreError, register

AZURITE = "http://127.0.0.1:10000/devstoreaccount1"
_URL_SAFE = "/~!*'()"  # what JavaScript's encodeURIComponent leaves as is, besides "/" (the prelude's URL)


def account_url(account_name: str = "", connection_string: str = "") -> str:
    """The blob service address a connection string or an account name gives (no trailing /)."""
    if connection_string:
        parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            return AZURITE
        if parts.get("BlobEndpoint"):
            return parts["BlobEndpoint"].rstrip("/")
        account_name = parts.get("AccountName", account_name)
        protocol = parts.get("DefaultEndpointsProtocol", "https")
        return f"{protocol}://{account_name}.blob.{parts.get('EndpointSuffix', 'core.windows.net')}"
    if not account_name:
        raise ConfigError("Azure: give an account name or a connection string")
    return f"https://{account_name}.blob.core.windows.net"


def blob_url(base: str, container: str, key: str) -> str:
    return f"{base}/{container}/{quote(key, safe=_URL_SAFE)}"


@register
class AzureStore(BucketKeys):
    """An Azure container. Config: `{"kind": "azure", "container", "prefix", "account_name",
    "account_key", "connection_string"}`."""

    kind = "azure"
    location_scheme = "azblob"
    bucket_field = "container"
    scheme = None  # only vendor helpers upload here: no repositories (no Object Lock check)

    def __init__(self, container: str, prefix: str = "", account_name: str = "", account_key: str = "",
                 connection_string: str = "") -> None:
        from azure.storage.blob import BlobServiceClient

        if not container:
            raise ConfigError("Azure: no container given")
        self.container = container
        self.prefix = "/".join(p for p in prefix.split("/") if p)
        self.base = account_url(account_name, connection_string)
        self.url = f"azblob://{container}/{self.prefix}" if self.prefix else f"azblob://{container}"
        try:
            if connection_string:
                service = BlobServiceClient.from_connection_string(connection_string)
            elif account_key:
                service = BlobServiceClient(self.base, credential={"account_name": account_name,
                                                                   "account_key": account_key})
            else:
                raise ConfigError("Azure: an account name alone (managed identity) needs azure-identity; "
                                  "give accountKey or a connection string")
        except ValueError as exc:
            raise ConfigError(f"Azure: {exc}") from exc
        self.client = service.get_container_client(container)

    # ---- the registry's questions ---------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AzureStore:
        return cls(config["container"], config.get("prefix", ""), config.get("account_name", ""),
                   config.get("account_key", ""), config.get("connection_string", ""))

    @classmethod
    def describe(cls, config: dict[str, Any]) -> str:
        return f"azblob://{config['container']} at " + account_url(
            config.get("account_name", ""), config.get("connection_string", ""))

    @classmethod
    def ident(cls, config: dict[str, Any]) -> str:
        return f"azblob://{config['container']}/{config.get('prefix', '')}@" + account_url(
            config.get("account_name", ""), config.get("connection_string", ""))

    # ---- the Store protocol -----------------------------------------------------------------------------

    def _error(self, exc: Exception, what: str) -> StoreError:
        status = getattr(exc, "status_code", None)
        return StoreError(f"{self.url}: {what}: {exc}", permanent=status in (400, 401, 403, 404))

    def put(self, key: str, path: Path, sha256: str) -> str:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        blob = self.client.get_blob_client(self._key(key))
        kind = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        try:
            with open(path, "rb") as data:
                blob.upload_blob(data, overwrite=False, metadata={"sha256": sha256},
                                 content_settings=ContentSettings(content_type=kind))
        except ResourceExistsError as exc:
            remote = (blob.get_blob_properties().metadata or {}).get("sha256")
            if remote != sha256:
                raise ConflictError(f"{self.url}: {key} already exists with different content "
                                    f"(sha256 {remote or 'unknown'}); not overwritten") from exc
        except OSError:
            raise
        except Exception as exc:
            raise self._error(exc, f"put {key}") from exc
        return blob_url(self.base, self.container, self._key(key))

    def get(self, key: str) -> bytes:
        try:
            return self.client.download_blob(self._key(key)).readall()
        except Exception as exc:
            raise self._error(exc, f"get {key}") from exc

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        try:
            return sorted(b.name[len(base) :] for b in self.client.list_blobs(name_starts_with=base + prefix))
        except Exception as exc:
            raise self._error(exc, "list") from exc

    def exists(self, key: str) -> bool:
        try:
            return bool(self.client.get_blob_client(self._key(key)).exists())
        except Exception as exc:
            raise self._error(exc, f"exists {key}") from exc
