"""Polling on the local stack: bad feeds fail alone, dedupe survives guid changes and reordering,
no backlog floods, unchanged polls write nothing, lost messages are sent again."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3

from chalicelib.config.loader import current_config
from chalicelib.publishing.housekeeping import LOST_AFTER, requeue_lost_deliveries
from chalicelib.sources.polling import SOURCE_TIME_BUDGET_SECONDS, poll_all_sources, poll_source
from chalicelib.storage import dynamo
from chalicelib.storage.seen import CONTENT_SEEN_TTL
from chalicelib.storage.source_state import get_source_state
from tests.conftest import FEEDS, tenant
from tests.feedserver import news_items, rss_document

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _items(count: int, *, hours_ago: float = 1, name: str = "") -> list[dict[str, str]]:
    """news_items with recent dates, newest first, one minute apart; a `name` makes them other
    items than the default ones (their own guid, title and link)."""
    now = datetime.now(UTC) - timedelta(hours=hours_ago)
    items = news_items(count)
    slug = name.lower().replace(" ", "-")
    for index, item in enumerate(items):
        item["pubDate"] = format_datetime(now - timedelta(minutes=index))
        if name:
            item["guid"] = f"{slug}-{index}"
            item["title"] = f"{name} {index}"
            item["link"] = f"https://www.comune.valdimonte.example/{slug}-{index}"
    return items


def _source(result: dict[str, Any], source: str = "notizie") -> dict[str, Any]:
    return next(s for s in result["sources"] if s["source"] == source)


def test_broken_feeds_fail_alone_with_their_reason(make_stack: Any) -> None:
    bad = {
        "bomb": ("xml-bomb.xml", "unsafe_xml"),
        "xxe": ("xxe.xml", "unsafe_xml"),
        "rotto": ("malformed.xml", "malformed"),
        "pagina": ("not-a-feed.html", "not_a_feed"),
        "sparito": ("missing.xml", "http_status"),
        "enorme": ("huge.xml", "too_large"),
    }
    sources = [{"id": "notizie", "url": "https://sample.feeds.invalid/feed.rss"}] + [
        {"id": name, "url": f"https://sample.feeds.invalid/{file}"} for name, (file, _) in bad.items()
    ]
    feeds = {file: (FEEDS / file).read_bytes() for file, _ in bad.values() if (FEEDS / file).is_file()}
    feeds["huge.xml"] = b"<rss>" + b" " * 6_000_000  # over the default 5 MB body limit
    stack = make_stack(
        [tenant(sources=sources)], {"feed.rss": rss_document(_items(3)), **feeds}, serve_api=True
    )

    result = stack.poll()
    stack.drain()

    assert _source(result)["new"] == 3
    assert len(stack.sandbox.posts()) == 3 * 2
    for name, (_, reason) in bad.items():
        assert (_source(result, name)["status"], _source(result, name)["reason"]) == ("error", reason)
        state = get_source_state("comune-prova", name)
        assert (state.consecutive_failures, state.last_error_reason) == (1, reason)
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert "root:x:0:0" not in log and "lol9" not in log  # no entity was ever expanded
    with urllib.request.urlopen(f"{stack.api_url}/health", timeout=5) as response:
        health = json.load(response)
    assert health["status"] == "degraded"
    assert {s["id"]: s["health"] for s in health["tenants"][0]["sources"]} == {
        "notizie": "ok",
        **dict.fromkeys(bad, "failing"),
    }


def test_dedupe_survives_new_guids_new_links_and_reordering(make_stack: Any, tmp_path: Any) -> None:
    items = _items(4)
    stack = make_stack([tenant()], {"feed.rss": rss_document(items)})
    assert _source(stack.poll())["new"] == 4

    reissued = [dict(item) for item in reversed(items)]
    for item in reissued[:2]:
        item["guid"] = "nuovo-" + item["guid"]  # the CMS changed its guids...
    for item in reissued[2:]:  # ...and the links of the others
        item["link"] = item["link"].replace("?utm_source=rss", "?utm_source=newsletter#top")
    fresh = _items(1, hours_ago=0, name="Nuova notizia")
    (tmp_path / "feeds" / "feed.rss").write_bytes(rss_document([*fresh, *reissued]))

    result = stack.poll()
    stack.drain()

    assert _source(result)["new"] == 1
    assert len(stack.sandbox.posts()) == (4 + 1) * 2


def test_first_poll_marks_history_seen_and_old_items_are_never_posted(make_stack: Any, tmp_path: Any) -> None:
    stack = make_stack(
        [
            tenant(
                sources=[
                    {
                        "id": "notizie",
                        "url": "https://sample.feeds.invalid/feed.rss",
                        "first_run": "mark_seen",
                        "max_age_hours": 24,
                    }
                ]
            )
        ],
        {"feed.rss": rss_document(_items(5))},
    )
    first = _source(stack.poll())
    assert (first["new"], first["skipped"]) == (0, {"first_run": 5})

    old = _items(2, hours_ago=48, name="Notizia vecchia")
    new = _items(1, hours_ago=0, name="Notizia nuova")
    (tmp_path / "feeds" / "feed.rss").write_bytes(rss_document([*new, *old, *_items(5)]))
    second = _source(stack.poll())
    stack.drain()

    assert (second["new"], second["skipped"]) == (1, {"too_old": 2})
    assert len(stack.sandbox.posts()) == 2


def test_a_burst_goes_out_a_few_items_per_poll_oldest_first_and_none_is_lost(make_stack: Any) -> None:
    source = {
        "id": "notizie",
        "url": "https://sample.feeds.invalid/feed.rss",
        "first_run": "mark_seen",
        "max_items_per_poll": 2,
    }
    stack = make_stack([tenant(sources=[source])], {"feed.rss": rss_document(_items(1))})
    stack.poll()
    burst = _items(6, hours_ago=0, name="Raffica")
    (stack.feeds_dir / "feed.rss").write_bytes(rss_document(burst))

    news = [_source(stack.poll()) for _ in range(4)]
    stack.drain()

    assert [s["new"] for s in news] == [2, 2, 2, 0]
    assert [s.get("skipped", {}).get("deferred", 0) for s in news] == [4, 2, 0, 0]
    assert news[-1]["status"] == "unchanged"  # all handled: back to conditional GETs
    telegram = [p["text"] for p in stack.sandbox.posts("telegram")]
    assert len(telegram) == 6
    # oldest first: burst items are newest first in the feed, so "Raffica 4" goes out before "Raffica 0"
    order = [next(n for n in range(6) if f"Raffica {n}" in text) for text in telegram]
    assert order == sorted(order, reverse=True)


def test_an_unchanged_poll_is_one_conditional_get_and_no_write(make_stack: Any) -> None:
    stack = make_stack([tenant()], {"feed.rss": rss_document(_items(2))})
    stack.poll()
    stack.poll()  # records the validators of a quiet feed
    operations: list[str] = []
    dynamo.client().meta.events.register(
        "before-call.dynamodb", lambda model, **_: operations.append(model.name)
    )
    requests_before = stack.feeds.requests

    result = stack.poll()

    assert _source(result)["status"] == "unchanged"
    assert stack.feeds.requests - requests_before == 1
    assert not WRITES & set(operations), operations


def test_a_delivery_whose_message_was_lost_is_queued_again(make_stack: Any) -> None:
    stack = make_stack([tenant()], {"feed.rss": rss_document(_items(1))})
    stack.poll()
    boto3.client("sqs").purge_queue(
        QueueUrl=stack.resources.queue_urls["normal"]
    )  # the send "never happened"
    assert stack.drain() == 0

    assert requeue_lost_deliveries("comune-prova", datetime.now(UTC)) == 0  # too early to call it lost
    assert requeue_lost_deliveries("comune-prova", datetime.now(UTC) + LOST_AFTER + timedelta(seconds=1)) == 2
    stack.drain()

    assert len(stack.sandbox.posts()) == 2


def test_items_sharing_a_listing_link_are_still_told_apart(make_stack: Any) -> None:
    items = _items(3, hours_ago=0, name="Avviso")
    for item in items:
        item["link"] = (
            "https://www.comune.valdimonte.example/notizie"  # a CMS that links every item to its list
        )
    stack = make_stack([tenant()], {"feed.rss": rss_document(items)})

    assert _source(stack.poll())["new"] == 3


def test_the_same_words_are_a_repost_within_days_and_a_new_notice_after(make_stack: Any) -> None:
    """A CMS re-publishing an item under a new guid and link is caught by the content key; a notice
    the comune repeats in the same words a week later ("Mercato sospeso") goes out again."""
    stack = make_stack([tenant()], {"feed.rss": rss_document(_items(1, hours_ago=0, name="Mercato sospeso"))})
    assert _source(stack.poll())["new"] == 1
    comune = current_config().tenant("comune-prova")
    source = comune.source("notizie")
    now = datetime.now(UTC)

    def republished(week: int) -> None:
        repeat = _items(1, hours_ago=0, name="Mercato sospeso")
        repeat[0] |= {
            "guid": f"settimana-{week}",
            "link": f"https://www.comune.valdimonte.example/mercato-{week}",
        }
        (stack.feeds_dir / "feed.rss").write_bytes(rss_document(repeat))

    republished(1)
    assert poll_source(comune, source, now + timedelta(hours=2)).new == 0
    republished(2)
    assert poll_source(comune, source, now + CONTENT_SEEN_TTL + timedelta(hours=1)).new == 1


def test_a_new_item_linking_to_the_same_listing_page_as_an_old_one_is_posted(make_stack: Any) -> None:
    first = _items(1, hours_ago=0, name="Avviso vecchio")
    first[0]["link"] = "https://www.comune.valdimonte.example/avvisi"
    stack = make_stack([tenant()], {"feed.rss": rss_document(first)})
    assert _source(stack.poll())["new"] == 1

    later = _items(1, hours_ago=0, name="Avviso nuovo")  # its own guid and text, the same listing link
    later[0]["link"] = "https://www.comune.valdimonte.example/avvisi"
    (stack.feeds_dir / "feed.rss").write_bytes(rss_document(later))

    result = _source(stack.poll())
    assert result["new"] == 1, str(result)


def test_an_item_without_identity_is_skipped_and_the_rest_go_out(make_stack: Any) -> None:
    items = _items(2, hours_ago=0, name="Notizia")
    items.append({"link": "https://www.comune.valdimonte.example/"})  # no guid, a home-page link, no text
    stack = make_stack([tenant()], {"feed.rss": rss_document(items)})

    result = _source(stack.poll())

    assert (result["status"], result["new"], result["skipped"]) == ("polled", 2, {"no_identity": 1})


def test_sources_not_started_when_time_runs_out_wait_for_the_next_run(make_stack: Any) -> None:
    make_stack([tenant()], {"feed.rss": rss_document(_items(1))})

    result = poll_all_sources(seconds_left=SOURCE_TIME_BUDGET_SECONDS - 1)

    assert [(s["status"], s["reason"]) for s in result["sources"]] == [("deferred", "out_of_time")]
    assert get_source_state("comune-prova", "notizie").last_poll is None
