"""The inbox store against DynamoDB in moto: exactly-once recording under replays and racing
workers, threading, reopening without inflating the figures, list pages (one Query each, filters,
cursors), tenant isolation, retention attributes, the SLA check and the link from posts."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import observability as obs
from chalicelib.clock import epoch, iso
from chalicelib.config.models import Config, InboxConfig, Tenant
from chalicelib.inbox import figures, store
from chalicelib.inbox.sla import check_sla
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import deliveries_of
from tests.conftest import FEEDS, tenant
from tests.integration.inbox_support import (
    HOURS,
    MONDAY_9,
    TENANT,
    all_items,
    inbound,
    record,
    reply,
)

MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _table(request: pytest.FixtureRequest) -> None:
    """A fresh table for every test, except the one that runs a whole local stack (its own)."""
    if "make_stack" not in request.fixturenames:
        request.getfixturevalue("dynamo_table")


def open_ids(**filters: Any) -> list[str]:
    return [s.id for s in store.list_conversations(TENANT, status="open", limit=100, **filters).items]


# ---- exactly once -----------------------------------------------------------------------------


def test_a_replayed_message_is_recorded_once() -> None:
    first = record(inbound("m1"))
    again = record(inbound("m1"))

    assert (first.created_conversation, first.duplicate) == (True, False)
    assert again.duplicate and not again.created_conversation
    assert again.message == first.message
    assert again.conversation == first.conversation  # nothing was written
    assert len(store.messages(TENANT, first.conversation.id).items) == 1


def _race(first: Any, second: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Run `first` in a worker that reads the conversation, then waits while `second` runs to the
    end: the worker writes from a stale read, as a slower Lambda would."""
    real_read = store.get_conversation
    worker_read, go_on = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def stale_read(tenant: str, conversation_id: str) -> Any:
        found = real_read(tenant, conversation_id)
        if threading.current_thread() is worker and not worker_read.is_set():
            worker_read.set()
            go_on.wait(10)
        return found

    monkeypatch.setattr(store, "get_conversation", stale_read)
    worker = threading.Thread(target=lambda: results.update(first=first()))
    worker.start()
    assert worker_read.wait(10)
    results["second"] = second()
    go_on.set()
    worker.join(10)
    return results["first"], results["second"]


