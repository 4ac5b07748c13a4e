"""What a wrapper knows about the script that uses it (built once per loaded script by the runtime)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capture import StreamStore
    from wrappers.outbox import Outbox


@dataclass
class ScriptContext:
    """The script context of docs/architecture.md ("runtime ↔ wrappers: the script context")."""

    title: str
    source_sha256: str
    env: dict[str, str]
    node: dict[str, Any]
    data_dir: Path
    store: StreamStore
    names: Callable[[], dict]
    clock: Callable[[], int]
    console: Callable[[str], None]
    error: Callable[[str], None]
    outbox: Outbox
