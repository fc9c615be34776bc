"""Alert benchmarks on the local stack (issue 3, "Speed: the urgent lane"), against platforms that
take 200 ms to answer (the sandbox's `latency`):

- latency: a new alert published -> its 5 posts in the sandbox (1 tenant, 5 channels), by polling (a
  CAP document: one poll pass, then the urgent lane drained) and by push (the fake WebSub hub POSTs a
  MeteoAlarm-shaped Atom feed to the local API); the wait for the next poll is reported apart;
- the alert poller's loop, run against a fake clock: when its passes start within a minute, how long
  an invocation is billed, and the wait that follows for an alert published at a random moment;
- fan-out: one zone alert to 20 tenants x 3 channels (platforms answering at once), timed, with the
  AWS calls it costs;
- national red alert: 2,000 deliveries drained by K parallel publisher workers (forked processes, each
  a Lambda container running the real `publish_urgent` handler);
- national announce: one feed listed by 500 comuni (one channel each, nothing posted): the poller's
  pass that reads the new alert and fans it out, an unchanged pass, and one announce job (a slice of
  MEMBERS_PER_JOB comuni) with the AWS calls each costs; and, for comparison, the same slice
  announced inline by the poller, as every comune was before the fan-out.

The alerts are derived from the real DPC bulletin in events/alerts: a new identifier, valid from now
until tomorrow, red for hydro-geological risk.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import yaml

from benchmarks.cost import FEED_REQUEST_SECONDS
from benchmarks.stack import Calls
from devtools.sandbox.websub_hub import WebSubHub, running_hub
from devtools.stack import EVENTS, SAMPLE_FEEDS_HOST, LocalStack, sqs_event

SAMPLE = EVENTS / "alerts" / "dpc-cap-2026-07-30-quiet-day.xml"
ZONE = "Tren-A"  # the sample's alert zone: every benchmark tenant is in it
FEED = "allerte.xml"  # a CAP document, polled
ATOM_FEED = "meteoalarm.atom"  # a MeteoAlarm-shaped Atom feed, pushed by its WebSub hub
CAP_SOURCE = {"id": "allerte", "kind": "cap", "url": f"https://{SAMPLE_FEEDS_HOST}/{FEED}"}
ATOM_SOURCE = {
    "id": "meteoalarm",
    "kind": "cap",
    "format": "meteoalarm_atom",
    "url": f"https://{SAMPLE_FEEDS_HOST}/{ATOM_FEED}",
}
HUB_LIFETIME_SECONDS = 120.0  # the fake hub stops by itself after this
LATENCY_RUNS = 20
FAN_OUT_RUNS = 3
POLL_PERIOD_SECONDS = 15.0  # CapSource.poll_every_seconds' default
SCHEDULE_SECONDS = 60.0  # EventBridge starts the poller once a minute
POLLER_TIMEOUT_SECONDS = 60.0  # .chalice/config.json, poll_alerts
URGENT_BATCH = 1  # app.py: the urgent lane's batch size, what one Lambda invocation receives
NATIONAL_DELIVERIES = 2_000
NATIONAL_CHANNELS = (3, 2)  # Telegram, Mastodon channels per tenant: 400 tenants x 5
PLATFORM_LATENCY_SECONDS = 0.2
DRAIN_TARGET_SECONDS = 60.0
# Workers per phase and the deliveries each phase drains. One worker at 200 ms a post would need
# minutes for all 2,000, so the small phases drain a share and their rate is what they report.
NATIONAL_PHASES = ((1, 60), (10, 440), (50, 1_500))
WORKER_DEADLINE_SECONDS = 150.0  # a worker stops by itself, whatever happens
READY_TIMEOUT_SECONDS = 30.0

Channels = tuple[int, int]


# -- alerts and tenants ------------------------------------------------------------------------------
def alert_document(number: int) -> bytes:
    """A new red alert for ZONE, from the real DPC sample: its own identifier, valid from now on."""
    now = datetime.now(UTC).replace(microsecond=0)
    text = SAMPLE.read_text(encoding="utf-8")
    for old, new in {
        "DPC_BULLETIN_2026_07_30_5050": f"BENCH_{number:05d}",
        "2026-07-30T15:11:00+02:00": now.isoformat(),
        "2026-07-31T00:00:00+02:00": now.isoformat(),
        "2026-07-31T23:59:59+02:00": (now + timedelta(days=1)).isoformat(),
        "ORDINARIA CRITICITA' PER RISCHIO TEMPORALI / ALLERTA GIALLA": (
            "ELEVATA CRITICITA' PER RISCHIO IDROGEOLOGICO / ALLERTA ROSSA"
        ),
        "<severity>Moderate": "<severity>Extreme",
    }.items():
        if old not in text:
            raise RuntimeError(f"the DPC sample changed: {old!r} is gone")
        text = text.replace(old, new)
    return text.encode()


BENCH_BUDGET = {"posts": 100_000, "per_seconds": 60, "urgent_reserve": 1}


def _tenant(number: int, channels: Channels, source: dict[str, Any] | None) -> dict[str, Any]:
    """A comune in ZONE with its own sandboxed Telegram channels and Mastodon accounts, reading the
    alert `source` (None: none, the national benchmark seeds its deliveries itself)."""
    telegram, mastodon = channels
    chats = [
        {
            "id": f"tg-{i}",
            "platform": "telegram",
            "chat": f"@Comune{number:04d}x{i}",
            "token": f"env:B{number}T{i}",
        }
        for i in range(telegram)
    ]
    accounts = [
        {
            "id": f"ma-{i}",
            "platform": "mastodon",
            "instance": "https://mastodon.invalid",
            "token": f"env:B{number}M{i}",
        }
        for i in range(mastodon)
    ]
    for channel in chats + accounts:
        # The benchmarks post dozens of alerts a minute to the same channels, which a real channel
        # never sees; the default budgets (Telegram: 20 a minute) would make them measure waiting.
        channel["budget"] = BENCH_BUDGET
    tenant: dict[str, Any] = {
        "id": tenant_id(number),
        "name": f"Comune {number}",
        "channels": chats + accounts,
    }
    if source is not None:
        routes = [{"source": source["id"], "channels": [c["id"] for c in chats + accounts]}]
        tenant |= {"sources": [source], "routes": routes, "alerts": {"zones": [ZONE]}}
    return tenant


def tenant_id(number: int) -> str:
    return f"comune-{number:04d}"


@contextmanager
def alert_stack(
    tenants: int,
    channels: Channels,
    *,
    source: dict[str, Any] = CAP_SOURCE,
    listening: int | None = None,
    latency: float = 0.0,
    serve_api: bool = False,
) -> Iterator[LocalStack]:
    """A local stack whose tenants (the first `listening` of them: all by default) read one alert
    source; the CAP feed already serves alert 0. `latency`: the platforms' answer time."""
    listening = tenants if listening is None else listening
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        feeds = folder / "feeds"
        feeds.mkdir()
        (feeds / FEED).write_bytes(alert_document(0))
        config = folder / "alerts.yaml"
        comuni = [_tenant(n, channels, source if n < listening else None) for n in range(tenants)]
        config.write_text(yaml.safe_dump({"version": 1, "tenants": comuni}), encoding="utf-8")
        stack = LocalStack(config, state_dir=folder / "state", persist=False, feeds_dir=feeds)
        stack.sandbox.latency = latency
        try:
            yield stack.start(serve_api=serve_api)
        finally:
            stack.stop()


