"""`vendor.webhook(method, url, body, headers)` and `vendor.webhookForm(method, url, fields)`: the
answer's body, whatever its status (as Kubeshark); a transport failure raises HelperError."""

from __future__ import annotations

import secrets
from typing import Any

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, request


def webhook(method: str, url: str, body: str, headers: dict[str, Any]) -> str:
    """The response body (any status); a transport failure raises HelperError."""
    return _send(method, url, body.encode("utf-8"), headers)


def webhook_form(method: str, url: str, fields: dict[str, str]) -> str:
    """`fields` as a multipart/form-data body, one plain part per key (Go's `WriteField`)."""
    boundary = "kflpcap-" + secrets.token_hex(12)
    parts = []
    for name, value in fields.items():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode()
            + value.encode("utf-8")
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return _send(method, url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _send(method: str, url: str, body: bytes, headers: dict[str, Any]) -> str:
    try:
        answer = request(method, url, body, headers, any_status=True)
    except HttpError as exc:
        raise HelperError(str(exc)) from exc
    return answer.body.decode("utf-8", "replace")
