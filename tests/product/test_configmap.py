"""The kubelet-style ConfigMap folder used by hot-reload tests behaves like kubelet's."""

from __future__ import annotations

import os
from pathlib import Path

from tests.product.configmap import update_configmap_dir


def test_update_swaps_content_behind_stable_symlinks(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    update_configmap_dir(folder, {"a.js": "// A\n", "b.js": "// B\n"})
    assert sorted(p.name for p in folder.glob("*.js")) == ["a.js", "b.js"]
    assert os.readlink(folder / "a.js") == "..data/a.js"
    first = os.readlink(folder / "..data")

    update_configmap_dir(folder, {"a.js": "// A2\n", "c.js": "// C\n"})
    assert (folder / "a.js").read_text() == "// A2\n"
    assert os.readlink(folder / "a.js") == "..data/a.js", "the visible file itself is not rewritten"
    assert sorted(p.name for p in folder.glob("*.js")) == ["a.js", "c.js"]
    assert os.readlink(folder / "..data") != first
    assert not (folder / first).exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith("..") and p.is_dir()
            and not p.is_symlink()] == [os.readlink(folder / "..data")]
