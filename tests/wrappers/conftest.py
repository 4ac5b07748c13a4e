"""Fixtures of the wrappers tests: the SeaweedFS S3 server (tests/seaweed.py)."""

from tests.seaweed import seaweed  # noqa: F401