@pytest.mark.parametrize("existing", [False, True], ids=["first-messages", "later-messages"])
def test_racing_messages_of_one_citizen_make_one_conversation_and_lose_nothing(
    existing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if existing:
        record(inbound("m0", at=MONDAY_9 - MINUTE))
    a, b = _race(
        lambda: record(inbound("m1", text="Via Roma è allagata")),
        lambda: record(inbound("m2", at=MONDAY_9 + MINUTE)),
        monkeypatch,
    )

    assert a.conversation.id == b.conversation.id
    assert [a.created_conversation, b.created_conversation] == ([False, False] if existing else [False, True])
    conversation = store.get_conversation(TENANT, a.conversation.id)
    assert conversation is not None
    assert conversation.message_count == 2 + existing
    assert conversation.version == 2 + existing
    assert len(store.messages(TENANT, conversation.id).items) == 2 + existing
    # One list row per list, for the latest state (the loser's retry replaced the stale row).
    rows = [i for i in all_items() if i["pk"] == keys.inbox_list_pk(TENANT, "status=open")]
    assert [r["last_activity_at"] for r in rows] == [iso(conversation.last_activity_at)]
    fig_rows = [i for i in all_items() if i["pk"].startswith(f"T#{TENANT}#FIG#")]
    assert len(fig_rows) == 1  # one conversation, one figures row


def test_an_answer_with_an_id_is_recorded_once() -> None:
    conversation = record(inbound("m1")).conversation
    first = reply(conversation.id, MONDAY_9 + MINUTE, message_id="auto-m1", automatic=True, author="faq")
    again = reply(conversation.id, MONDAY_9 + 2 * MINUTE, message_id="auto-m1", automatic=True, author="faq")

    assert not first.duplicate and again.duplicate
    assert again.message == first.message
    assert store.get_conversation(TENANT, conversation.id).message_count == 2  # type: ignore[union-attr]


# ---- threading --------------------------------------------------------------------------------


def test_comments_thread_per_post_and_link_to_the_announcement() -> None:
    store.link_post(TENANT, "facebook", "page_post_1", "20261123T080000ann", now=MONDAY_9)
    facebook = {"channel": "facebook", "platform": "facebook", "kind": "comment"}
    under_1 = record(inbound("c1", post="page_post_1", **facebook)).conversation
    again_1 = record(inbound("c2", post="page_post_1", at=MONDAY_9 + MINUTE, **facebook)).conversation
    under_2 = record(inbound("c3", post="page_post_2", **facebook)).conversation
    direct = record(inbound("d1", channel="facebook", platform="facebook")).conversation

    assert under_1.id == again_1.id
    assert len({under_1.id, under_2.id, direct.id}) == 3
    assert (under_1.announcement_id, under_2.announcement_id) == ("20261123T080000ann", None)
    about = store.conversations_about(TENANT, "20261123T080000ann")
    assert [c.id for c in about.items] == [under_1.id]
    assert store.announcement_for(TENANT, "facebook", "page_post_1") == "20261123T080000ann"
    assert store.announcement_for(TENANT, "telegram", "page_post_1") is None


def test_a_late_message_counts_without_replacing_the_latest() -> None:
    record(inbound("m2", text="seconda", at=MONDAY_9 + 5 * MINUTE))
    late = record(inbound("m1", text="prima", at=MONDAY_9)).conversation

    assert late.snippet == "seconda" and late.message_count == 2
    assert [m.text for m in store.messages(TENANT, late.id).items] == ["prima", "seconda"]


# ---- life cycle and figures -----------------------------------------------------------------


def test_reopening_never_inflates_first_response_or_resolution() -> None:
    conversation = record(inbound("m1")).conversation
    # Automatic answers and notes are not a response.
    reply(conversation.id, MONDAY_9 + MINUTE, automatic=True, author="faq", message_id="auto-m1")
    noted = reply(conversation.id, MONDAY_9 + 5 * MINUTE, kind="note", text="chiedere all'ufficio scuola")
    assert noted.conversation.status == "open" and noted.conversation.first_response_at is None

    answered = reply(conversation.id, MONDAY_9 + 30 * MINUTE).conversation
    assert answered.status == "pending" and answered.first_response_at == MONDAY_9 + 30 * MINUTE
    back = record(inbound("m2", at=MONDAY_9 + 60 * MINUTE))
    assert back.conversation.status == "open" and not back.reopened
    resolved = store.set_status(TENANT, conversation.id, "resolved", hours=HOURS, now=MONDAY_9 + 120 * MINUTE)
    # Tuesday: the citizen writes again, the conversation reopens, is answered and resolved again.
    tuesday = MONDAY_9 + timedelta(days=1)
    reopened = record(inbound("m3", at=tuesday, text="C'è una frana in via Monte"), urgent=True)
    assert reopened.reopened and reopened.conversation.status == "open" and reopened.conversation.urgent
    reply(conversation.id, tuesday + 180 * MINUTE)
    final = store.set_status(TENANT, conversation.id, "resolved", hours=HOURS, now=tuesday + 240 * MINUTE)

    assert final.first_response_at == answered.first_response_at
    assert final.resolved_at == resolved.resolved_at == MONDAY_9 + 120 * MINUTE
    assert final.reopen_count == 1 and not final.urgent
    [week] = figures.report(TENANT, start=MONDAY_9 - timedelta(hours=9), end=MONDAY_9 + timedelta(days=6))
    assert week.conversations == 1
    assert (week.first_response.count, week.first_response.median_seconds) == (1, 30 * 60)
    assert (week.resolution.count, week.resolution.median_seconds) == (1, 120 * 60)
    assert week.first_response.waiting == week.resolution.waiting == 0


def test_figures_count_waiting_conversations_and_office_time() -> None:
    friday_noon = MONDAY_9 - timedelta(days=3) + timedelta(hours=3)  # Friday 12:00, office until 13:00
    answered = record(inbound("m1", at=friday_noon)).conversation
    reply(answered.id, MONDAY_9 + 30 * MINUTE)  # 1 h on Friday + 30 min on Monday
    record(inbound("m2", user="2002", at=friday_noon))  # never answered
    spam = record(inbound("m3", user="3003", at=friday_noon)).conversation
    store.set_status(TENANT, spam.id, "resolved", hours=HOURS, now=MONDAY_9)

    [week] = figures.report(
        TENANT, start=friday_noon - timedelta(days=4), end=friday_noon + timedelta(days=2)
    )
    assert week.conversations == 3
    assert week.first_response.count == 1 and week.first_response.median_seconds == 90 * 60
    assert week.first_response.waiting == 1 and week.resolved_without_reply == 1
    assert week.resolution.count == 1 and week.resolution.median_seconds == 60 * 60
    assert week.resolution.waiting == 2
    assert [b.count for b in week.first_response.buckets] == [0, 0, 1, 0, 0, 0]
    assert (
        figures.report(TENANT, start=friday_noon, end=friday_noon + MINUTE, channel="mastodon")[
            0
        ].conversations
        == 0
    )


def test_staff_changes_are_versioned() -> None:
    conversation = record(inbound("m1")).conversation
    assigned = store.assign(TENANT, conversation.id, "giulia", now=MONDAY_9)
    assert assigned.version == conversation.version + 1
    assert store.assign(TENANT, conversation.id, "giulia", now=MONDAY_9) == assigned  # no change, no write
    with pytest.raises(store.Conflict):
        store.set_tags(
            TENANT, conversation.id, ["scuola"], now=MONDAY_9, expected_version=conversation.version
        )
    with pytest.raises(ValueError, match="tags"):
        store.set_tags(TENANT, conversation.id, ["a#b"], now=MONDAY_9)
    with pytest.raises(store.NotFound):
        store.set_status(TENANT, "0" * 20, "resolved", hours=HOURS, now=MONDAY_9)


# ---- lists ----------------------------------------------------------------------------------


def _queries() -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    dynamo.client().meta.events.register(
        "before-call.dynamodb.Query", lambda params, **_: calls.append(params)
    )
    return calls


def test_lists_page_with_filters_urgent_first_newest_first() -> None:
    made = []
    for n in range(7):
        channel = "mastodon" if n % 2 else "telegram"
        result = record(
            inbound(f"m{n}", user=f"u{n}", channel=channel, at=MONDAY_9 + n * MINUTE), urgent=n == 2
        )
        made.append(result.conversation.id)
    store.set_tags(TENANT, made[1], ["scuola", "viabilità"], now=MONDAY_9)
    store.set_tags(TENANT, made[4], ["scuola"], now=MONDAY_9)
    store.assign(TENANT, made[5], "giulia", now=MONDAY_9)
    store.set_status(TENANT, made[6], "resolved", hours=HOURS, now=MONDAY_9 + 10 * MINUTE)
    calls = _queries()

    pages, cursor = [], None
    while True:
        page = store.list_conversations(TENANT, status="open", limit=2, cursor=cursor)
        pages.append([s.id for s in page.items])
        if page.cursor is None:
            break
        cursor = page.cursor

    assert pages == [[made[2], made[5]], [made[4], made[3]], [made[1], made[0]]]
    assert len(calls) == len(pages)  # one Query per page
    assert open_ids(channel="mastodon") == [made[5], made[3], made[1]]
    assert open_ids(tag="scuola") == [made[4], made[1]]
    assert open_ids(tag="viabilità") == [made[1]]
    assert open_ids(assignee="giulia") == [made[5]]
    assert [s.id for s in store.list_conversations(TENANT, status="resolved").items] == [made[6]]
    summary = store.list_conversations(TENANT, status="open", tag="viabilità").items[0]
    assert (summary.citizen_name, summary.tags, summary.channel) == (
        "Maria Rossi",
        ("scuola", "viabilità"),
        "mastodon",
    )
    with pytest.raises(ValueError, match="one of channel, tag, assignee"):
        store.list_conversations(TENANT, status="open", tag="scuola", channel="telegram")


# ---- tenant isolation -----------------------------------------------------------------------


def test_tenants_cannot_read_or_page_each_other() -> None:
    for n in range(3):
        record(inbound(f"m{n}", user=f"u{n}", at=MONDAY_9 + n * MINUTE))
    ours = store.list_conversations(TENANT, status="open", limit=1)
    conversation_id = ours.items[0].id
    assert ours.cursor is not None

    assert store.get_conversation("comune-b", conversation_id) is None
    assert store.messages("comune-b", conversation_id).items == ()
    with pytest.raises(store.NotFound):
        store.set_status("comune-b", conversation_id, "resolved", hours=HOURS, now=MONDAY_9)
    with pytest.raises(store.NotFound):
        store.record_outbound(
            "comune-b", conversation_id, text="x", author="u", retention_days=1, hours=HOURS, now=MONDAY_9
        )
    with pytest.raises(ValueError, match="another list"):
        store.list_conversations("comune-b", status="open", cursor=ours.cursor)
    with pytest.raises(ValueError, match="another list"):
        store.list_conversations(TENANT, status="resolved", cursor=ours.cursor)
    payload, _, signature = ours.cursor.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    for bad in (forged, payload + ".", "garbage", "ü" * 10):
        with pytest.raises(ValueError, match="cursor"):
            store.list_conversations(TENANT, status="open", cursor=bad)
    assert (
        store.list_conversations(TENANT, status="open", limit=1, cursor=ours.cursor).items[0].id
        != conversation_id
    )


# ---- retention ------------------------------------------------------------------------------


def test_personal_rows_expire_with_the_last_activity_and_figures_much_later() -> None:
    first = record(inbound("m1"), retention_days=10).conversation
    later = MONDAY_9 + timedelta(days=3)
    record(inbound("m2", at=later), retention_days=10)
    expected = epoch(later + timedelta(days=10))

    items = all_items()
    [fig] = [i for i in items if "#FIG#" in i["pk"]]
    personal = [i for i in items if i is not fig]
    assert all("expires_at" in i for i in personal)
    # The conversation, its lists (status, channel, SLA) and its citizen index row.
    with_conversation = [
        i
        for i in personal
        if i["sk"] == keys.conversation_sk(first.id) or "#INBOX#" in i["pk"] or "#CITIZEN#" in i["pk"]
    ]
    assert len(with_conversation) == 5
    assert {i["expires_at"] for i in with_conversation} == {expected}
    messages = [i for i in personal if i["pk"] == keys.messages_pk(TENANT, first.id)]
    assert (
        sorted(i["expires_at"] for i in messages)
        == [epoch(MONDAY_9 + timedelta(days=10))] * 2 + [expected] * 2
    )
    dedupe = sorted(i["expires_at"] for i in personal if i["pk"] == keys.inbound_pk(TENANT))
    assert dedupe == [epoch(MONDAY_9 + timedelta(days=10)), expected]  # at most the retention
    assert fig["expires_at"] >= epoch(MONDAY_9 + timedelta(days=5 * 365))
    assert set(fig) == {"pk", "sk", "channel", "kind", "opened_at", "expires_at"}  # nothing personal


# ---- SLA ------------------------------------------------------------------------------------


def test_sla_breaches_are_marked_once_in_office_time() -> None:
    obs.metrics.clear_metrics()
    config = Config(
        tenants=[Tenant(id=TENANT, name="A", inbox=InboxConfig(first_response_target_minutes=60))]
    )
    monday = record(inbound("m1", user="u1")).conversation  # Monday 9:00
    friday = record(
        inbound("m2", user="u2", at=MONDAY_9 - timedelta(days=3) + timedelta(hours=3, minutes=50))
    )

    # At 9:30 Friday's 12:50 message has waited 68 hours, but only 10 + 30 office minutes.
    quiet = check_sla(config, MONDAY_9 + 30 * MINUTE)
    first = check_sla(config, MONDAY_9 + 70 * MINUTE)
    again = check_sla(config, MONDAY_9 + 75 * MINUTE)

    assert (quiet["breached"], quiet["over_sla"]) == (0, 0)
    assert (first["breached"], first["over_sla"]) == (2, 2)
    assert (again["breached"], again["over_sla"]) == (0, 2)
    assert obs.metrics.metric_set[obs.SLA_BREACHES]["Value"] == [2.0]
    assert obs.metrics.metric_set[obs.CONVERSATIONS_OVER_SLA]["Value"] == [0.0, 2.0, 2.0]
    breached = store.get_conversation(TENANT, monday.id)
    assert breached is not None and breached.sla_breached_at == MONDAY_9 + 70 * MINUTE
    reply(monday.id, MONDAY_9 + 80 * MINUTE)
    assert check_sla(config, MONDAY_9 + 85 * MINUTE)["over_sla"] == 1
    assert friday.conversation.id in open_ids()
    obs.metrics.clear_metrics()


# ---- audit and posts ------------------------------------------------------------------------


def test_audit_entries_are_kept_per_month() -> None:
    store.audit(TENANT, "giulia", "set_status", "a" * 20, {"status": "resolved"}, now=MONDAY_9)
    store.audit("comune-b", "paolo", "assign", "b" * 20, {"assignee": "paolo"}, now=MONDAY_9)

    [entry] = store.audit_entries(TENANT, "2026-11")
    assert (entry.user, entry.action, entry.fields, entry.at) == (
        "giulia",
        "set_status",
        {"status": "resolved"},
        MONDAY_9,
    )
    assert store.audit_entries(TENANT, "2026-10") == []
    with pytest.raises(ValueError, match="month"):
        store.audit_entries(TENANT, "2026-13")


def test_a_published_post_is_linked_to_its_announcement(make_stack: Any) -> None:
    stack = make_stack([tenant()], {"feed.rss": (FEEDS / "comune-notizie.rss").read_bytes()})
    [source] = stack.poll()["sources"]
    stack.drain(timeout=5)

    announcement = source["announcements"][0]
    posted = [d for d in deliveries_of("comune-prova", announcement) if d.remote_id]
    assert posted
    for delivery in posted:
        assert (
            store.announcement_for("comune-prova", delivery.channel, str(delivery.remote_id)) == announcement
        )
