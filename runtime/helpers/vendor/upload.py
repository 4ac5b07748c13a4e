"""A data-folder file into the outbox for an object store: the one way `vendor.s3.put`,
`vendor.gcs.put` and `vendor.azure.put` read what they upload (through the data folder's containment:
no symbolic link is followed, no window between check and read)."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

from runtime.helpers.files import DataDir, HelperError
from wrappers.context import ScriptContext
from wrappers.outbox import SpoolError
from wrappers.stores import StoreError

RUN_ID = str(int(time.time()))


def upload_key(ctx: ScriptContext, path: str) -> str:
    """`<node>_<ip>_<run id>/<file name>`, Kubeshark's key of a vendor upload."""
    return f"{ctx.node.get('name', 'node')}_{ctx.node.get('ip', '')}_{RUN_ID}/{PurePosixPath(path).name}"


def spool_upload(ctx: ScriptContext, data: DataDir, path: str, config: dict[str, Any]) -> str:
    """Copy `path` of the data folder into the spool for the store `config`; returns its key."""
    key = upload_key(ctx, path)
    try:
        with data.open_read(path) as src:
            ctx.outbox.submit(config, key, src)
    except FileNotFoundError:
        raise HelperError(f"no file {path!r} in the data folder") from None
    except IsADirectoryError:
        raise HelperError(f"{path!r} is a folder, not a file") from None
    except (StoreError, SpoolError) as exc:
        raise HelperError(str(exc)) from exc
    return key
