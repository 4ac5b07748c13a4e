"""`vendor.webhook(method, url, body, headers)`: the answer's body, whatever its status (as Kubeshark)."""

from __future__ import annotations

from typing import Any

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, request


def webhook(method: str, url: str, body: str, headers: dict[str, Any]) -> str:
    """The response body (any status); a transport failure raises HelperError."""
    try:
        answer = request(method, url, body.encode("utf-8"), headers, any_status=True)
    except HttpError as exc:
        raise HelperError(str(exc)) from exc
    return answer.body.decode("utf-8", "replace")
