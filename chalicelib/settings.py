"""Names of the environment variables the runtime reads, set by the CDK stack and the local stack.

Nothing here reads the environment at import time except the queue ARNs, which Chalice decorators
need when app.py is imported (CDK synth passes tokens; elsewhere a local default keeps import working).
"""

from __future__ import annotations

import os

TABLE_ENV = "BANDITORE_TABLE"
PUBLISH_QUEUE_URL_ENV = "BANDITORE_PUBLISH_QUEUE_URL"
URGENT_QUEUE_URL_ENV = "BANDITORE_URGENT_QUEUE_URL"
PUBLISH_QUEUE_ARN_ENV = "BANDITORE_PUBLISH_QUEUE_ARN"
URGENT_QUEUE_ARN_ENV = "BANDITORE_URGENT_QUEUE_ARN"
# The inbox lane: citizens' messages as the webhooks received them, for process_inbound.
INBOX_QUEUE_URL_ENV = "BANDITORE_INBOX_QUEUE_URL"
INBOX_QUEUE_ARN_ENV = "BANDITORE_INBOX_QUEUE_ARN"
# Signs the inbox's pagination cursors; without it a key is derived from the table name.
CURSOR_KEY_ENV = "BANDITORE_CURSOR_KEY"

# Set by the local stack only (devtools/stack.py), never by the CDK stack: the "tenant/channel"s it
# points at the platform fakes. Test and Exercise alerts may be shown there (a tenant's
# include_tests_in_sandbox), on no other channel: a real token in a local run is a public channel.
SANDBOX_CHANNELS_ENV = "BANDITORE_SANDBOX_CHANNELS"

_LOCAL_ARN = "arn:aws:sqs:eu-south-1:000000000000:{}"


def sandbox_channels() -> frozenset[str]:
    """The "tenant/channel"s posting to the local sandbox; empty outside it (in AWS, always)."""
    return frozenset(name for name in os.environ.get(SANDBOX_CHANNELS_ENV, "").split(",") if name)


def queue_arn(lane: str) -> str:
    if lane == "inbox":
        return os.environ.get(INBOX_QUEUE_ARN_ENV, _LOCAL_ARN.format("banditore-inbox"))
    env = URGENT_QUEUE_ARN_ENV if lane == "urgent" else PUBLISH_QUEUE_ARN_ENV
    name = "banditore-publish-urgent" if lane == "urgent" else "banditore-publish"
    return os.environ.get(env, _LOCAL_ARN.format(name))


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


# Timing knobs (seconds). Production defaults; the local stack and tests shorten them so that
# retries and expired leases can be exercised in seconds rather than minutes.
LEASE_SECONDS_ENV = "BANDITORE_LEASE_SECONDS"
RETRY_BASE_SECONDS_ENV = "BANDITORE_RETRY_BASE_SECONDS"
UNHEALTHY_RECHECK_SECONDS_ENV = "BANDITORE_UNHEALTHY_RECHECK_SECONDS"


def seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default