def _serve(stack: LocalStack, number: int) -> None:
    (stack.feeds_dir / FEED).write_bytes(alert_document(number))


def _expect_posts(stack: LocalStack, before: int, expected: int) -> None:
    made = len(stack.sandbox.posts()) - before
    if made != expected:
        raise RuntimeError(f"benchmark run went wrong: {made} posts, expected {expected}")


def _percentile(values: list[float], share: float) -> float:
    return sorted(values)[round(share * (len(values) - 1))]


def _timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -- 1. latency: published -> posted -----------------------------------------------------------------
# Given the stack and a new alert's number, put the alert where it arrives and return the step that
# takes it from there to every post: the step is what is timed.
Arrival = Callable[[LocalStack, int], Callable[[], None]]


def by_polling(stack: LocalStack, number: int) -> Callable[[], None]:
    """A new CAP document in place; then a poll pass and the urgent lane drained."""
    _serve(stack, number)

    def step() -> None:
        stack.poll_alerts()
        stack.drain()

    return step


def pushed_by(hub: WebSubHub, topic: str) -> Arrival:
    """The hub POSTs the Atom feed, now listing the new alert, to the WebSub route; the route
    fetches the linked CAP document (as for MeteoAlarm) and queues the deliveries."""

    def arrive(stack: LocalStack, number: int) -> Callable[[], None]:
        (stack.feeds_dir / f"cap-{number}.xml").write_bytes(alert_document(number))
        body = _atom(hub, [number])

        def step() -> None:
            if hub.publish(topic, body) != [202]:
                raise RuntimeError("the WebSub route refused the push")
            stack.drain()

        return step

    return arrive


