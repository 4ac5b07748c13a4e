"""The `vendor.*` and `prometheus.*` helpers scripts call: one module per integration, each a thin
adapter over the egress home in `wrappers` (object stores and the outbox, the HTTP client)."""

from runtime.helpers.vendor.prometheus import prometheus_metric
from runtime.helpers.vendor.s3 import RUN_ID, s3_put
from runtime.helpers.vendor.slack import slack
from runtime.helpers.vendor.webhook import WebhookBudget, webhook

__all__ = ["RUN_ID", "prometheus_metric", "s3_put", "slack", "webhook", "WebhookBudget"]
