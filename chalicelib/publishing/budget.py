"""Post budgets: how many posts a channel takes per window, with a reserve only the urgent lane
may use, so a flood of news can never leave an alert waiting for the platform's rate limit.

The platforms' own rate-limit answers are still honoured (the publisher pauses on them); the budget
keeps us below them in the first place, and keeps the last slots of each window for alerts. One
counter per channel and window, taken with a conditional increment: concurrent publishers never
overshoot, and a refused take costs one write and no platform call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from chalicelib.clock import epoch
from chalicelib.config.models import PostBudget
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import Lane

# Below each platform's published limit (platforms.md); a channel's `budget` overrides it.
# Platforms that publish no posting limit get a budget an office would never reach in normal use.
DEFAULT_BUDGETS: dict[str, PostBudget] = {
    "telegram": PostBudget(posts=20, per_seconds=60, urgent_reserve=4),  # 20 messages/min per channel
    "mastodon": PostBudget(posts=300, per_seconds=3 * 3600, urgent_reserve=60),  # 300 statuses / 3 h
    "bluesky": PostBudget(posts=1500, per_seconds=3600, urgent_reserve=300),  # 5000 points/h, 3 a post
    "x": PostBudget(posts=100, per_seconds=15 * 60, urgent_reserve=20),  # 100 posts / 15 min
    "facebook": PostBudget(posts=60, per_seconds=3600, urgent_reserve=12),
    "instagram": PostBudget(posts=50, per_seconds=24 * 3600, urgent_reserve=10),  # 50 posts / 24 h
    "threads": PostBudget(posts=250, per_seconds=24 * 3600, urgent_reserve=50),  # 250 posts / 24 h
    "slack": PostBudget(posts=60, per_seconds=60, urgent_reserve=12),  # 1 message/s per webhook
    "discord": PostBudget(posts=30, per_seconds=60, urgent_reserve=6),  # 30 messages/min per webhook
    "matrix": PostBudget(posts=60, per_seconds=60, urgent_reserve=12),
}
# A counter outlives its window a little, for operators looking at the table.
_KEEP = timedelta(hours=1)


@dataclass(frozen=True)
class Refusal:
    """The lane's share of this window is used up; the next window starts in `wait_seconds`."""

    wait_seconds: float
    used: int
    cap: int


def budget_for(platform: str, configured: PostBudget | None) -> PostBudget:
    return configured or DEFAULT_BUDGETS[platform]


def _window(budget: PostBudget, moment: datetime) -> tuple[int, int]:
    start = math.floor(moment.timestamp() / budget.per_seconds) * budget.per_seconds
    return start, start + budget.per_seconds


def take(tenant: str, channel: str, lane: Lane, budget: PostBudget, now: datetime) -> Refusal | None:
    """Take one post from the channel's current window: None when granted, else a Refusal."""
    start, end = _window(budget, now)
    cap = budget.posts if lane == "urgent" else budget.posts - budget.urgent_reserve
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.to_dynamo({"pk": keys.budget_pk(tenant), "sk": f"{channel}#{start}"}),
            UpdateExpression="ADD used :one SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(used) OR used < :cap",
            ExpressionAttributeValues=dynamo.values(
                {
                    ":one": 1,
                    ":cap": cap,
                    ":expires": epoch(datetime.fromtimestamp(end, now.tzinfo) + _KEEP),
                }
            ),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        old = dynamo.from_dynamo(error.response.get("Item") or {})
        return Refusal(wait_seconds=max(1.0, end - now.timestamp()), used=int(old.get("used", cap)), cap=cap)
    return None


def give_back(tenant: str, channel: str, budget: PostBudget, taken_at: datetime) -> None:
    """Return the post taken at `taken_at` to its window: the platform was never posted to (the
    delivery turned out not to belong on the channel, e.g. Instagram without an image)."""
    start, _ = _window(budget, taken_at)
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.to_dynamo({"pk": keys.budget_pk(tenant), "sk": f"{channel}#{start}"}),
            UpdateExpression="ADD used :minus_one",
            ConditionExpression="used > :zero",  # never below zero, never a row of its own
            ExpressionAttributeValues=dynamo.values({":minus_one": -1, ":zero": 0}),
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