def _atom(hub: WebSubHub, numbers: list[int]) -> bytes:
    """A MeteoAlarm-shaped Atom feed: its hub, and an entry linking each alert's CAP document."""
    entries = "".join(
        f'<entry><cap:identifier>BENCH_{n:05d}</cap:identifier><link type="application/cap+xml" href="cap-{n}.xml"/></entry>'
        for n in numbers
    )
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">'
        f'<title>Allerte</title><link rel="hub" href="{hub.url}"/>{entries}</feed>'
    ).encode()


@contextmanager
def _quiet(stack: LocalStack) -> Iterator[None]:
    """Chalice's local server logs every request on stderr, and its routes print their metrics on
    stdout (Lambda sends both to CloudWatch): into a log file, not over the benchmark table."""
    with (
        (stack.state_dir / "api.log").open("a", encoding="utf-8") as log,
        redirect_stdout(log),
        redirect_stderr(log),
    ):
        yield


def _subscribe(stack: LocalStack, hub: WebSubHub) -> str:
    """The renewal schedule subscribes the Atom feed at its hub, which verifies through the local
    API; returns the topic (the feed's URL: it names no other)."""
    (stack.feeds_dir / ATOM_FEED).write_bytes(_atom(hub, []))
    stack.renew_websub()
    if not all(verification.confirmed for verification in hub.wait_for_verifications(1)):
        raise RuntimeError("the WebSub subscription was not confirmed")
    return f"{stack.feeds.url}/{ATOM_FEED}"


def latency(stack: LocalStack, arrive: Arrival, channels: int) -> dict[str, Any]:
    """Alert published -> all its posts in the sandbox, LATENCY_RUNS times after a warm-up."""
    seconds = []
    for number in range(1, LATENCY_RUNS + 2):
        before = len(stack.sandbox.posts())
        elapsed = _timed(arrive(stack, number))
        _expect_posts(stack, before, channels)
        seconds.append(elapsed)
    seconds = seconds[1:]  # the first run pays for imports and the instance-limits fetch
    return {
        "runs": LATENCY_RUNS,
        "p50_seconds": statistics.median(seconds),
        "p95_seconds": _percentile(seconds, 0.95),
        "max_seconds": max(seconds),
    }


def unchanged_pass(stack: LocalStack) -> dict[str, Any]:
    """One poll pass over an unchanged feed: what the looping poller does 3-4 times a minute."""
    calls = Calls().install()
    log = stack.state_dir / "lambda.log"
    size = log.stat().st_size
    requests = stack.feeds.requests
    runs = [0.0] * 10
    with calls.measure() as counted:
        for run in range(len(runs)):
            runs[run] = _timed(stack.poll_alerts)
    return {
        "handler_seconds": statistics.median(runs),
        "http_requests": (stack.feeds.requests - requests) / len(runs),
        "calls": {name: count / len(runs) for name, count in counted.items()},
        "log_bytes": (log.stat().st_size - size) / len(runs),
    }


