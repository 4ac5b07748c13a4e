"""`vendor.webhook(method, url, body, headers)` and `vendor.webhookForm(method, url, fields)`: the
answer's body, whatever its status (as Kubeshark); a transport failure raises HelperError.

The script waits for the answer, so each script's calls have a budget (`WebhookBudget`): a timeout
per call (`TIMEOUT_S`) and circuit breakers — after 3 calls in a row to one host (or 10 to any
hosts) that got no answer within `SLOW_S`, calls to that host (to any host) throw at once for a
30 s cool-off, and one console line says the script is throttled. A server that never answers, or
answers slowly, costs a script a few timeouts, not one per item.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from runtime.helpers.files import HelperError
from wrappers.http_client import HostBreaker, HttpError, Throttled, request

TIMEOUT_S = 5.0
# an answer that took longer than this counts as none for the breakers: a slow server stalls too
SLOW_S = 2.0
# calls in a row to any hosts that got no answer before every call throws at once for a cool-off
ANY_HOST_THRESHOLD = 10


class WebhookBudget:
    """One script's webhook calls: their timeout and breakers; `tell` prints one console line per
    throttled host and cool-off."""

    def __init__(self, tell: Callable[[str], None] | None = None) -> None:
        self.tell = tell
        self.breakers = (
            HostBreaker(slow_s=SLOW_S),
            HostBreaker(ANY_HOST_THRESHOLD, per_host=False, slow_s=SLOW_S),
        )

    @property
    def refused(self) -> int:
        """Calls refused at once because of a cool-off."""
        return sum(b.refused for b in self.breakers)


def webhook(
    method: str, url: str, body: str, headers: dict[str, Any], budget: WebhookBudget | None = None
) -> str:
    """The response body (any status); a transport failure or a throttled host raises HelperError."""
    return _send("vendor.webhook", method, url, body.encode("utf-8"), headers, budget)


def webhook_form(method: str, url: str, fields: dict[str, str], budget: WebhookBudget | None = None) -> str:
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
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return _send("vendor.webhookForm", method, url, body, headers, budget)


def _send(helper: str, method: str, url: str, body: bytes, headers: dict[str, Any],
          budget: WebhookBudget | None) -> str:
    try:
        answer = request(method, url, body, headers, any_status=True, timeout_s=TIMEOUT_S,
                         breakers=budget.breakers if budget is not None else ())
    except Throttled as exc:
        if exc.first and budget is not None and budget.tell is not None:
            budget.tell(f"{helper}: throttled: {exc}")
        raise HelperError(f"throttled: {exc}") from exc
    except HttpError as exc:
        raise HelperError(str(exc)) from exc
    return answer.body.decode("utf-8", "replace")
