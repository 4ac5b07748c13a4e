"""Automation on top of helpers: kflPcapS3, repositories, PCAP writing, object stores and the spool."""

from wrappers.context import ScriptContext
from wrappers.kfl_pcap_s3 import KflPcapS3
from wrappers.outbox import Outbox, SpoolError, SpoolFullError
from wrappers.pcapfile import write_pcap
from wrappers.stores import ConfigError, ConflictError, StoreError, open_store, store_config
from wrappers.vendor_s3 import vendor_s3_put

__all__ = [
    "ConfigError",
    "ConflictError",
    "KflPcapS3",
    "Outbox",
    "ScriptContext",
    "SpoolError",
    "SpoolFullError",
    "StoreError",
    "open_store",
    "store_config",
    "vendor_s3_put",
    "write_pcap",
]
