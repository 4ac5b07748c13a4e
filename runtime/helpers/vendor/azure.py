"""`vendor.azure.put(containerName, path, accountName?, accountKey?, connectionString?)` → blob URL.

Works as vendor.s3.put: the file (relative to the data folder) is spooled at once and uploaded
create-only by the outbox (wrappers.stores.AzureStore) under `<node>_<ip>_<run id>/<file name>`;
the URL is returned at once. Authentication: a connection string (pass "" for name and key), or an
account name and key. The container must exist.
"""

from __future__ import annotations

from runtime.helpers.files import DataDir, HelperError
from runtime.helpers.vendor.upload import spool_upload
from wrappers.context import ScriptContext
from wrappers.stores import AzureStore, StoreError
from wrappers.stores.azure import account_url, blob_url


def azure_put(ctx: ScriptContext, data: DataDir, container: str, path: str, account_name: str = "",
              account_key: str = "",
              connection_string: str = "") -> str:
    config = AzureStore.config_for(f"azblob://{container}", account_name=account_name,
                                   account_key=account_key, connection_string=connection_string)
    try:
        base = account_url(account_name, connection_string)
    except StoreError as exc:
        raise HelperError(str(exc)) from exc
    return blob_url(base, container, spool_upload(ctx, data, path, config))
