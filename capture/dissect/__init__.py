"""Dissectors: L4 stream bytes to Kubeshark-shaped items (HTTP/1.x, DNS, generic tcp/udp)."""

from capture.dissect.base import DissectConfig, Dissector, ItemFactory, NodeInfo
from capture.dissect.registry import BODY_FIELDS, DISSECTORS, make_handler_factory

__all__ = ["BODY_FIELDS", "DISSECTORS", "DissectConfig", "Dissector", "ItemFactory", "NodeInfo",
           "make_handler_factory"]
