"""Object stores behind one `Store` protocol, registered by kind: a local folder, S3, GCS and Azure
Blob Storage (the last two for `vendor.gcs.put` / `vendor.azure.put`).

`open_store(url_or_dir)` / `store_config(url_or_dir)` pick the kind from the URL (docs/architecture.md,
"Stores"); a new kind is one module with a `@register`ed class plus its import here.
"""

from wrappers.stores.azure import AzureStore
from wrappers.stores.base import (
    ConfigError,
    ConflictError,
    ObjectInfo,
    ObjectStatus,
    Store,
    StoreError,
    StoreKind,
    clean_key,
    describe,
    is_vendor_upload,
    kind_of,
    open_store,
    register,
    sha256_file,
    store_config,
    store_from_config,
    store_ident,
    store_location,
)
from wrappers.stores.gcs import GcsStore
from wrappers.stores.local import LocalStore
from wrappers.stores.s3 import S3Store, delete_uploads, object_url, upload_config

__all__ = [
    "AzureStore",
    "ConfigError",
    "ConflictError",
    "GcsStore",
    "LocalStore",
    "ObjectInfo",
    "ObjectStatus",
    "S3Store",
    "Store",
    "StoreError",
    "StoreKind",
    "clean_key",
    "delete_uploads",
    "describe",
    "is_vendor_upload",
    "kind_of",
    "object_url",
    "open_store",
    "register",
    "sha256_file",
    "store_config",
    "store_from_config",
    "store_ident",
    "store_location",
    "upload_config",
]
