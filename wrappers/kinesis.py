"""Records to an Amazon Kinesis data stream (`vendor.kinesis.put`), with boto3.

The endpoint comes from the caller (tests and Kinesis-compatible services); empty credentials
leave them to boto3's default chain (IRSA, instance profile, shared config)."""

from __future__ import annotations

import uuid
from typing import Any


class KinesisError(Exception):
    """The record was not accepted (transport failure, unknown stream, credentials…)."""


def put_record(stream: str, data: bytes, region: str, key_id: str = "", secret: str = "",
               endpoint: str = "", partition_key: str = "") -> dict[str, Any]:
    """PutRecord; returns `{"ShardId", "SequenceNumber", "EncryptionType"?}`."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    creds: dict[str, Any] = {}
    if key_id and secret:
        creds = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    try:
        client = boto3.session.Session().client(
            "kinesis", region_name=region or None, endpoint_url=endpoint or None,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                          read_timeout=30),
            **creds,
        )
        key = partition_key or uuid.uuid4().hex
        answer = client.put_record(StreamName=stream, Data=data, PartitionKey=key)
    except (BotoCoreError, ClientError) as exc:
        raise KinesisError(str(exc)) from exc
    return {k: answer[k] for k in ("ShardId", "SequenceNumber", "EncryptionType") if k in answer}
