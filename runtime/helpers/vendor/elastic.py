"""`vendor.elastic(url, index, data, username?, password?, cloudId?, apiKey?, serviceToken?,
certificateFingerprint?)` → document id: one document indexed with the Elasticsearch index API.

As Kubeshark (go-elasticsearch `Index` with a random UUIDv4 id and `refresh=true`):
`PUT <url>/<index>/_doc/<uuid>?refresh=true` with the JSON of `data`. Authentication, first given
wins: `apiKey` (`Authorization: ApiKey <key>`, the key as Elastic issues it, base64), `serviceToken`
(`Bearer`), `username`/`password` (Basic). `cloudId` (`name:base64(host$es-id$kibana-id)`) gives the
address when `url` is empty. An error answer raises with the answer's text. `certificateFingerprint`
(pinning a self-signed certificate) is refused: give the server a certificate the system trusts.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from urllib.parse import quote

from runtime.helpers.files import HelperError
from wrappers.http_client import HttpError, request


def cloud_url(cloud_id: str) -> str:
    """The Elasticsearch address an Elastic Cloud id names (`name:base64(host$es$kibana)`)."""
    _, _, encoded = cloud_id.rpartition(":")
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise HelperError(f"invalid cloudId {cloud_id!r}") from exc
    host, _, rest = decoded.partition("$")
    es_id = rest.partition("$")[0]
    if not host or not es_id:
        raise HelperError(f"invalid cloudId {cloud_id!r}")
    host, _, port = host.partition(":")
    return f"https://{es_id}.{host}" + (f":{port}" if port and port != "443" else "")


def auth_headers(username: str, password: str, api_key: str, service_token: str) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"ApiKey {api_key}"}
    if service_token:
        return {"Authorization": f"Bearer {service_token}"}
    if username or password:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def elastic(
    url: str,
    index: str,
    data_json: str,
    username: str = "",
    password: str = "",
    cloud_id: str = "",
    api_key: str = "",
    service_token: str = "",
    certificate_fingerprint: str = "",
) -> str:
    """Index `data_json` into `index`; returns the document id."""
    if certificate_fingerprint:
        raise HelperError("certificateFingerprint (certificate pinning) is not supported here")
    if not index:
        raise HelperError("index is empty")
    base = url or (cloud_url(cloud_id) if cloud_id else "")
    if not base:
        raise HelperError("no address: give url or cloudId")
    doc_id = str(uuid.uuid4())
    target = f"{base.rstrip('/')}/{quote(index, safe='')}/_doc/{doc_id}?refresh=true"
    headers = {"Content-Type": "application/json", **auth_headers(username, password, api_key, service_token)}
    try:
        answer = request("PUT", target, data_json.encode("utf-8"), headers)
    except HttpError as exc:
        text = exc.body.decode("utf-8", "replace") if exc.body else ""
        raise HelperError(f"{exc}{': ' + text if text else ''}") from exc
    try:
        return str(json.loads(answer.body).get("_id") or doc_id)
    except (ValueError, AttributeError):
        return doc_id
