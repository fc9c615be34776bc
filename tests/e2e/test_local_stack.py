"""End to end on the local stack, as a newcomer runs it: sample feeds -> a sandbox channel of every type."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from devtools.stack import ROOT, LocalStack, local_stack

DEMO = ROOT / "config" / "demo.yaml"
pytestmark = pytest.mark.slow


def _posts(stack: LocalStack) -> list[dict]:
    with urllib.request.urlopen(f"{stack.sandbox.url}/_sandbox/posts", timeout=5) as response:
        return json.load(response)


def _deliveries(stack: LocalStack, result: dict) -> list:
    from chalicelib.storage.deliveries import deliveries_of

    return [
        d
        for source in result["sources"]
        for announcement in source.get("announcements", [])
        for d in deliveries_of(source["tenant"], announcement)
    ]


def _expected_posts(deliveries: list) -> Counter[str]:
    """Posts each platform should hold: one per delivery, plus the follow-ups of a long text that
    became a thread (rendered again here, offline, the way the publisher rendered it)."""
    from chalicelib.channels.registry import adapter_for
    from chalicelib.config.loader import current_config
    from chalicelib.storage.announcements import get_announcement

    expected: Counter[str] = Counter()
    for d in deliveries:
        channel = current_config().tenant(d.tenant).channel(d.channel)
        post = adapter_for(channel, offline=True).render(get_announcement(d.tenant, d.announcement_id))
        expected[d.platform] += 1 + len(post.thread)
    return expected


def test_demo_posts_each_new_item_once_per_channel_and_nothing_on_a_second_poll(tmp_path: Path) -> None:
    with local_stack(DEMO, state_dir=tmp_path, persist=False) as stack:
        result = stack.poll()
        stack.drain()
        deliveries = _deliveries(stack, result)
        # comune-esempio: 3 news x 9 channels (Instagram takes only the photo source) and 2 photo
        # items x 10 channels; comune-vicino: 2 items x mastodon
        assert len(deliveries) == 3 * 9 + 2 * 10 + 2
        assert {d.status for d in deliveries} == {"posted"}
        assert all(d.remote_id for d in deliveries)
        assert len({d.platform for d in deliveries}) == 10
        posts = _posts(stack)
        assert Counter(p["platform"] for p in posts) == _expected_posts(deliveries)  # nothing twice
        mastodon = {d.remote_id for d in deliveries if d.platform == "mastodon"}
        assert mastodon <= {p["id"] for p in posts if p["platform"] == "mastodon"}

        feed_requests = stack.feeds.requests
        again = stack.poll()
        stack.drain()
        # one conditional GET per source, answered 304: nothing parsed, nothing posted
        assert [s["status"] for s in again["sources"]] == ["unchanged"] * 3
        assert stack.feeds.requests == feed_requests + 3
        assert len(_posts(stack)) == len(posts)


def test_a_second_run_on_the_same_state_posts_nothing(tmp_path: Path) -> None:
    with local_stack(DEMO, state_dir=tmp_path) as first:
        first.poll()
        first.drain()
        posted = len(_posts(first))
    assert posted >= 49
    with local_stack(DEMO, state_dir=tmp_path) as second:
        result = second.poll()
        second.drain()
        # the validators were persisted with the table: the feeds answer 304
        assert [s["status"] for s in result["sources"]] == ["unchanged"] * 3
        assert _posts(second) == []


def test_health_route_reports_sources(tmp_path: Path) -> None:
    stack = LocalStack(DEMO, state_dir=tmp_path, persist=False).start(serve_api=True)
    try:
        stack.poll()
        with urllib.request.urlopen(f"{stack.api_url}/health", timeout=5) as response:
            health = json.load(response)
        assert health["status"] == "ok"
        assert {t["id"] for t in health["tenants"]} == {"comune-esempio", "comune-vicino"}
        assert all(s["health"] == "ok" for t in health["tenants"] for s in t["sources"])
    finally:
        stack.stop()
