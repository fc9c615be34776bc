"""What an alert feed's readers hand to its announcers, in DynamoDB (moto): parsed-alerts snapshots
and pushed bodies, gzip'd, named by content, refused when too large for an item; the lane
messages that name them, small references whatever the feed's size; and the feed's state row, never
overwritten by a write based on an older read."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.alerts.cap import parse_cap
from chalicelib.publishing.lanes import AnnounceJob, BadMessage, PushJob, parse_message
from chalicelib.storage import alert_feeds, keys
from chalicelib.storage.alert_feeds import (
    MAX_ITEM_BYTES,
    feed_key,
    get_pushed_body,
    get_snapshot,
    put_pushed_body,
    put_snapshot,
)
from chalicelib.storage.source_state import (
    SourceState,
    feed_state,
    forget_members,
    save_feed_state,
    save_source_state,
)

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "alerts" / "nws-cap-update-multi-polygon.xml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FEED = feed_key("https://feeds.meteoalarm.org/feeds/meteoalarm-legacy-atom-italy", "meteoalarm_atom")


@pytest.mark.usefixtures("dynamo_table")
def test_a_snapshot_comes_back_equal_and_is_named_by_its_content() -> None:
    alerts = parse_cap(SAMPLE.read_bytes(), source_url="https://example.org/cap.xml")

    key = put_snapshot(FEED, alerts, NOW)

    assert key is not None
    assert put_snapshot(FEED, alerts, NOW) == key  # the same content, the same item
    alert_feeds._snapshots.clear()  # read from the table, not from this process's memory
    assert get_snapshot(FEED, key) == alerts
    assert get_snapshot(FEED, "0" * 32) is None
    assert get_snapshot(feed_key("https://other.example/feed", "cap"), key) is None


@pytest.mark.usefixtures("dynamo_table")
def test_a_pushed_body_comes_back_and_an_incompressible_one_is_refused() -> None:
    body = b"<feed>" + b"<entry>same</entry>" * 50_000 + b"</feed>"  # ~1 MB, compresses well
    key = put_pushed_body(FEED, body, NOW)
    assert key is not None
    assert get_pushed_body(FEED, key) == body

    noise = random.Random(3).randbytes(MAX_ITEM_BYTES + 1)
    assert put_pushed_body(FEED, noise, NOW) is None


def test_alert_jobs_are_small_references() -> None:
    jobs = [AnnounceJob(FEED, "a" * 32, 157, "c" * 16), PushJob(FEED, "b" * 32), PushJob(FEED, None)]
    for job in jobs:
        assert len(job.to_json()) < 200
        assert parse_message(job.to_json()) == job
    # A message queued before jobs carried the members' digest: the job sees None (and checks it).
    legacy = jobs[0].to_json().replace(', "members": "' + "c" * 16 + '"', "")
    assert parse_message(legacy) == AnnounceJob(FEED, "a" * 32, 157, None)
    with pytest.raises(BadMessage):
        parse_message(jobs[0].to_json().replace("157", "-1"))
    with pytest.raises(BadMessage):
        parse_message(jobs[1].to_json().replace(FEED, "../x"))


@pytest.mark.usefixtures("dynamo_table")
def test_a_feed_state_written_since_it_was_read_is_never_overwritten() -> None:
    never_written = feed_state(FEED)
    assert save_feed_state(never_written.succeeded(NOW, members_digest="a"))
    read = feed_state(FEED)
    assert not save_feed_state(never_written.succeeded(NOW, members_digest="b"))  # another pass's

    forget_members(FEED)  # an announce job of the pass that read `read`, before the pass saved it
    assert not save_feed_state(read.succeeded(NOW, members_digest="a"))
    assert feed_state(FEED).members_digest is None
    assert save_feed_state(feed_state(FEED).succeeded(NOW, members_digest="a"))  # the next pass's

    forget_members("another-feed")  # a job before its feed's first pass saved anything
    created = feed_state("another-feed")
    assert (created.tenant, created.source, created.row_version) == (keys.ALERT_FEEDS, "another-feed", 1)
    # A row saved without a version (before versions were kept) counts as version 0.
    save_source_state(SourceState(keys.ALERT_FEEDS, "old-feed"))
    assert save_feed_state(feed_state("old-feed").succeeded(NOW))
