"""`vendor.s3.put(bucket, path, region?, keyId?, secret?)`: durable, asynchronous, create-only upload.
`vendor.s3.clear(bucket, region?, keyId?, secret?)`: deletes this node's earlier uploads.

The file (relative to the data folder) is copied into the outbox at once; the upload happens on the
outbox's thread with retries (wrappers.outbox), so the call returns the object URL immediately
(Kubeshark's return value). Key: `<node>_<ip>_<run id>/<file name>` as Kubeshark since 2023-11; the
run id is the start time of this process, so a restart never collides with an earlier run's objects.
"""

from __future__ import annotations

from runtime.helpers.files import DataDir, HelperError
from runtime.helpers.vendor.upload import spool_upload
from wrappers.context import ScriptContext
from wrappers.options import env_lookup
from wrappers.stores import StoreError, delete_uploads, object_url, upload_config


def s3_put(ctx: ScriptContext, data: DataDir, bucket: str, path: str, region: str = "", key_id: str = "",
           secret: str = "") -> str:
    """Spool `path` of the data folder for `bucket`; returns the object URL.

    Raises HelperError on bad input and when the spool cannot take the file (full disk)."""
    if not key_id and not secret:
        key_id = ctx.env.get("AWS_ACCESS_KEY_ID", "")
        secret = ctx.env.get("AWS_SECRET_ACCESS_KEY", "")
    try:
        config = upload_config(bucket, env_lookup(ctx.env), region, key_id, secret)
    except StoreError as exc:
        raise HelperError(str(exc)) from exc
    return object_url(config, spool_upload(ctx, data, path, config))


def s3_clear(ctx: ScriptContext, bucket: str, region: str = "", key_id: str = "", secret: str = "") -> str:
    """Delete every `vendor.s3.put` upload of this node (all runs) from `bucket`; returns the prefix.

    Never a kflPcapS3 repository nor another node's upload (wrappers.stores.delete_uploads)."""
    if not key_id and not secret:
        key_id = ctx.env.get("AWS_ACCESS_KEY_ID", "")
        secret = ctx.env.get("AWS_SECRET_ACCESS_KEY", "")
    prefix = f"{ctx.node.get('name', 'node')}_{ctx.node.get('ip', '')}"
    try:
        delete_uploads(upload_config(bucket, env_lookup(ctx.env), region, key_id, secret), prefix)
    except StoreError as exc:
        raise HelperError(str(exc)) from exc
    return prefix
