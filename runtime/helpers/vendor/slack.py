"""`vendor.slack(webhook, pretext, text, color)`: one message to a Slack incoming webhook.

Fire and forget, as in Kubeshark: the message is queued for the background sender
(`wrappers.http_client.post_json_in_background`), so a slow Slack never blocks the pipeline; a
failure (or a full queue) is reported to `on_error`."""

from __future__ import annotations

import time
from collections.abc import Callable

from wrappers.http_client import Pending, post_json_in_background

TIMEOUT_S = 5.0


def slack(
    url: str, pretext: str, text: str, color: str, on_error: Callable[[str], None] | None = None
) -> Pending:
    """Kubeshark's shape: one attachment as the top-level body, with a Timestamp field."""
    attachment = {
        "pretext": pretext,
        "text": text,
        "color": color,
        "fields": [{"title": "Timestamp", "value": time.strftime("%Y-%m-%d %H:%M:%S %z"), "short": False}],
    }
    report = (lambda exc: on_error(str(exc))) if on_error else None
    return post_json_in_background(url, attachment, on_error=report, timeout_s=TIMEOUT_S)
