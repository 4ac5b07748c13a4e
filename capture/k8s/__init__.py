"""Kubernetes identity for items' src/dst: a resolver fed by the API server (list + watch) and a
time-indexed history of which pod, service or node had an address (docs/kubernetes.md).

`History` and `Cluster` need no client library; `Resolver` and `load_config` import lightkube
when used.
"""

from capture.k8s.cluster import KINDS, Cluster
from capture.k8s.history import History, key_of
from capture.k8s.resolver import ConfigError, Resolver, in_cluster, load_config

__all__ = ["KINDS", "Cluster", "ConfigError", "History", "Resolver", "in_cluster", "key_of", "load_config"]
