"""`vendor.s3.put(bucket, path, region?, keyId?, secret?)`: durable, asynchronous, create-only upload.

The file (relative to the data folder) is copied into the outbox at once; the upload happens on the
outbox's thread with retries, so the call returns the object URL immediately (Kubeshark's return
value). Key: `<node>_<ip>_<run id>/<file name>` as Kubeshark since 2023-11; the run id is the start
time of this process, so a restart never collides with an earlier run's objects.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from wrappers.context import ScriptContext
from wrappers.options import env_lookup
from wrappers.outbox import SpoolError
from wrappers.stores import StoreError, s3_object_url, store_config

RUN_ID = str(int(time.time()))


def vendor_s3_put(
    ctx: ScriptContext, bucket: str, path: str, region: str = "", key_id: str = "", secret: str = ""
) -> str:
    """Spool `<data_dir>/<path>` for `bucket`; returns the object URL.

    Raises StoreError on bad input and when the spool cannot take the file (full disk)."""
    data_dir = Path(ctx.data_dir).resolve()
    src = (data_dir / path).resolve()
    if not src.is_relative_to(data_dir):
        raise StoreError(f"vendor.s3.put: {path!r} is outside the data folder")
    if not src.is_file():
        raise StoreError(f"vendor.s3.put: no file {path!r} in the data folder")
    if not bucket:
        raise StoreError("vendor.s3.put: no bucket given")
    env = env_lookup(ctx.env)
    if not key_id and not secret:
        key_id = ctx.env.get("AWS_ACCESS_KEY_ID", "")
        secret = ctx.env.get("AWS_SECRET_ACCESS_KEY", "")
    config = store_config(
        f"s3://{bucket}",
        endpoint=env("S3_ENDPOINT", "AWS_ENDPOINT_URL"),
        region=region or env("AWS_REGION", "AWS_DEFAULT_REGION"),
        access_key_id=key_id,
        secret_access_key=secret,
    )
    node = ctx.node.get("name", "node")
    ip = ctx.node.get("ip", "")
    key = f"{node}_{ip}_{RUN_ID}/{os.path.basename(src)}"
    try:
        ctx.outbox.submit(config, key, src)
    except SpoolError as exc:
        raise StoreError(f"vendor.s3.put: {exc}") from exc
    return s3_object_url(config, key)
