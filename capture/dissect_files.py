"""Capture files → items, for the commands that print or match items (`kflpcap items`, `kfl match`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from capture import (
    Capture,
    CaptureConfig,
    NameTable,
    NodeInfo,
    Packet,
    PacketSource,
    make_handler_factory,
    open_sources,
    print_error,
    print_warning,
)
from capture.flows import HANDLER_FAILED
from capture.store import Record


def dissect_files(
    paths: list[str],
    on_item: Callable[[dict[str, Any]], None],
    *,
    config: CaptureConfig | None = None,
    node: str | None = None,
    names: NameTable | None = None,
    done: Callable[[], bool] | None = None,
    shard: tuple[int, int] | None = None,
    position: list[int] | None = None,
    on_closed: Callable[[Record], None] | None = None,
) -> PacketSource:
    """Read the captures in order and hand every item to `on_item`; read errors and warnings go to
    stderr.

    Reading stops soon after `done()` turns true (checked after each item). The returned source's
    `.failed` lists the inputs that were not captures at all. `shard=(k, n)`: dissect only share k
    of n (see `make_handler_factory`); share k > 0 leaves read errors and skipped-packet warnings
    to share 0, which reads the same packets. `position[0]`, when given, is kept at the number of
    the packet being read (1-based; one past the last while the streams are closed at the end).
    `on_closed` is told of every stream that closes.
    """
    quiet = shard is not None and shard[0] > 0
    source = open_sources(paths, on_error=_ignore if quiet else print_error,
                          on_warning=_ignore if quiet else print_warning)
    if done is not None:
        deliver = on_item

        def on_item(item: dict[str, Any]) -> None:
            deliver(item)
            if done():
                source.stop()

    capture = Capture(config or CaptureConfig(),
                      make_handler_factory(on_item, NodeInfo.local(node), names or NameTable(), shard=shard))
    capture.warn = _handler_warnings if quiet else print_warning
    capture.store.on_closed = on_closed
    if position is None:
        capture.consume(source)
    else:
        capture.use_snaplens(source)
        capture.consume(_counted(source, position))
        position[0] += 1
    capture.finish()
    return source


def _counted(packets: Iterable[Packet], position: list[int]) -> Iterator[Packet]:
    for number, packet in enumerate(packets, 1):
        position[0] = number
        yield packet


def _ignore(_text: str) -> None:
    pass


def _handler_warnings(text: str) -> None:
    if text.startswith(HANDLER_FAILED):  # about this share's streams: share 0 cannot say it
        print_warning(text)
