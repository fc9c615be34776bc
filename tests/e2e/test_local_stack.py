"""End to end on the local stack, as a newcomer runs it: sample feeds -> sandbox Telegram and Mastodon."""

from __future__ import annotations

import json
import urllib.request
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


def test_demo_posts_each_new_item_once_per_channel_and_nothing_on_a_second_poll(tmp_path: Path) -> None:
    with local_stack(DEMO, state_dir=tmp_path, persist=False) as stack:
        result = stack.poll()
        stack.drain()
        deliveries = _deliveries(stack, result)
        # comune-esempio: 3 items x (telegram, mastodon); comune-vicino: 2 items x mastodon
        assert len(deliveries) == 3 * 2 + 2
        assert {d.status for d in deliveries} == {"posted"}
        assert all(d.remote_id for d in deliveries)
        posts = _posts(stack)
        assert len(posts) == len(deliveries)
        assert sorted(p["id"] for p in posts) == sorted(d.remote_id.split(":")[-1] for d in deliveries)

        feed_requests = stack.feeds.requests
        again = stack.poll()
        stack.drain()
        # one conditional GET per source, answered 304: nothing parsed, nothing posted
        assert [s["status"] for s in again["sources"]] == ["unchanged", "unchanged"]
        assert stack.feeds.requests == feed_requests + 2
        assert len(_posts(stack)) == len(posts)


def test_a_second_run_on_the_same_state_posts_nothing(tmp_path: Path) -> None:
    with local_stack(DEMO, state_dir=tmp_path) as first:
        first.poll()
        first.drain()
        posted = len(_posts(first))
    assert posted == 8
    with local_stack(DEMO, state_dir=tmp_path) as second:
        result = second.poll()
        second.drain()
        # the validators were persisted with the table: the feeds answer 304
        assert [s["status"] for s in result["sources"]] == ["unchanged", "unchanged"]
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
