"""`vendor.slack(webhook, pretext, text, color)`: one message to a Slack incoming webhook."""

from __future__ import annotations

import time

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, post_json


def slack(url: str, pretext: str, text: str, color: str) -> None:
    """Kubeshark's shape: one attachment as the top-level body, with a Timestamp field."""
    attachment = {
        "pretext": pretext,
        "text": text,
        "color": color,
        "fields": [{"title": "Timestamp", "value": time.strftime("%Y-%m-%d %H:%M:%S %z"), "short": False}],
    }
    try:
        post_json(url, attachment)
    except HttpError as exc:
        raise HelperError(str(exc)) from exc
