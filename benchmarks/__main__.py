"""Run every benchmark, write .bench/results.json and print a table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import cold_start, cost, parse, stack

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


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-south-1")
    results: dict[str, Any] = {"cold_start": cold_start.run(), "parse": parse.run(), "stack": stack.run()}
    results["cost"] = cost.estimate(results["stack"])
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2), encoding="utf-8")
    rows = _rows(results)
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
