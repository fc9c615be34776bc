"""Run every benchmark, write .bench/results.json and print a table."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import alerts, channels, cold_start, cost, inbox, parse, stack

OUT = Path(__file__).resolve().parent.parent / ".bench" / "results.json"


def _rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    cold = results["cold_start"]
    latency = results["stack"]["feed_change_to_posted"]
    unchanged = results["stack"]["unchanged_poll"]
    throughput = results["parse"]
    money = results["cost"]
    return [
        (
            "cold start: import boto3",
            f"{cold['boto3']['seconds_median'] * 1000:.0f} ms, +{cold['boto3']['added_rss_mib_median']:.1f} MiB",
        ),
        (
            "cold start: import app",
            f"{cold['app']['seconds_median'] * 1000:.0f} ms, +{cold['app']['added_rss_mib_median']:.1f} MiB",
        ),
        (
            "  ratio app / boto3 (time, memory)",
            f"{cold['app']['time_ratio_vs_boto3']:.2f}x, {cold['app']['memory_ratio_vs_boto3']:.2f}x",
        ),
        (
            "  app + publisher (first publish)",
            f"{cold['app+publisher']['seconds_median'] * 1000:.0f} ms ({cold['app+publisher']['time_ratio_vs_boto3']:.2f}x)",
        ),
        (
            "  app + poller (first poll)",
            f"{cold['app+poller']['seconds_median'] * 1000:.0f} ms ({cold['app+poller']['time_ratio_vs_boto3']:.2f}x)",
        ),
        (
            "feed change -> posted, 1 item x 2 channels",
            f"p50 {latency['p50_seconds'] * 1000:.0f} ms, p95 {latency['p95_seconds'] * 1000:.0f} ms ({latency['iterations']} runs)",
        ),
        (
            "unchanged poll",
            f"{unchanged['http_requests']} HTTP request(s), {sum(v for k, v in unchanged['dynamodb_calls'].items() if k.startswith('dynamodb:'))} DynamoDB call(s), {unchanged['dynamodb_writes']} write(s)",
        ),
        (
            "parse+dedupe, 1,000-item feed",
            f"{throughput['parse_dedupe_seconds'] * 1000:.0f} ms ({throughput['items_per_second']:.0f} items/s), {throughput['ratio_vs_feedparser']:.2f}x bare feedparser",
        ),
        (
            "monthly AWS cost, typical comune",
            f"${money['total_usd_per_month']:.2f} (20 news/day, 5 channels, 1-min polling)",
        ),
    ]


def _alert_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    found, money = results["alerts"], results["alerts_cost"]
    polled, pushed = found["latency"]["polling"], found["latency"]["push"]
    schedule, fan_out, national = found["latency"]["poller_schedule"], found["fan_out"], found["national"]
    poller, italy = money["alert_poller"], money["italy"]
    announce = found["national_announce"]
    starts = ", ".join(f"{start:.1f}" for start in schedule["pass_starts_seconds"])
    calls = fan_out["calls_per_alert"]
    return [
        (
            "alert -> posted, 1 alert x 5 channels, polling",
            f"p50 {_ms(polled['p50_seconds'])}, p95 {_ms(polled['p95_seconds'])} ({polled['runs']} runs, "
            f"platforms {_ms(national['platform_latency_seconds'])}; poll wait excluded)",
        ),
        (
            "  + wait for the next poll pass",
            f"mean {schedule['mean_wait_seconds']:.1f} s, max {schedule['longest_wait_seconds']:.1f} s "
            f"(passes at {starts} s of each minute; every 15 s: mean {schedule['nominal_mean_wait_seconds']:.1f} s)",
        ),
        (
            "alert -> posted, 1 alert x 5 channels, push",
            f"p50 {_ms(pushed['p50_seconds'])}, p95 {_ms(pushed['p95_seconds'])} (hub POST -> 5 posts, no wait)",
        ),
        (
            f"fan-out: 1 zone alert -> {fan_out['tenants']} tenants x {fan_out['channels_per_tenant']} channels",
            f"poll {fan_out['poll_seconds']:.1f} s + drain {fan_out['drain_seconds']:.1f} s (local, 1 worker); "
            f"{sum(v for k, v in calls.items() if k.startswith('dynamodb:')):.0f} DynamoDB calls "
            f"({calls.get('ddb:WRU', 0):.0f} WRU, {calls.get('ddb:RRU', 0):.0f} RRU), "
            f"{sum(v for k, v in calls.items() if k.startswith('sqs:')) + fan_out['esm_sqs_requests_per_alert']:.0f} SQS requests",
        ),
        *(
            (
                f"national: {national['deliveries']:,} deliveries, K={phase['workers']}",
                f"{phase['deliveries_per_second']:.1f} deliveries/s, 2,000 in "
                f"{national['deliveries'] / phase['deliveries_per_second']:.0f} s ({phase['deliveries']} drained in "
                f"{phase['seconds']:.1f} s; {phase['seconds_per_delivery_per_worker']:.2f} s per delivery per worker)",
            )
            for phase in national["phases"]
        ),
        (
            "  workers to drain 2,000 in 60 s",
            f"{national['workers_for_2000_in_60s']} (one worker: {national['seconds_per_delivery_one_worker']:.2f} s "
            f"per delivery, platforms {_ms(national['platform_latency_seconds'])})",
        ),
        (
            f"national announce: 1 feed x {announce['tenants']} comuni, poller pass",
            f"{_ms(announce['fan_out_pass_seconds'])}: {announce['jobs']} announce jobs of {announce['members_per_job']} "
            f"comuni ({_sum(announce['fan_out_pass_calls'], 'dynamodb:'):.0f} DynamoDB, "
            f"{_sum(announce['fan_out_pass_calls'], 'sqs:'):.0f} SQS calls)",
        ),
        (
            "  one announce job (run in parallel)",
            f"{announce['job_seconds']:.1f} s, {_sum(announce['job_calls'], 'dynamodb:'):.0f} DynamoDB + "
            f"{_sum(announce['job_calls'], 'sqs:'):.0f} SQS calls (local, moto)",
        ),
        (
            "  unchanged pass",
            f"{_ms(announce['unchanged_pass_seconds'])}, "
            f"{_sum(announce['unchanged_pass_calls'], 'dynamodb:'):.0f} DynamoDB call(s) whatever the comuni",
        ),
        (
            "  before: announced inline, comune after comune",
            f"{announce['inline_tenants']} comuni in {announce['inline_seconds']:.1f} s: all "
            f"{announce['tenants']} in ~{announce['inline_all_seconds_estimate']:.0f} s in one invocation",
        ),
        (
            "alert poller every 15 s, per month",
            f"{_dollars(poller['usd_per_month'])} ({' / '.join(poller['usd_per_month'])}; "
            f"{poller['billed_seconds_per_invocation']:.0f} s billed a minute)",
        ),
        ("  a loop filling its minute (60 s, 4 passes)", _dollars(poller["usd_per_month_full_minute"])),
        (
            f"Italy on paper: {italy['comuni']:,} comuni x {fan_out['channels_per_tenant']} channels",
            f"{italy['deliveries']:,} deliveries; {italy['lambda_concurrency_for_60s_drain']} publishers drain them "
            f"in 60 s (SQS ramps there in {italy['esm_ramp_seconds_to_that_concurrency']:.0f} s); "
            f"${italy['usd_per_alert']:.2f} per alert",
        ),
        (
            "  announcing, by jobs",
            f"{math.ceil(italy['comuni'] / announce['members_per_job'])} jobs of {announce['members_per_job']} "
            f"comuni, {italy['announce_work_seconds'] * announce['members_per_job'] / italy['comuni']:.1f} s each "
            f"in parallel (tenant after tenant: {italy['announce_work_seconds']:.0f} s); an unchanged pass "
            f"{_sum(announce['unchanged_pass_calls'], 'dynamodb:'):.0f} read per feed, whatever the comuni "
            f"(${italy['poller_reads_usd_per_month']:.2f}/month of reads)",
        ),
        (
            "  Telegram, one bot for every channel",
            f"{italy['telegram_one_shared_bot_seconds']:.0f} s at 30 messages/s (a bot per comune: no limit reached)",
        ),
    ]


def _channel_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    found = results["channels"]
    render, fan_out = found["render_per_item"], found["fan_out"]
    rows = [
        (
            f"render one item: {platform}",
            ", ".join(f"{kind} {micros:.0f} µs" for kind, micros in kinds.items()),
        )
        for platform, kinds in render.items()
    ]
    calls = ", ".join(f"{platform} {n:.0f}" for platform, n in fan_out["calls_per_post"].items())
    return [
        *rows,
        (
            f"fan-out: 1 item with photo -> {fan_out['channel_types']} channel types",
            f"p50 {_ms(fan_out['p50_seconds'])}, p95 {_ms(fan_out['p95_seconds'])} ({fan_out['runs']} runs, "
            "poll + drain on the local stack, 1 worker)",
        ),
        ("  platform calls per post", calls),
    ]


def _inbox_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    ingest, listed = results["inbox"]["ingest"], results["inbox"]["list"]
    webhook, processing = ingest["calls_per_message_at_webhook"], ingest["calls_per_message_processing"]
    rows = [
        (
            f"inbox ingest: {ingest['messages']} Telegram messages via webhook",
            f"accepted {ingest['accepted_per_second']:.0f}/s (HTTP edge), processed "
            f"{ingest['processed_per_second']:.1f}/s end to end (inbox lane, 1 worker)",
        ),
        (
            "  calls per message",
            f"webhook {_sum(webhook, 'sqs:'):.0f} SQS + {_sum(webhook, 'dynamodb:'):.0f} DynamoDB; "
            f"processing {_sum(processing, 'dynamodb:'):.1f} DynamoDB ({processing.get('ddb:WRU', 0):.0f} WRU, "
            f"{processing.get('ddb:RRU', 0):.1f} RRU)",
        ),
    ]
    for size, found in listed["sizes"].items():
        rows.append(
            (
                f"inbox list, {int(size):,} open conversations",
                f"p50 {_ms(found['p50_seconds'])}, p95 {_ms(found['p95_seconds'])} ({found['requests']} GETs, "
                f"{_sum(found['calls_per_request'], 'dynamodb:'):.0f} DynamoDB call(s) each)",
            )
        )
    rows.append(
        (
            "  p50 ratio, largest / smallest",
            f"{listed['p50_ratio']:.2f}x; {listed['p50_ratio_without_query']:.2f}x without the Query "
            "(moto reads the whole partition, DynamoDB only the page)",
        )
    )
    return rows


def _sum(calls: dict[str, float], prefix: str) -> float:
    return sum(n for name, n in calls.items() if name.startswith(prefix))


def _dollars(amounts: dict[str, float]) -> str:
    return " / ".join(f"${usd:.2f}" for usd in amounts.values())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-south-1")
    results: dict[str, Any] = {"cold_start": cold_start.run(), "parse": parse.run(), "stack": stack.run()}
    results["cost"] = cost.estimate(results["stack"])
    results["alerts"] = alerts.run()
    results["channels"] = channels.run()
    results["inbox"] = inbox.run()
    results["alerts_cost"] = {
        "alert_poller": cost.alert_poller(results["alerts"]["latency"]),
        "italy": cost.italy(results["alerts"]),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2), encoding="utf-8")
    rows = _rows(results) + _alert_rows(results) + _channel_rows(results) + _inbox_rows(results)
    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark':<{width}}  result")
    print("-" * (width + 60))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("\ncost breakdown (USD/month):", json.dumps(results["cost"]["usd_per_month"]))
    print(f"full results: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
