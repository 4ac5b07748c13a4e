"""`vendor.gcs.put(bucket, path, saKeyObj)` → object URL and `vendor.gcs.clear(bucket, saKeyObj)`.

put works as vendor.s3.put: the file (relative to the data folder) is spooled at once and uploaded
create-only by the outbox (wrappers.stores.GcsStore), under `<node>_<ip>_<run id>/<file name>`;
the URL is returned at once. clear deletes this node's vendor.gcs.put uploads (every run), never
anything else. `saKeyObj` is the service-account key (object or JSON text); empty uses Google's
default credentials. The API address is `GCS_ENDPOINT` / `STORAGE_EMULATOR_HOST` (script env, then
process env), default Google's.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.helpers.files import DataDir, HelperError
from runtime.helpers.vendor.upload import spool_upload
from wrappers.context import ScriptContext
from wrappers.options import env_lookup
from wrappers.stores import GcsStore, StoreError
from wrappers.stores.gcs import object_url


def _config(ctx: ScriptContext, bucket: str, key_json: str) -> dict[str, Any]:
    try:
        credentials = json.loads(key_json) if key_json.strip() else {}
    except ValueError as exc:
        raise HelperError(f"the service-account key is not JSON: {exc}") from exc
    if not isinstance(credentials, dict):
        raise HelperError("the service-account key must be an object")
    endpoint = env_lookup(ctx.env)("GCS_ENDPOINT", "STORAGE_EMULATOR_HOST")
    return GcsStore.config_for(f"gs://{bucket}", endpoint=endpoint, credentials=credentials)


def gcs_put(ctx: ScriptContext, data: DataDir, bucket: str, path: str, key_json: str) -> str:
    return object_url(bucket, spool_upload(ctx, data, path, _config(ctx, bucket, key_json)))


def gcs_clear(ctx: ScriptContext, bucket: str, key_json: str) -> str:
    prefix = f"{ctx.node.get('name', 'node')}_{ctx.node.get('ip', '')}"
    try:
        GcsStore.from_config(_config(ctx, bucket, key_json)).delete_uploads(prefix)
    except StoreError as exc:
        raise HelperError(str(exc)) from exc
    return prefix
