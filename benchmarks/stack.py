"""Benchmarks on the local stack: feed-change-to-posted latency (1 item x 2 channels, the poll wait
excluded), and what each kind of work costs in calls: HTTP requests, DynamoDB and SQS operations,
handler time. The cost estimate is computed from these counts."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from devtools.stack import LocalStack

ITERATIONS = 20
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class Calls:
    """AWS operations counted through botocore's event hooks on the clients the runtime uses, with
    the DynamoDB request units each would bill on demand (items here are all under 1 KB / 4 KB)."""

    operations: Counter[str] = field(default_factory=Counter)

    def install(self) -> Calls:
        """Count the calls of the runtime's DynamoDB and SQS clients from now on (a local stack
        makes new clients when it starts: install after each start)."""
        from chalicelib import aws

        aws.client("dynamodb").meta.events.register("before-parameter-build.dynamodb", self.hook)
        aws.client("sqs").meta.events.register("before-parameter-build.sqs", self.hook)
        return self

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        self.operations[name] += 1
        for unit, amount in _request_units(model.name, params).items():
            self.operations[unit] += amount

    @contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        before = Counter(self.operations)
        delta: Counter[str] = Counter()
        yield delta
        delta.update(self.operations - before)


def _request_units(operation: str, params: dict[str, Any]) -> dict[str, float]:
    """On-demand billing: 1 RRU per strongly consistent read (0.5 if eventually consistent),
    1 WRU per write, twice that inside a transaction; every key of a batch counts."""
    read = 1.0 if params.get("ConsistentRead") else 0.5
    if operation in {"GetItem", "Query"}:
        return {"ddb:RRU": read}
    if operation == "BatchGetItem":
        return {"ddb:RRU": sum(len(r["Keys"]) for r in params["RequestItems"].values())}
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        return {"ddb:WRU": 1.0}
    if operation == "BatchWriteItem":
        return {"ddb:WRU": float(sum(len(r) for r in params["RequestItems"].values()))}
    if operation == "TransactWriteItems":
        return {"ddb:WRU": 2.0 * len(params["TransactItems"])}
    return {}


def _feed(items: list[tuple[int, datetime]]) -> bytes:
    entries = "".join(
        f"<item><title>Avviso {n}</title><link>https://www.comune.esempio.it/notizie/{n}</link>"
        f"<guid>bench-{n}</guid><pubDate>{format_datetime(when)}</pubDate>"
        f"<description>{escape(f'Comunicazione di prova numero {n} per la cittadinanza.')}</description></item>"
        for n, when in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench</title>'
        f"<link>https://www.comune.esempio.it/</link><description>x</description>{entries}</channel></rss>"
    ).encode()


def _config(path: Path) -> None:
    config = {
        "version": 1,
        "tenants": [
            {
                "id": "comune-bench",
                "name": "Comune di Prova",
                "sources": [
                    {
                        "id": "notizie",
                        "url": "https://sample.feeds.invalid/bench.rss",
                        "min_interval_seconds": 0,
                    }
                ],
                "channels": [
                    {
                        "id": "telegram",
                        "platform": "telegram",
                        "chat": "@ComuneProva",
                        "token": "env:BENCH_UNSET_TG",
                    },
                    {
                        "id": "mastodon",
                        "platform": "mastodon",
                        "instance": "https://mastodon.example",
                        "token": "env:BENCH_UNSET_MA",
                    },
                ],
                "routes": [{"source": "notizie", "channels": ["telegram", "mastodon"]}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def _timed(work: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        feeds = folder / "feeds"
        feeds.mkdir()
        feed_file = feeds / "bench.rss"
        items = [(0, datetime.now(UTC))]
        feed_file.write_bytes(_feed(items))
        _config(folder / "bench.yaml")
        stack = LocalStack(
            folder / "bench.yaml", state_dir=folder / "state", persist=False, feeds_dir=feeds
        ).start()
        try:
            return _measure(stack, feed_file, items)
        finally:
            stack.stop()


def _measure(stack: LocalStack, feed_file: Path, items: list[tuple[int, datetime]]) -> dict[str, Any]:
    calls = Calls().install()
    stack.poll()  # first run: marks the existing item seen
    latencies, poll_seconds, publish_seconds = [], [], []
    changed_poll: Counter[str] = Counter()
    publish: Counter[str] = Counter()
    for n in range(1, ITERATIONS + 1):
        items.append((n, datetime.now(UTC)))
        feed_file.write_bytes(_feed(items))
        start = time.perf_counter()
        with calls.measure() as polled:
            result, seconds = _timed(stack.poll)
        with calls.measure() as published:
            handled, drained = _timed(stack.drain)
        latencies.append(time.perf_counter() - start)
        if result["sources"][0]["new"] != 1 or handled != 2:  # 1 item, 2 channels
            raise RuntimeError(f"benchmark run went wrong: {result} / {handled} messages")
        poll_seconds.append(seconds)
        publish_seconds.append(drained / 2)
        changed_poll.update(polled)
        publish.update(published)
    posted = len(stack.sandbox.posts())
    requests_before = stack.feeds.requests
    with calls.measure() as unchanged:
        _, unchanged_seconds = _timed(stack.poll)
    with calls.measure() as housekeeping:
        _, housekeeping_seconds = _timed(stack.housekeeping)
    return {
        "feed_change_to_posted": {
            "items": 1,
            "channels": 2,
            "iterations": ITERATIONS,
            "p50_seconds": statistics.median(latencies),
            "p95_seconds": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
            "posts_in_sandbox": posted,
        },
        "unchanged_poll": {
            "http_requests": stack.feeds.requests - requests_before,
            "dynamodb_calls": {k: v for k, v in unchanged.items() if k.startswith(("dynamodb:", "ddb:"))},
            "dynamodb_writes": sum(v for k, v in unchanged.items() if k.split(":")[1] in WRITE_OPERATIONS),
            "handler_seconds": unchanged_seconds,
        },
        "changed_poll_per_item": {
            "calls": {k: v / ITERATIONS for k, v in changed_poll.items()},
            "handler_seconds": statistics.median(poll_seconds),
        },
        "publish_per_delivery": {
            "calls": {k: v / (2 * ITERATIONS) for k, v in publish.items()},
            "handler_seconds": statistics.median(publish_seconds),
        },
        "housekeeping": {"calls": dict(housekeeping), "handler_seconds": housekeeping_seconds},
        "emf_metric_series": _metric_series(stack.state_dir / "lambda.log"),
        "log_bytes_per_invocation": (stack.state_dir / "lambda.log").stat().st_size / stack.invocations,
    }


def _metric_series(log: Path) -> int:
    """Distinct (metric, dimension set) pairs the handlers emitted: what CloudWatch bills."""
    import json

    series = set()
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                values = tuple((d, document[d]) for d in dimensions)
                series.update((m["Name"], values) for m in directive["Metrics"])
    return len(series)
