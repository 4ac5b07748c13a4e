"""Options of `wrapper.kflPcapS3(data, options)` (docs/wrapper.md): Kubeshark's names, env fallbacks, checks.

Every problem becomes one line naming the option. A bad tuning value (maxMinutes, format, …) falls
back to the default so the wrapper keeps working; a bad destination or retention leaves it off,
because going on would write somewhere else or unprotected: a missing or empty `kflArr`, an
`s3Prefix` with `.`/`..` parts or control characters, an invalid bucket name, an `objectLockMode`
that is not COMPLIANCE/GOVERNANCE, lacks `objectLockDays`, or has no bucket to lock objects in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wrappers.stores import store_config

MiB = 1 << 20
# the bucket names botocore accepts (stricter AWS rules are the server's to enforce)
BUCKET_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,255}")

KNOWN = {
    "kflArr", "awsRegion", "awsAccessKeyId", "awsSecretAccessKey", "s3Bucket", "s3Endpoint", "s3Prefix",
    "active", "verbose", "maxMinutes", "maxL4Streams", "maxBytes", "objectLockMode", "objectLockDays",
    "slackWebhook", "slackAuthToken", "slackChannelId", "slackAuthChannelId", "format", "clear",
}  # fmt: skip


@dataclass
class Options:
    kfl_arr: list[str] = field(default_factory=list)
    active: bool = True
    verbose: bool = False
    max_minutes: float = 60.0
    max_l4_streams: int = 100_000
    max_bytes: int = 256 * MiB
    format: str = "pcap.gz"
    prefix: str = ""
    store: dict[str, Any] = field(default_factory=dict)
    slack_webhook: str = ""
    slack_auth_token: str = ""
    slack_channel_id: str = ""
    local: bool = False  # no bucket configured: repositories go to the local store in the data folder


def env_lookup(script_env: Mapping[str, str]) -> Callable[[str], str]:
    """The script's env first, then the process environment."""

    def lookup(*names: str) -> str:
        for name in names:
            for source in (script_env, os.environ):
                value = source.get(name)
                if value not in (None, ""):
                    return str(value)
        return ""

    return lookup


def parse_options(
    raw: Any, script_env: Mapping[str, str], data_dir: Path
) -> tuple[Options | None, list[str]]:
    """`(options, problems)`; options is None when the wrapper cannot work at all."""
    if not isinstance(raw, dict):
        return None, [f"options must be an object like {{kflArr: [...]}}, got {type(raw).__name__}"]
    problems = [f"unknown option {name!r} (ignored)" for name in raw if name not in KNOWN]
    env = env_lookup(script_env)
    opts = Options()

    def pick(name: str, kind: type | tuple[type, ...], check: Callable[[Any], bool], want: str) -> Any:
        value = raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind) or not check(value):
            problems.append(f"option {name} must be {want}, got {value!r} (using the default)")
            return None
        return value

    def positive(v: Any) -> bool:
        return v > 0

    def text(name: str, *env_names: str) -> str:
        value = pick(name, str, lambda _v: True, "a string")
        return value if value else env(*env_names)

    kfl_arr = raw.get("kflArr")
    if not isinstance(kfl_arr, list) or not kfl_arr or not all(isinstance(q, str) for q in kfl_arr):
        problems.append(f"option kflArr is mandatory: a non-empty array of KFL strings, got {kfl_arr!r}")
        return None, problems
    opts.kfl_arr = list(kfl_arr)
    if (active := pick("active", bool, lambda _v: True, "true or false")) is not None:
        opts.active = active
    if (verbose := pick("verbose", bool, lambda _v: True, "true or false")) is not None:
        opts.verbose = verbose
    if (minutes := pick("maxMinutes", (int, float), positive, "a number of minutes > 0")) is not None:
        opts.max_minutes = float(minutes)
    streams = pick("maxL4Streams", (int, float), lambda v: v >= 1 and v == int(v), "an integer >= 1")
    if streams is not None:
        opts.max_l4_streams = int(streams)
    if (max_bytes := pick("maxBytes", (int, float), positive, "a number of bytes > 0")) is not None:
        opts.max_bytes = int(max_bytes)
    fmt = pick("format", str, lambda v: v in ("pcap.gz", "tar.gz"), '"pcap.gz" or "tar.gz"')
    if fmt:
        opts.format = fmt
    if raw.get("clear"):
        problems.append("option clear is not supported: repositories are immutable (ignored)")
    opts.slack_webhook = text("slackWebhook", "SLACK_WEBHOOK")
    opts.slack_auth_token = text("slackAuthToken", "SLACK_AUTH_TOKEN")
    opts.slack_channel_id = text("slackChannelId") or text("slackAuthChannelId", "SLACK_CHANNEL_ID")
    fatal: list[str] = []  # problems that leave the wrapper off
    prefix = text("s3Prefix", "S3_PREFIX")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts) or any(ord(c) < 32 or c in "\\\x7f" for c in prefix):
        fatal.append(f"option s3Prefix must be folder names without '.', '..', '\\' or control characters, "
                     f"got {prefix!r}")
    opts.prefix = "/".join(parts)

    lock_mode = text("objectLockMode", "S3_OBJECT_LOCK_MODE").upper()
    if lock_mode and lock_mode not in ("COMPLIANCE", "GOVERNANCE"):
        fatal.append(f"option objectLockMode must be COMPLIANCE or GOVERNANCE, got {lock_mode!r}")
    lock_days = pick("objectLockDays", (int, float), positive, "a number of days > 0")
    if lock_days is None and env("S3_OBJECT_LOCK_DAYS"):
        try:
            lock_days = float(env("S3_OBJECT_LOCK_DAYS"))
        except ValueError:
            problems.append("env S3_OBJECT_LOCK_DAYS must be a number of days")
    if lock_mode and not (isinstance(lock_days, float | int) and lock_days > 0):
        fatal.append("option objectLockMode needs objectLockDays > 0")

    bucket = text("s3Bucket", "S3_BUCKET")
    if bucket and not BUCKET_NAME.fullmatch(bucket):
        fatal.append(f"option s3Bucket must be a bucket name (letters, digits, '.', '-', '_'), "
                     f"got {bucket!r}")
    if lock_mode and not bucket:
        fatal.append("option objectLockMode needs an S3 bucket (s3Bucket / S3_BUCKET): the local store "
                     "cannot lock files")
    if fatal:
        return None, [*problems, *(f"{p}; the wrapper stays off" for p in fatal)]
    if bucket:
        # explicit keys (options or the script's env) are recorded for the spool; keys only in the
        # process environment are left to boto3's default credential chain
        key_id = pick("awsAccessKeyId", str, lambda _v: True, "a string")
        secret = pick("awsSecretAccessKey", str, lambda _v: True, "a string")
        if not key_id and not secret:
            key_id = script_env.get("AWS_ACCESS_KEY_ID", "")
            secret = script_env.get("AWS_SECRET_ACCESS_KEY", "")
        opts.store = store_config(
            f"s3://{bucket}",
            endpoint=text("s3Endpoint", "S3_ENDPOINT", "AWS_ENDPOINT_URL"),
            region=text("awsRegion", "AWS_REGION", "AWS_DEFAULT_REGION"),
            access_key_id=key_id or "",
            secret_access_key=secret or "",
            object_lock_mode=lock_mode,
            object_lock_days=lock_days if lock_mode else 0,
        )
    else:
        opts.store = store_config(data_dir / "repositories")
        opts.local = True
    return opts, problems

