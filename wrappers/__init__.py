"""Automation on top of helpers: kflPcapS3, repositories, PCAP writing, and egress: object stores
(`wrappers.stores`), the spool (`wrappers.outbox`) and the HTTP client (`wrappers.http_client`)."""

from wrappers.context import ScriptContext
from wrappers.http_client import HttpError
from wrappers.kfl_pcap_s3 import KflPcapS3
from wrappers.outbox import Outbox, SpoolError, SpoolFullError
from wrappers.pcapfile import write_pcap
from wrappers.stores import ConfigError, ConflictError, Store, StoreError, open_store, store_config

__all__ = [
    "ConfigError",
    "ConflictError",
    "HttpError",
    "KflPcapS3",
    "Outbox",
    "ScriptContext",
    "SpoolError",
    "SpoolFullError",
    "Store",
    "StoreError",
    "open_store",
    "store_config",
    "write_pcap",
]
