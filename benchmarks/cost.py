"""Monthly AWS cost for a typical comune, computed from the calls and durations the stack benchmark
counted, not guessed; below, the alert poller's month and a red alert for every Italian comune, from
what the alert benchmarks measured. Free tiers are ignored (a worst case); every assumption is a
named constant."""

from __future__ import annotations

import math
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
# The synthesised stack's alarms (tests/infra count them): errors of its 11 functions, 3 DLQs, and
# publish failures, stale sources, unhealthy channels, token expiry, broken webhooks, danger reports,
# inbound failures, SLA breaches, reply failures, mention polling, lost alert updates.
ALARMS = 25


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


# -- alerts (issue 3) ------------------------------------------------------------------------------
# The alert poller: EventBridge starts it once a minute and it loops, a pass every 15 s, while it has
# time; its memory size is a choice, so each is priced.
ALERT_POLLER_MEMORY_MB = (128, 256, 512)
ALERT_POLLER_INVOCATIONS = 60 * 24 * DAYS
FULL_MINUTE_SECONDS, FULL_MINUTE_PASSES = 60.0, 4  # a loop that would fill its minute
PUBLISH_URGENT_MEMORY_GB = 1.0  # .chalice/config.json
# On paper: every Italian comune on one deployment, each with the fan-out benchmark's channels.
COMUNI = 7_900
# The alert feeds every comune lists: MeteoAlarm Italy and the DPC bulletin. The poller reads one state
# row per feed and pass, whatever the number of comuni listing it.
NATIONAL_ALERT_FEEDS = 2
# A DynamoDB or SQS call from Lambda in the same region (locally only moto's time is known). An
# assumption: single-digit milliseconds for DynamoDB, a little more for transactions and SQS.
AWS_CALL_SECONDS = 0.008
DRAIN_TARGET_SECONDS = 60.0
# Lambda's SQS event source: five concurrent batches at first, up to 300 more a minute, at most
# 1,000; an account's default concurrency quota is 1,000 for all its functions.
ESM_START_CONCURRENCY, ESM_RAMP_PER_MINUTE, ESM_MAX_CONCURRENCY = 5, 300, 1_000
# Telegram: about 30 messages a second per bot, 20 a minute per channel; Mastodon: 300 requests per
# 5 minutes per account (shared/platforms.md).
TELEGRAM_BOT_PER_SECOND = 30


def alert_poller(latency: dict[str, Any]) -> dict[str, Any]:
    """Monthly cost of polling one alert feed for one comune every 15 s, from the measured pass (its
    DynamoDB reads) and the measured loop (how long an invocation runs, how many passes it makes)."""
    schedule, idle = latency["poller_schedule"], latency["unchanged_pass"]
    measured = (schedule["billed_seconds"], schedule["passes_per_invocation"])
    full = (FULL_MINUTE_SECONDS, FULL_MINUTE_PASSES)

    def month(seconds: float, passes: int, memory_mb: int) -> float:
        compute = ALERT_POLLER_INVOCATIONS * seconds * memory_mb / 1024 * PRICES["lambda_gb_second"]
        reads = ALERT_POLLER_INVOCATIONS * passes * idle["calls"].get("ddb:RRU", 0) * PRICES["dynamodb_rru"]
        heartbeats = HEARTBEAT_WRITES_PER_DAY * DAYS * PRICES["dynamodb_wru"]
        return float(compute + reads + heartbeats + ALERT_POLLER_INVOCATIONS * PRICES["lambda_request"])

    return {
        "invocations_per_month": ALERT_POLLER_INVOCATIONS,
        "conditional_gets_per_month": ALERT_POLLER_INVOCATIONS * measured[1],
        "billed_seconds_per_invocation": measured[0],
        "usd_per_month": {f"{mb} MB": round(month(*measured, mb), 2) for mb in ALERT_POLLER_MEMORY_MB},
        "usd_per_month_full_minute": {
            f"{mb} MB": round(month(*full, mb), 2) for mb in ALERT_POLLER_MEMORY_MB
        },
    }


def italy(alerts: dict[str, Any]) -> dict[str, Any]:
    """On paper: one red alert for every comune, from the measured publisher time per delivery, the
    calls the fan-out counted, and the assumptions above."""
    fan_out, national, idle = alerts["fan_out"], alerts["national"], alerts["latency"]["unchanged_pass"]
    deliveries = COMUNI * fan_out["channels_per_tenant"]
    per_delivery = national["seconds_per_delivery_one_worker"]
    concurrency = math.ceil(deliveries * per_delivery / DRAIN_TARGET_SECONDS)
    poll_calls = _operations(fan_out["poll_calls_per_tenant"])
    return {
        "comuni": COMUNI,
        "deliveries": deliveries,
        "lambda_concurrency_for_60s_drain": concurrency,
        "esm_ramp_seconds_to_that_concurrency": max(0, concurrency - ESM_START_CONCURRENCY)
        / ESM_RAMP_PER_MINUTE
        * 60,
        "lambda_invocations": math.ceil(deliveries / national["batch_size"]),
        "sqs_messages": deliveries,
        # Announcing is spread over jobs of a slice of comuni each (alerts/fanout.py), run in parallel
        # on the urgent lane: this is the work of all of them, each comune's calls one after the other.
        "announce_work_seconds": COMUNI * poll_calls * AWS_CALL_SECONDS,
        "unchanged_pass_seconds": NATIONAL_ALERT_FEEDS * _operations(idle["calls"]) * AWS_CALL_SECONDS,
        "telegram_one_shared_bot_seconds": COMUNI * fan_out["telegram_per_tenant"] / TELEGRAM_BOT_PER_SECOND,
        "usd_per_alert": round(_alert_cost(alerts, deliveries), 2),
        "poller_reads_usd_per_month": round(
            NATIONAL_ALERT_FEEDS
            * ALERT_POLLER_INVOCATIONS
            * alerts["latency"]["poller_schedule"]["passes_per_invocation"]
            * idle["calls"].get("ddb:RRU", 0)
            * PRICES["dynamodb_rru"],
            2,
        ),
    }


def _operations(calls: dict[str, float]) -> float:
    """AWS requests among counted calls (not the request units that are counted beside them)."""
    return float(sum(count for name, count in calls.items() if name.startswith(("dynamodb:", "sqs:"))))


def _alert_cost(alerts: dict[str, Any], deliveries: int) -> float:
    """One alert to `deliveries` channels: the poller's writes, the publisher's time and calls, SQS."""
    fan_out, national = alerts["fan_out"], alerts["national"]
    tenants = deliveries / fan_out["channels_per_tenant"]
    calls = {
        kind: tenants * fan_out["poll_calls_per_tenant"].get(kind, 0)
        + deliveries * fan_out["publish_calls_per_delivery"].get(kind, 0)
        for kind in ("ddb:WRU", "ddb:RRU")
    }
    sqs = (
        tenants * fan_out["poll_calls_per_tenant"].get("sqs:SendMessageBatch", 0)
        + 2 * deliveries / national["batch_size"]
    )
    seconds = deliveries * national["seconds_per_delivery_one_worker"]
    return float(
        seconds * PUBLISH_URGENT_MEMORY_GB * PRICES["lambda_gb_second"]
        + deliveries / national["batch_size"] * PRICES["lambda_request"]
        + calls["ddb:WRU"] * PRICES["dynamodb_wru"]
        + calls["ddb:RRU"] * PRICES["dynamodb_rru"]
        + sqs * PRICES["sqs_request"]
    )