# -- 2. the poller's loop against a fake clock ------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def poller_schedule(pass_seconds: float) -> dict[str, Any]:
    """Run the real loop (polling.poll_alerts_until) with a fake clock and passes that take
    `pass_seconds`: when its passes start, when the invocation returns, and the wait for the next
    pass of an alert published at a random moment of the minute."""
    from chalicelib.alerts import polling

    clock, starts = _Clock(), []

    def one_pass() -> dict[str, Any]:
        starts.append(clock.now)
        clock.sleep(pass_seconds)
        return {}

    with (
        mock.patch.object(polling, "poll_alert_sources", one_pass),
        mock.patch.object(polling, "_pause_seconds", lambda: POLL_PERIOD_SECONDS),
        mock.patch.object(polling, "time", SimpleNamespace(sleep=clock.sleep)),
    ):
        polling.poll_alerts_until(lambda: POLLER_TIMEOUT_SECONDS - clock.now)
    gaps = [later - earlier for earlier, later in pairwise([*starts, SCHEDULE_SECONDS])]
    return {
        "pass_starts_seconds": [round(start, 2) for start in starts],
        "passes_per_invocation": len(starts),
        "billed_seconds": clock.now,
        # An alert published at a uniformly random moment waits for the next pass: over a gap g the
        # mean wait is g/2, and gaps are hit in proportion to their length.
        "mean_wait_seconds": sum(gap * gap for gap in gaps) / (2 * SCHEDULE_SECONDS),
        "longest_wait_seconds": max(gaps),
        "nominal_mean_wait_seconds": POLL_PERIOD_SECONDS / 2,
    }


def run_latency() -> dict[str, Any]:
    with alert_stack(1, (3, 2), latency=PLATFORM_LATENCY_SECONDS) as stack:
        polled = latency(stack, by_polling, channels=5)
        idle = unchanged_pass(stack)
    with (
        running_hub(lifetime=HUB_LIFETIME_SECONDS) as hub,
        alert_stack(1, (3, 2), source=ATOM_SOURCE, latency=PLATFORM_LATENCY_SECONDS, serve_api=True) as stack,
        _quiet(stack),
    ):
        pushed = latency(stack, pushed_by(hub, _subscribe(stack, hub)), channels=5)
    return {
        "channels": 5,
        "polling": polled,
        "push": pushed,
        "unchanged_pass": idle,
        # A real pass waits for the alert server too: the allowance the cost estimate uses.
        "poller_schedule": poller_schedule(idle["handler_seconds"] + FEED_REQUEST_SECONDS),
    }


# -- 3. fan-out: one zone alert, 20 tenants x 3 channels ------------------------------------------------
def _aws_calls(counted: Counter[str]) -> dict[str, float]:
    return {name: count for name, count in counted.items() if name.startswith(("dynamodb:", "ddb:", "sqs:"))}


def run_fan_out(tenants: int = 20, channels: Channels = (2, 1)) -> dict[str, Any]:
    from chalicelib.alerts import fanout

    deliveries = tenants * sum(channels)
    # Announced inline, so the poll's calls are the per-tenant announce cost (the same calls an
    # announce job makes for each of its tenants) that cost.py scales; jobs are measured apart.
    with alert_stack(tenants, channels) as stack, mock.patch.object(fanout, "FAN_OUT_ABOVE", tenants):
        by_polling(stack, 0)()  # warm-up: alert 0 goes out to every channel
        calls = Calls().install()
        polls, drains, counted_poll, counted_publish = [], [], Counter[str](), Counter[str]()
        for number in range(1, FAN_OUT_RUNS + 1):
            _serve(stack, number)
            before = len(stack.sandbox.posts())
            with calls.measure() as polled:
                polls.append(_timed(stack.poll_alerts))
            with calls.measure() as published:
                drains.append(_timed(stack.drain))
            _expect_posts(stack, before, deliveries)
            counted_poll.update(polled)
            counted_publish.update(published)
    per_run = {name: count / FAN_OUT_RUNS for name, count in (counted_poll + counted_publish).items()}
    return {
        "tenants": tenants,
        "channels_per_tenant": sum(channels),
        "telegram_per_tenant": channels[0],
        "deliveries": deliveries,
        "runs": FAN_OUT_RUNS,
        "poll_seconds": statistics.median(polls),
        "drain_seconds": statistics.median(drains),
        "total_seconds": statistics.median(p + d for p, d in zip(polls, drains, strict=True)),
        "calls_per_alert": _aws_calls(Counter(per_run)),
        "poll_calls_per_tenant": {
            n: c / (FAN_OUT_RUNS * tenants) for n, c in _aws_calls(counted_poll).items()
        },
        "publish_calls_per_delivery": {
            n: c / (FAN_OUT_RUNS * deliveries) for n, c in _aws_calls(counted_publish).items()
        },
        # Lambda's SQS poller receives each batch and deletes what succeeded: not the runtime's calls,
        # but billed as SQS requests all the same.
        "esm_sqs_requests_per_alert": 2 * math.ceil(deliveries / URGENT_BATCH),
    }


