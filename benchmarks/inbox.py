"""Inbox benchmarks on the local stack: webhook ingest throughput (Telegram citizen messages POSTed
to the local API, accepted at the HTTP edge, then processed by the inbox lane) and the staff list's
latency with 10 and with 10,000 open conversations, which must cost the same DynamoDB calls per
request whatever the inbox size (store.list_conversations is one Query per page)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from benchmarks.stack import Calls
from chalicelib.inbox import lifecycle, rows
from chalicelib.inbox.model import Citizen, InboundMessage
from chalicelib.inbox.threading import inbound_message_id, thread_of
from chalicelib.storage import dynamo
from devtools.sandbox.citizens import Citizens, Person
from devtools.stack import LocalStack, restore_table

TENANT = "comune-bench"
LIST_TENANT = "comune-lista"  # its own tenant: the ingest's conversations would not leave it at 10
CHANNEL = "telegram"
MESSAGES = 200
CITIZENS = 50  # messages rotate among them: new conversations and follow-ups both
SIZES = (10, 10_000)
LIST_REQUESTS = 10  # a Query of the 10,000-row partition takes seconds on moto
RETENTION_DAYS = 30
TIMEOUT = 10.0
FIRST_OPEN_PAGE = {"status": "open", "limit": "25"}


@dataclass
class QueryClock:
    """Seconds spent inside the runtime's DynamoDB Query calls. moto answers a Query by reading its
    whole partition, DynamoDB reads only the page asked for: the latency without the Query is what
    this code costs at each size, whatever the emulator."""

    seconds: float = 0.0
    _began: float = 0.0

    def install(self) -> QueryClock:
        from chalicelib import aws

        events = aws.client("dynamodb").meta.events
        events.register("before-call.dynamodb.Query", self._begin)
        events.register("after-call.dynamodb.Query", self._end)
        return self

    def _begin(self, **_: Any) -> None:
        self._began = time.perf_counter()

    def _end(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._began


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stack = LocalStack(_config(folder / "bench.yaml"), state_dir=folder / "state", persist=False)
        stack.start(serve_api=True)
        try:
            calls = Calls().install()
            return {"ingest": _ingest(stack, calls), "list": _list_latency(stack, calls, folder)}
        finally:
            stack.stop()


def _ingest(stack: LocalStack, calls: Calls) -> dict[str, Any]:
    """MESSAGES private messages to the bot, one POST after the other as Telegram sends them to one
    webhook; then the inbox lane pumped until empty."""
    citizens = Citizens(str(stack.api_url))
    start = time.perf_counter()
    with calls.measure() as accepted:
        for n in range(MESSAGES):
            citizens.person = Person(user_id=2000 + n % CITIZENS, first_name=f"Cittadino{n % CITIZENS}")
            sent = citizens.telegram_message(TENANT, CHANNEL, f"Segnalazione numero {n}: lampione spento")
            if sent.status != 200:
                raise RuntimeError(f"webhook refused message {n}: HTTP {sent.status}")
    accept_seconds = time.perf_counter() - start
    with calls.measure() as processed:
        handled = stack.drain(timeout=120.0)
    total_seconds = time.perf_counter() - start
    if handled != MESSAGES:
        raise RuntimeError(f"the inbox lane handled {handled} of {MESSAGES} messages")
    return {
        "messages": MESSAGES,
        "citizens": CITIZENS,
        "accept_seconds": accept_seconds,
        "accepted_per_second": MESSAGES / accept_seconds,
        "processed_seconds": total_seconds,
        "processed_per_second": MESSAGES / total_seconds,
        "calls_per_message_at_webhook": _per(accepted, MESSAGES),
        "calls_per_message_processing": _per(processed, MESSAGES),
    }


def _list_latency(stack: LocalStack, calls: Calls, folder: Path) -> dict[str, Any]:
    """The first page of the open list, LIST_REQUESTS times, at each inbox size."""
    session = requests.Session()  # kept alive, as a staff browser would
    session.headers["Authorization"] = f"Bearer {stack.dev_tokens[LIST_TENANT]}"
    url = f"{stack.api_url}/inbox/{LIST_TENANT}/conversations"
    clock = QueryClock().install()
    by_size: dict[str, Any] = {}
    seeded = 0
    for size in SIZES:
        _seed(stack, folder, range(seeded, size))
        seeded = size
        latencies, outside_query = [], []
        with calls.measure() as used:
            for _ in range(LIST_REQUESTS):
                begin, queried = time.perf_counter(), clock.seconds
                response = session.get(url, params=FIRST_OPEN_PAGE, timeout=TIMEOUT)
                latencies.append(time.perf_counter() - begin)
                outside_query.append(latencies[-1] - (clock.seconds - queried))
                if response.status_code != 200:
                    raise RuntimeError(f"list went wrong: HTTP {response.status_code} {response.text[:200]}")
        by_size[str(size)] = {
            "conversations": size,
            "items_per_page": len(response.json()["items"]),
            "requests": LIST_REQUESTS,
            "p50_seconds": statistics.median(latencies),
            "p95_seconds": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
            "p50_seconds_without_query": statistics.median(outside_query),
            "calls_per_request": _per(used, LIST_REQUESTS),
        }
    small, large = (by_size[str(size)] for size in SIZES)
    if small["calls_per_request"] != large["calls_per_request"]:
        raise RuntimeError(f"list calls differ: {small['calls_per_request']} / {large['calls_per_request']}")
    return {
        "sizes": by_size,
        "p50_ratio": large["p50_seconds"] / small["p50_seconds"],
        "p50_ratio_without_query": large["p50_seconds_without_query"] / small["p50_seconds_without_query"],
    }


def _seed(stack: LocalStack, folder: Path, numbers: range) -> None:
    """Open conversations of LIST_TENANT with one citizen message each, as store.record_inbound
    leaves them: the conversation, its list/SLA/citizen rows and the message with its id marker,
    built by the functions the store writes with (its dedupe and figures rows are left out: no list
    reads them). Written with BatchWriteItem (restore_table), not a transaction
    each: moto copies the whole table on every transaction, which would make seeding 10,000 take
    far longer than the benchmark itself."""
    start = datetime.now(UTC) - timedelta(days=1)
    items = []
    for n in numbers:
        message = InboundMessage(
            tenant=LIST_TENANT,
            channel=CHANNEL,
            platform="telegram",
            platform_message_id=f"seed-{n}",
            citizen=Citizen("telegram", str(100_000 + n), f"Cittadino {n}"),
            text=f"Segnalazione {n}: buca in via Roma",
            received_at=start + timedelta(seconds=n),
            reply_target={"chat_id": str(100_000 + n), "message_id": str(n)},
        )
        thread = thread_of(message)
        stored = rows.inbound_message(message, inbound_message_id(message), thread.conversation_id)
        conversation = lifecycle.opened(
            message, thread, stored.id, announcement_id=None, urgent=False, retention_days=RETENTION_DAYS
        )
        conversation = replace(conversation, version=1)
        items += [
            rows.conversation_item(conversation),
            *rows.derived_rows(conversation),
            *rows.message_items(LIST_TENANT, stored, "telegram", CHANNEL, conversation.expires_at),
        ]
    dump = folder / "seed.json"
    dump.write_text(json.dumps([dynamo.to_dynamo(item) for item in items]), encoding="utf-8")
    if stack.resources is None:
        raise RuntimeError("the stack is not started")
    restore_table(dump, stack.resources.table_name)


def _per(counted: Counter[str], n: int) -> dict[str, float]:
    return {name: amount / n for name, amount in sorted(counted.items())}


def _config(path: Path) -> Path:
    tenants = [
        {
            "id": tenant,
            "name": "Comune di Prova",
            "sources": [{"id": "notizie", "url": "https://sample.feeds.invalid/bench.rss"}],
            # A bot of its own each: a bot delivers its messages to one webhook (the config checks it).
            "channels": [
                {
                    "id": CHANNEL,
                    "platform": "telegram",
                    "chat": "@ComuneProva",
                    "token": f"env:BENCH_UNSET_TG_{number}",
                    "inbox": True,
                }
            ],
            "routes": [{"source": "notizie", "channels": [CHANNEL]}],
            "inbox": {"retention_days": RETENTION_DAYS},
        }
        for number, tenant in enumerate((TENANT, LIST_TENANT))
    ]
    path.write_text(yaml.safe_dump({"version": 1, "tenants": tenants}), encoding="utf-8")
    return path
