"""Capture files → items, for the commands that print or match items (`kflpcap items`, `kfl match`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from capture import (
    Capture,
    CaptureConfig,
    NameTable,
    NodeInfo,
    PacketSource,
    make_handler_factory,
    open_sources,
    print_warning,
)


def dissect_files(
    paths: list[str],
    on_item: Callable[[dict[str, Any]], None],
    *,
    config: CaptureConfig | None = None,
    node: str | None = None,
    names: NameTable | None = None,
    done: Callable[[], bool] | None = None,
) -> PacketSource:
    """Read the captures in order and hand every item to `on_item`; read errors go to stderr.

    Reading stops soon after `done()` turns true (checked after each item). The returned source's
    `.failed` lists the inputs that were not captures at all.
    """
    source = open_sources(paths, on_error=lambda text: print(f"kflpcap: error: {text}", file=sys.stderr))
    if done is not None:
        deliver = on_item

        def on_item(item: dict[str, Any]) -> None:
            deliver(item)
            if done():
                source.stop()

    capture = Capture(config or CaptureConfig(),
                      make_handler_factory(on_item, NodeInfo.local(node), names or NameTable()))
    capture.warn = print_warning
    capture.consume(source)
    capture.finish()
    return source