# -- 4. national red alert: 2,000 deliveries, K workers ----------------------------------------------
# moto's SQS scans the whole queue, with several clock reads per message, on every request: with 2,000
# messages waiting each receive takes about a second, and the benchmark would measure moto. Lambda's
# event source, not Banditore, receives and deletes in AWS, so here the harness plays it: the 2,000
# delivery messages (bodies made by the runtime's DeliveryMessage) are handed to the workers in
# batches of URGENT_BATCH, and each worker runs the real handler on them. Only the handler's own SQS
# calls (re-queues, retry delays) go to moto, and none are expected: any shortfall fails the run.
Batch = list[dict[str, Any]]


def _as_new_container() -> None:
    """A forked worker is a new Lambda container: it must not share the parent's pooled connections
    (to moto, to the sandbox), so its AWS clients and its HTTP session are made anew."""
    from chalicelib import aws
    from chalicelib.channels import registry

    aws.client.cache_clear()
    registry._shared_session.cache_clear()


def _worker(stack: LocalStack, batches: list[Batch], taken: Any, failed: Any, ready: Any) -> None:
    """One container: run publish_urgent on the next batch nobody has taken, until none is left."""
    _as_new_container()
    arn = stack.resources.queue_arns["urgent"] if stack.resources else ""
    ready.wait(READY_TIMEOUT_SECONDS)
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(batches):
            return
        answer = stack.invoke("publish_urgent", sqs_event(batches[index], arn)) or {}
        with failed.get_lock():
            failed.value += len(answer.get("batchItemFailures", []))


