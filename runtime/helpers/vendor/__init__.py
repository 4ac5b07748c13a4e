"""The `vendor.*` and `prometheus.*` helpers scripts call: one module per integration, each a thin
adapter over the egress home in `wrappers` (object stores and the outbox, the HTTP client)."""

from runtime.helpers.vendor.azure import azure_put
from runtime.helpers.vendor.elastic import elastic
from runtime.helpers.vendor.gcs import gcs_clear, gcs_put
from runtime.helpers.vendor.influxdb import influxdb
from runtime.helpers.vendor.kinesis import kinesis_put
from runtime.helpers.vendor.prometheus import ScriptMetrics
from runtime.helpers.vendor.s3 import s3_clear, s3_put
from runtime.helpers.vendor.slack import slack, slack_bot
from runtime.helpers.vendor.upload import RUN_ID
from runtime.helpers.vendor.webhook import WebhookBudget, webhook, webhook_form

__all__ = [
    "RUN_ID",
    "ScriptMetrics",
    "WebhookBudget",
    "azure_put",
    "elastic",
    "gcs_clear",
    "gcs_put",
    "influxdb",
    "kinesis_put",
    "s3_clear",
    "s3_put",
    "slack",
    "slack_bot",
    "webhook",
    "webhook_form",
]
