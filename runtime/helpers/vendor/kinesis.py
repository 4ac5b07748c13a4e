"""`vendor.kinesis.put(streamName, payload, region, accessKeyId, secretAccessKey)` → result: one
record (the payload string, or an object's JSON) to a Kinesis data stream, with a random partition
key; returns `{ShardId, SequenceNumber, EncryptionType?}` and throws on failure. The endpoint is
`KINESIS_ENDPOINT` / `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL` (script env, then process env)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.helpers.files import HelperError
from wrappers.kinesis import KinesisError, put_record
from wrappers.options import env_lookup


def kinesis_put(env: Mapping[str, str], stream: str, payload: str, region: str, key_id: str,
                secret: str) -> dict[str, Any]:
    lookup = env_lookup(env)
    if not stream:
        raise HelperError("streamName is empty")
    try:
        return put_record(
            stream, payload.encode("utf-8"), region or lookup("AWS_REGION", "AWS_DEFAULT_REGION"),
            key_id, secret, lookup("KINESIS_ENDPOINT", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"),
        )
    except KinesisError as exc:
        raise HelperError(str(exc)) from exc
