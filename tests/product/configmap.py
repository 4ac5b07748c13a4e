"""A scripts folder laid out and updated the way kubelet updates a mounted ConfigMap, for hot-reload
tests of the DaemonSet's set-up (deploy/daemonset.yaml).

kubelet (AtomicWriter) never writes the visible files: `name.js` is a symlink to `..data/name.js`,
`..data` is a symlink to a hidden timestamped folder, and an update writes a new timestamped folder,
points `..data_tmp` at it and renames `..data_tmp` over `..data` (one atomic rename), then adds or
removes the visible symlinks and deletes the old folder. A watcher that only looks at events for
`*.js` names sees no event for changed content: it must react to the `..data` swap.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def update_configmap_dir(target: Path, files: dict[str, str]) -> None:
    """Make `target` hold exactly `files` (name -> content), as one kubelet ConfigMap update."""
    target.mkdir(parents=True, exist_ok=True)
    data = target / "..data"
    old = Path(os.readlink(data)) if data.is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(time.time_ns() % 10**9)
    fresh = target / stamp
    fresh.mkdir()
    for name, content in files.items():
        (fresh / name).write_text(content)
    tmp = target / "..data_tmp"
    tmp.symlink_to(stamp)
    tmp.rename(data)
    for name in files:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in files:
            entry.unlink()
    if old is not None:
        shutil.rmtree(target / old)
