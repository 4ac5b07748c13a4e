"""`vendor.slack(webhook, pretext, text, color)`: one message to a Slack incoming webhook.

Fire and forget, as in Kubeshark: the message is queued for the background sender
(`wrappers.http_client.post_json_in_background`), so a slow Slack never blocks the pipeline; a
failure (or a full queue) is reported to `on_error`.

`vendor.slackBot(token, channelId, pretext, text, color, fields?, files?)`: a message by a bot
through the Slack Web API, with files shared into the channel.

slackBot, as Kubeshark: one attachment `{pretext, text, color, fields}` with a field per entry of
`fields` plus a final "Timestamp" field, posted with `chat.postMessage`; then each file of `files`
(`{display name: data-folder path}`) is uploaded with Slack's external-upload flow
(`files.getUploadURLExternal`, the bytes to the returned URL, `files.completeUploadExternal` with
`channel_id`, which shares it into the channel; Kubeshark's `files.upload` + `files.remote.share`
are retired by Slack). The Web API base URL is `SLACK_API_URL` (script env, then process env),
default https://slack.com/api.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, Pending, post_json_in_background, request

SLACK_API = "https://slack.com/api"
TIMEOUT_S = 5.0


def _timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z")


def slack(
    url: str, pretext: str, text: str, color: str, on_error: Callable[[str], None] | None = None
) -> Pending:
    """Kubeshark's shape: one attachment as the top-level body, with a Timestamp field."""
    attachment = {
        "pretext": pretext,
        "text": text,
        "color": color,
        "fields": [{"title": "Timestamp", "value": _timestamp(), "short": False}],
    }
    report = (lambda exc: on_error(str(exc))) if on_error else None
    return post_json_in_background(url, attachment, on_error=report, timeout_s=TIMEOUT_S)


class SlackBot:
    """The Web API calls of one `vendor.slackBot` call."""

    def __init__(self, base: str, token: str) -> None:
        self.base = (base or SLACK_API).rstrip("/")
        self.auth = {"Authorization": f"Bearer {token}"}

    def _answer(self, method: str, body: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(body or b"{}")
        except ValueError as exc:
            raise HelperError(f"{method}: the answer is not JSON") from exc
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error", "unknown error") if isinstance(answer, dict) else "unknown error"
            raise HelperError(f"{method}: {error}")
        return answer

    def call_json(self, method: str, doc: dict[str, Any]) -> dict[str, Any]:
        headers = {**self.auth, "Content-Type": "application/json;charset=utf-8"}
        try:
            answer = request("POST", f"{self.base}/{method}", json.dumps(doc).encode(), headers)
        except HttpError as exc:
            raise HelperError(f"{method}: {exc}") from exc
        return self._answer(method, answer.body)

    def call_form(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = {**self.auth, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = request("POST", f"{self.base}/{method}", urlencode(params).encode(), headers)
        except HttpError as exc:
            raise HelperError(f"{method}: {exc}") from exc
        return self._answer(method, answer.body)

    def upload(self, channel: str, name: str, data: bytes) -> None:
        got = self.call_form("files.getUploadURLExternal", {"filename": name, "length": len(data)})
        url, file_id = got.get("upload_url"), got.get("file_id")
        if not isinstance(url, str) or not isinstance(file_id, str):
            raise HelperError("files.getUploadURLExternal: no upload_url/file_id in the answer")
        try:
            request("POST", url, data, timeout_s=60.0)
        except HttpError as exc:
            raise HelperError(f"upload of {name}: {exc}") from exc
        self.call_form(
            "files.completeUploadExternal",
            {"files": json.dumps([{"id": file_id, "title": name}]), "channel_id": channel},
        )


def slack_bot(
    base: str, token: str, channel: str, pretext: str, text: str, color: str,
    fields: dict[str, str], files: dict[str, bytes], log: Any,
) -> None:
    """Post the message, then upload and share each file; `log(line)` as Kubeshark logs."""
    attachment = {
        "pretext": pretext,
        "text": text,
        "color": color,
        "fields": [{"title": k, "value": v, "short": False} for k, v in fields.items()]
        + [{"title": "Timestamp", "value": _timestamp(), "short": False}],
    }
    bot = SlackBot(base, token)
    bot.call_json("chat.postMessage", {"channel": channel, "attachments": [attachment]})
    sent = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    log(f"Message sent to Slack channel: {channel} at {sent}")
    for name, data in files.items():
        bot.upload(channel, name, data)
        log(f"Shared file: {name} to Slack channel: {channel}")
