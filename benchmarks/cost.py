"""Monthly AWS cost for a typical comune, computed from the calls and durations the stack benchmark
counted, not guessed. Free tiers are ignored (a worst case); every assumption is a named constant."""

from __future__ import annotations

from typing import Any

# Assumed AWS list prices in USD (on-demand, no free tier). Check the price list of your region
# (eu-south-1 is within a few percent of these) and edit here: the estimate follows.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000166667,
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "cloudwatch_metric_month": 0.30,
    "cloudwatch_alarm_month": 0.10,
    "cloudwatch_logs_gb": 0.50,
}
# The typical comune of the issue.
NEWS_PER_DAY = 20
CHANNELS = 5
POLLS_PER_DAY = 24 * 60  # 1-minute polling
DAYS = 30
HOUSEKEEPING_PER_DAY = 24 * 12
HEARTBEAT_WRITES_PER_DAY = 24 * 6  # an unchanged source records a success every 10 minutes
MEMORY_GB = 0.5  # lambda_memory_size 512
# Time the local stack cannot show: a real feed request and a real platform call over the internet.
FEED_REQUEST_SECONDS = 0.25
PLATFORM_CALL_SECONDS = 0.30
# Lambda's SQS event source long-polls each queue (about 5 pollers, 20 s waits) whether or not
# messages arrive; two lanes.
SQS_IDLE_RECEIVES_PER_MONTH = 2 * 5 * 3 * 60 * 24 * DAYS
ALARMS = 8  # errors of 4 functions, 2 DLQs, publish failures, stale sources


def estimate(stack: dict[str, Any]) -> dict[str, Any]:
    polls = POLLS_PER_DAY * DAYS
    changed = NEWS_PER_DAY * DAYS
    unchanged = polls - changed
    deliveries = changed * CHANNELS
    housekeeping = HOUSEKEEPING_PER_DAY * DAYS
    unchanged_calls = stack["unchanged_poll"]["dynamodb_calls"]
    changed_calls = stack["changed_poll_per_item"]["calls"]
    publish_calls = stack["publish_per_delivery"]["calls"]
    housekeeping_calls = stack["housekeeping"]["calls"]

    def units(kind: str) -> float:
        return (
            unchanged * unchanged_calls.get(kind, 0)
            + changed * changed_calls.get(kind, 0)
            + deliveries * publish_calls.get(kind, 0)
            + housekeeping * housekeeping_calls.get(kind, 0)
        )

    wru = units("ddb:WRU") + HEARTBEAT_WRITES_PER_DAY * DAYS
    rru = units("ddb:RRU")
    sqs_requests = (
        SQS_IDLE_RECEIVES_PER_MONTH
        + sum(changed * v for k, v in changed_calls.items() if k.startswith("sqs:"))
        + sum(deliveries * v for k, v in publish_calls.items() if k.startswith("sqs:"))
        + deliveries
    )  # ESM deletes
    invocations = polls + housekeeping + deliveries
    seconds = (
        unchanged * (stack["unchanged_poll"]["handler_seconds"] + FEED_REQUEST_SECONDS)
        + changed * (stack["changed_poll_per_item"]["handler_seconds"] + FEED_REQUEST_SECONDS)
        + deliveries * (stack["publish_per_delivery"]["handler_seconds"] + PLATFORM_CALL_SECONDS)
        + housekeeping * stack["housekeeping"]["handler_seconds"]
    )
    log_gb = invocations * stack["log_bytes_per_invocation"] / 1e9
    lines = {
        "lambda_requests": invocations * PRICES["lambda_request"],
        "lambda_compute": seconds * MEMORY_GB * PRICES["lambda_gb_second"],
        "dynamodb_writes": wru * PRICES["dynamodb_wru"],
        "dynamodb_reads": rru * PRICES["dynamodb_rru"],
        "sqs": sqs_requests * PRICES["sqs_request"],
        "cloudwatch_metrics": stack["emf_metric_series"] * PRICES["cloudwatch_metric_month"],
        "cloudwatch_alarms": ALARMS * PRICES["cloudwatch_alarm_month"],
        "cloudwatch_logs": log_gb * PRICES["cloudwatch_logs_gb"],
    }
    return {
        "assumptions": {
            "news_per_day": NEWS_PER_DAY,
            "channels": CHANNELS,
            "polls_per_month": polls,
            "deliveries_per_month": deliveries,
            "lambda_invocations": invocations,
            "lambda_gb_seconds": seconds * MEMORY_GB,
            "dynamodb_wru": wru,
            "dynamodb_rru": rru,
            "sqs_requests": sqs_requests,
            "log_gb": log_gb,
        },
        "usd_per_month": {k: round(v, 4) for k, v in lines.items()},
        "total_usd_per_month": round(sum(lines.values()), 2),
    }