def _phase(stack: LocalStack, workers: int, batches: list[Batch]) -> dict[str, Any]:
    """K workers drain `batches`; timed from the moment all of them are ready."""
    fork = multiprocessing.get_context("fork")  # each worker a copy of the started stack
    taken, failed, ready = fork.Value("i", 0), fork.Value("i", 0), fork.Barrier(workers + 1)
    processes = [
        fork.Process(target=_worker, args=(stack, batches, taken, failed, ready), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait(READY_TIMEOUT_SECONDS)  # a worker that never gets ready breaks it: no hang
    began = time.perf_counter()
    for process in processes:
        process.join(WORKER_DEADLINE_SECONDS + 10)
    elapsed = time.perf_counter() - began
    for process in processes:
        if process.is_alive():
            process.terminate()  # only our own workers, by their handles
    deliveries = sum(len(batch) for batch in batches)
    if failed.value or any(process.exitcode for process in processes):
        codes = [process.exitcode for process in processes]
        raise RuntimeError(
            f"{workers} workers: {failed.value} failed records, exit codes {set(codes)}; "
            f"the handlers logged {_troubles(stack)}"
        )
    return {
        "workers": workers,
        "deliveries": deliveries,
        "seconds": elapsed,
        "deliveries_per_second": deliveries / elapsed,
        "seconds_per_delivery_per_worker": workers * elapsed / deliveries,
    }


def _troubles(stack: LocalStack) -> dict[str, int]:
    """The warnings and errors the handlers logged, by message and reason: why a run failed."""
    found: Counter[str] = Counter()
    for line in (stack.state_dir / "lambda.log").read_text(encoding="utf-8").splitlines():
        if '"level":"WARNING"' in line or '"level":"ERROR"' in line:
            record = json.loads(line)
            found[f"{record.get('message')} ({record.get('reason') or record.get('why')})"] += 1
    return dict(found.most_common(5))


def run_national() -> dict[str, Any]:
    telegram, mastodon = NATIONAL_CHANNELS
    tenants = NATIONAL_DELIVERIES // (telegram + mastodon)
    with alert_stack(tenants, NATIONAL_CHANNELS, latency=PLATFORM_LATENCY_SECONDS, listening=1) as stack:
        # Warm the parent (the handlers' imports) so every forked worker starts warm, as a reused
        # container does; cold starts are measured by the cold-start benchmark.
        import chalicelib.publishing.publisher  # noqa: F401

        polled = stack.poll_alerts()
        messages = _seed(stack, polled["feeds"][0]["outcomes"][0]["announcement"])
        batches = [messages[i : i + URGENT_BATCH] for i in range(0, len(messages), URGENT_BATCH)]
        if sum(share for _, share in NATIONAL_PHASES) != len(messages):
            raise RuntimeError(f"the phases do not share out all {len(messages)} deliveries")
        phases, taken = [], 0
        for workers, share in NATIONAL_PHASES:
            phases.append(_phase(stack, workers, batches[taken : taken + share // URGENT_BATCH]))
            taken += share // URGENT_BATCH
        posted = len(stack.sandbox.posts())
    if posted != NATIONAL_DELIVERIES:
        raise RuntimeError(f"national run went wrong: {posted} posts of {NATIONAL_DELIVERIES}")
    return {
        "tenants": tenants,
        "deliveries": NATIONAL_DELIVERIES,
        "platform_latency_seconds": PLATFORM_LATENCY_SECONDS,
        "batch_size": URGENT_BATCH,
        "phases": phases,
        "drain_seconds": sum(phase["seconds"] for phase in phases),
        **_needed_concurrency(phases[0]["seconds_per_delivery_per_worker"]),
    }


def _seed(stack: LocalStack, announcement_id: str) -> list[dict[str, Any]]:
    """The 2,000 delivery messages: the first tenant's, queued by the poller, and the same
    announcement given to every other tenant with a pending delivery per channel, built by the
    runtime's own functions. Not through the poller: moto copies the whole table for every item of
    every transaction, so 400 announcements take minutes and gigabytes locally (DynamoDB bills a
    transaction by its items). The poller's cost per tenant is what the fan-out benchmark counts."""
    from dataclasses import replace

    from chalicelib.clock import utcnow
    from chalicelib.config.loader import current_config
    from chalicelib.publishing.lanes import DeliveryMessage
    from chalicelib.storage import dynamo
    from chalicelib.storage.announcements import announcement_item, get_announcement
    from chalicelib.storage.deliveries import delivery_from_item, delivery_item

    lead = get_announcement(tenant_id(0), announcement_id)
    if lead is None:
        raise RuntimeError("the poller announced nothing")
    now, others = utcnow(), current_config().tenants[1:]
    announcements = [announcement_item(replace(lead, tenant=tenant.id), now) for tenant in others]
    alike: dict[str, Any] = {"announcement_id": lead.id, "lane": "urgent", "created": now}
    deliveries = [
        delivery_item(tenant=tenant.id, channel=channel.id, platform=channel.platform, **alike)
        for tenant in others
        for channel in tenant.channels
    ]
    rows = announcements + deliveries
    for start in range(0, len(rows), 25):  # BatchWriteItem's limit
        puts = [{"PutRequest": {"Item": dynamo.to_dynamo(row)}} for row in rows[start : start + 25]]
        dynamo.drain(dynamo.client().batch_write_item, {dynamo.table_name(): puts}, "UnprocessedItems")
    bodies = [DeliveryMessage.of(delivery_from_item(row)).to_json() for row in deliveries]
    return _queued(stack) + [_message(body) for body in bodies]


def _queued(stack: LocalStack) -> list[dict[str, Any]]:
    """What the poller put on the urgent lane (the first tenant's deliveries), taken off it."""
    sqs = boto3.client("sqs")
    lane = stack.resources.queue_urls["urgent"] if stack.resources else ""
    received = sqs.receive_message(QueueUrl=lane, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return list(received.get("Messages", []))


def _message(body: str) -> dict[str, Any]:
    """An SQS message as ReceiveMessage returns it, for the harness's own event source."""
    handle = uuid.uuid4().hex
    return {"MessageId": handle, "ReceiptHandle": f"bench-{handle}", "Body": body, "Attributes": {}}


def _needed_concurrency(seconds_per_delivery: float) -> dict[str, Any]:
    """Workers that drain NATIONAL_DELIVERIES within DRAIN_TARGET_SECONDS if each works as the
    lone worker did (no contention): in AWS every container has its own CPU."""
    rate = NATIONAL_DELIVERIES / DRAIN_TARGET_SECONDS
    return {
        "seconds_per_delivery_one_worker": seconds_per_delivery,
        "workers_for_2000_in_60s": math.ceil(rate * seconds_per_delivery),
    }


# -- 5. national announce: one feed, 500 comuni ------------------------------------------------------
ANNOUNCE_TENANTS = 500


def run_national_announce(tenants: int = ANNOUNCE_TENANTS) -> dict[str, Any]:
    from chalicelib.alerts import fanout

    with alert_stack(tenants, (1, 0)) as stack:
        calls = Calls().install()
        with calls.measure() as announced:
            announce_seconds = _timed(stack.poll_alerts)
        jobs = _queued_jobs(stack)
        idle = [0.0] * 5
        with calls.measure() as unchanged:
            for run in range(len(idle)):
                idle[run] = _timed(stack.poll_alerts)
        arn = stack.resources.queue_arns["urgent"] if stack.resources else ""
        with calls.measure() as one_job:
            job_seconds = _timed(lambda: stack.invoke("publish_urgent", sqs_event(jobs[:1], arn)))
    # One slice's comuni announced inline, as the poller announced every comune before the fan-out
    # (on a fresh table: moto's transactions slow down as the table grows, DynamoDB's do not).
    inline_tenants = fanout.MEMBERS_PER_JOB
    with (
        alert_stack(inline_tenants, (1, 0)) as stack,
        mock.patch.object(fanout, "FAN_OUT_ABOVE", inline_tenants),
    ):
        calls = Calls().install()
        with calls.measure() as inline:
            inline_seconds = _timed(stack.poll_alerts)
    expected_jobs = math.ceil(tenants / fanout.MEMBERS_PER_JOB)
    if len(jobs) != expected_jobs or one_job["dynamodb:TransactWriteItems"] != fanout.MEMBERS_PER_JOB:
        raise RuntimeError(
            f"national announce went wrong: {len(jobs)} jobs, the first announced {dict(one_job)}"
        )
    return {
        "tenants": tenants,
        "members_per_job": fanout.MEMBERS_PER_JOB,
        "jobs": len(jobs),
        "fan_out_pass_seconds": announce_seconds,
        "fan_out_pass_calls": _aws_calls(announced),
        "unchanged_pass_seconds": statistics.median(idle),
        "unchanged_pass_calls": {name: count / len(idle) for name, count in _aws_calls(unchanged).items()},
        "job_seconds": job_seconds,
        "job_calls": _aws_calls(one_job),
        "inline_tenants": inline_tenants,
        "inline_seconds": inline_seconds,
        "inline_calls": _aws_calls(inline),
        # Before the fan-out the poller announced every comune in turn: a slice's time, once per slice.
        "inline_all_seconds_estimate": inline_seconds * tenants / inline_tenants,
    }


def _queued_jobs(stack: LocalStack) -> list[dict[str, Any]]:
    """The announce jobs the pass queued, taken off the urgent lane (as Lambda's poller would)."""
    sqs = boto3.client("sqs")
    lane = stack.resources.queue_urls["urgent"] if stack.resources else ""
    jobs: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=lane, MaxNumberOfMessages=10).get("Messages", []):
        jobs.extend(batch)
    return jobs


def run() -> dict[str, Any]:
    return {
        "latency": run_latency(),
        "fan_out": run_fan_out(),
        "national": run_national(),
        "national_announce": run_national_announce(),
    }
