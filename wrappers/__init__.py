"""Automation on top of helpers: kflPcapS3, repositories, PCAP writing, and egress: object stores
(`wrappers.stores`), the spool (`wrappers.outbox`) and the HTTP client (`wrappers.http_client`)."""

from wrappers.context import ScriptContext
from wrappers.http_client import HttpError
from wrappers.kfl_pcap_s3 import KflPcapS3
from wrappers.manifest_cache import ManifestCache
from wrappers.outbox import Outbox, SpoolError, SpoolFullError, has_spooled
from wrappers.pcapfile import write_pcap, write_pcapng
from wrappers.repo_export import ExportRefused, export
from wrappers.repo_find import Filters, FindResult, find
from wrappers.repo_show import show
from wrappers.stores import ConfigError, ConflictError, Store, StoreError, open_store, store_config

__all__ = [
    "ConfigError",
    "ConflictError",
    "ExportRefused",
    "Filters",
    "FindResult",
    "HttpError",
    "KflPcapS3",
    "ManifestCache",
    "Outbox",
    "ScriptContext",
    "SpoolError",
    "SpoolFullError",
    "Store",
    "StoreError",
    "export",
    "has_spooled",
    "find",
    "open_store",
    "show",
    "store_config",
    "write_pcap",
    "write_pcapng",
]
