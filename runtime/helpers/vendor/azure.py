"""`vendor.azure.put(containerName, path, accountName?, accountKey?, connectionString?)` → blob URL.

Works as vendor.s3.put: the file (relative to the data folder) is spooled at once and uploaded
create-only by the outbox (wrappers.stores.AzureStore) under `<node>_<ip>_<run id>/<file name>`;
the URL is returned at once. Authentication: a connection string (pass "" for name and key), or an
account name and key. The container must exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.helpers.files import HelperError
from runtime.helpers.vendor.s3 import RUN_ID
from wrappers.context import ScriptContext
from wrappers.outbox import SpoolError
from wrappers.stores import AzureStore, StoreError
from wrappers.stores.azure import account_url, blob_url


def azure_put(ctx: ScriptContext, container: str, path: str, account_name: str = "", account_key: str = "",
              connection_string: str = "") -> str:
    data_dir = Path(ctx.data_dir).resolve()
    src = (data_dir / path).resolve()
    if not src.is_relative_to(data_dir) or not src.is_file():
        raise HelperError(f"no file {path!r} in the data folder")
    key = f"{ctx.node.get('name', 'node')}_{ctx.node.get('ip', '')}_{RUN_ID}/{os.path.basename(src)}"
    config = AzureStore.config_for(f"azblob://{container}", account_name=account_name,
                                   account_key=account_key, connection_string=connection_string)
    try:
        url = blob_url(account_url(account_name, connection_string), container, key)
        ctx.outbox.submit(config, key, src)
    except (StoreError, SpoolError) as exc:
        raise HelperError(str(exc)) from exc
    return url
