"""Traffic in: sources, L2-L4 decoding, L4 streams with TCP reassembly, the stream store, dissectors."""

from __future__ import annotations

from typing import Any

from capture.flows import Capture, print_error, print_warning
from capture.model import CaptureConfig, Packet, StreamHandler, StreamMeta
from capture.sources import PacketSource, open_sources
from capture.store import StoreAt, StreamInfo, StreamStore

__all__ = [
    "Capture",
    "CaptureConfig",
    "NameTable",
    "NodeInfo",
    "Packet",
    "PacketSource",
    "StreamHandler",
    "StreamInfo",
    "StreamMeta",
    "StoreAt",
    "StreamStore",
    "make_handler_factory",
    "open_sources",
    "print_error",
    "print_warning",
]


def __getattr__(name: str) -> Any:
    """Dissectors and names load on first use (the `streams` command needs neither)."""
    if name == "make_handler_factory":
        from capture.dissect import make_handler_factory

        return make_handler_factory
    if name == "NodeInfo":
        from capture.dissect import NodeInfo

        return NodeInfo
    if name == "NameTable":
        from capture.names import NameTable

        return NameTable
    raise AttributeError(f"module 'capture' has no attribute {name!r}")
