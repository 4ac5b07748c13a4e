"""What a wrapper knows about the script that uses it (built once per loaded script by the runtime)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from capture import StoreAt, StreamStore
    from wrappers.outbox import Outbox


class WrapperEvents(Protocol):
    """Where a wrapper reports its figures as they change (the run's stats), on the caller's thread."""

    def configured(self, queries: list[str]) -> None:
        """The wrapper's queries, once its options were taken."""

    def matched(self, index: int) -> None:
        """An item matched query `index`."""

    def written(self, record: dict[str, Any]) -> None:
        """A repository was written: index, query, location, streams, packets, bytes_raw, bytes_gz."""

    def lost(self) -> int:
        """Packets the live capture lost so far (the kernel's drops), for the manifests."""


class NoEvents:
    """Figures nobody collects."""

    def configured(self, queries: list[str]) -> None:
        pass

    def matched(self, index: int) -> None:
        pass

    def written(self, record: dict[str, Any]) -> None:
        pass

    def lost(self) -> int:
        return 0


@dataclass
class ScriptContext:
    """The script context of docs/architecture.md ("runtime ↔ wrappers: the script context")."""

    title: str
    source_sha256: str
    env: dict[str, str]
    node: dict[str, Any]
    data_dir: Path
    store: StreamStore | StoreAt
    names: Callable[[], dict]
    clock: Callable[[], int]
    console: Callable[[str], None]
    error: Callable[[str], None]
    outbox: Outbox
    events: WrapperEvents = field(default_factory=NoEvents)
