"""AWS clients, created on first use (never at import) and shared by the process.

Low-level clients are thread-safe (feeds are polled on parallel threads) and honour
AWS_ENDPOINT_URL, which is how the local stack reaches moto.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config

# boto3's default 60 s read timeout would outlast a whole invocation's safety margin; DynamoDB and
# SQS answer in milliseconds, and the standard retry mode backs off on throttling.
CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4})


@functools.cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=CLIENT_CONFIG)
