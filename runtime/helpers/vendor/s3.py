"""`vendor.s3.put(bucket, path, region?, keyId?, secret?)`: durable, asynchronous, create-only upload.

The file (relative to the data folder) is copied into the outbox at once; the upload happens on the
outbox's thread with retries (wrappers.outbox), so the call returns the object URL immediately
(Kubeshark's return value). Key: `<node>_<ip>_<run id>/<file name>` as Kubeshark since 2023-11; the
run id is the start time of this process, so a restart never collides with an earlier run's objects.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from runtime.helpers.files import DataDir, HelperError
from wrappers.context import ScriptContext
from wrappers.options import env_lookup
from wrappers.outbox import SpoolError
from wrappers.stores import StoreError, object_url, upload_config

RUN_ID = str(int(time.time()))


def s3_put(
    ctx: ScriptContext, bucket: str, path: str, region: str = "", key_id: str = "", secret: str = ""
) -> str:
    """Spool `<data_dir>/<path>` for `bucket`; returns the object URL.

    Raises HelperError on bad input — a path outside the data folder, through a link, or a file with
    other hard links — and when the spool cannot take the file (full disk)."""
    if not key_id and not secret:
        key_id = ctx.env.get("AWS_ACCESS_KEY_ID", "")
        secret = ctx.env.get("AWS_SECRET_ACCESS_KEY", "")
    name = os.path.basename(path.rstrip("/"))
    node = ctx.node.get("name", "node")
    ip = ctx.node.get("ip", "")
    key = f"{node}_{ip}_{RUN_ID}/{name}"
    try:
        config = upload_config(bucket, env_lookup(ctx.env), region, key_id, secret)
        # read through the data folder's containment (no link followed, no hard link to a file
        # outside), into a private copy the outbox spools
        with DataDir(Path(ctx.data_dir)).open_read(path) as src, tempfile.TemporaryDirectory(
            prefix=".kflpcap-s3put-", dir=ctx.data_dir
        ) as tmp:
            copy = Path(tmp) / (name or "artifact")
            with open(copy, "wb") as out:
                shutil.copyfileobj(src, out)
            ctx.outbox.submit(config, key, copy)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise HelperError(f"no file {path!r} in the data folder") from exc
    except (StoreError, SpoolError) as exc:
        raise HelperError(str(exc)) from exc
    return object_url(config, key)
