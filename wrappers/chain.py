"""Hash-chain heads of the repositories, persisted in the data folder across restarts.

One chain per destination folder (`<store>|<prefix>/<node>/<script slug>/kfl_<i>`): the next sequence
number, the SHA-256 of the last manifest and the last Unix second used in a name. The state file is rewritten
atomically after each committed repository, before the outbox may upload it; bundles still in the
spool carry their chain link too, so a crash between the two writes is repaired at the next start.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_registry: dict[Path, ChainState] = {}
_registry_lock = threading.Lock()


@dataclass
class Link:
    seq: int = 0  # the next repository's sequence number
    head: str | None = None  # SHA-256 of the last manifest
    unix: int = 0  # last Unix second used in a kubeshark-style name


class ChainState:
    """Shared by every wrapper of the process that writes below the same data folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.links: dict[str, Link] = {}
        if path.exists():
            for cid, v in json.loads(path.read_text()).items():
                self.links[cid] = Link(v["seq"], v["head"], v.get("unix", 0))

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ChainState:
        path = (Path(data_dir) / "kflpcaps3" / "chains.json").absolute()
        with _registry_lock:
            if path not in _registry:
                path.parent.mkdir(parents=True, exist_ok=True)
                _registry[path] = cls(path)
            return _registry[path]

    def get(self, chain_id: str) -> Link:
        with self.lock:
            link = self.links.get(chain_id, Link())
            return Link(link.seq, link.head, link.unix)

    def advance(self, chain_id: str, link: Link) -> None:
        with self.lock:
            current = self.links.get(chain_id)
            if current and current.seq > link.seq:
                return
            self.links[chain_id] = link
            self._save()

    def recover(self, spooled: list[dict[str, Any]]) -> None:
        """Take links from bundles still in the spool that are newer than the state file."""
        with self.lock:
            changed = False
            for bundle in spooled:
                c = bundle.get("meta", {}).get("chain")
                if not c:
                    continue
                current = self.links.get(c["id"], Link())
                if c["next"]["seq"] > current.seq:
                    self.links[c["id"]] = Link(c["next"]["seq"], c["next"]["head"], c["next"]["unix"])
                    changed = True
            if changed:
                self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        doc = {cid: {"seq": v.seq, "head": v.head, "unix": v.unix} for cid, v in self.links.items()}
        with tmp.open("w") as out:
            json.dump(doc, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
