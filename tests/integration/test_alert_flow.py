"""End to end on the local stack: an orange alert for a zone reaches every channel of every comune
in that zone; its update replies in each thread; its cancellation closes each thread; nothing is
posted twice, however often the feed is read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.alerts.model import Level
from chalicelib.publishing.housekeeping import LOST_AFTER, requeue_lost_deliveries
from chalicelib.storage.alert_threads import highest_active_level
from chalicelib.storage.announcements import get_announcement
from chalicelib.storage.deliveries import deliveries_of
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.feedserver import news_items, rss_document

_NEWS_POLICY = {"first_run": "post_recent", "max_age_hours": 87600, "min_interval_seconds": 0}

SENDER = "allerte@protezionecivile.example.it"
NOW = datetime.now(UTC).replace(microsecond=0)


def _cap(
    identifier: str,
    msg_type: str,
    *,
    expires: datetime,
    references: str = "",
    level: str = "3; orange; Severe",
    sent: datetime = NOW,
) -> str:
    refs = f"<references>{references}</references>" if references else ""
    return f"""
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{sent.isoformat()}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info>
    <language>it-IT</language><category>Met</category>
    <event>Allerta arancione per rischio idrogeologico</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <onset>{NOW.isoformat()}</onset><expires>{expires.isoformat()}</expires>
    <senderName>Centro Funzionale Regionale</senderName>
    <instruction>Evitare i sottopassi e le zone vicine ai corsi d'acqua.</instruction>
    <web>https://www.protezionecivile.example.it/allerte/{identifier}</web>
    <parameter><valueName>awareness_level</valueName><value>{level}</value></parameter>
    <area>
      <areaDesc>Valdarno</areaDesc>
      <geocode><valueName>Zona di Allerta</valueName><value>Tosc-B</value></geocode>
    </area>
  </info>
</alert>"""


def _alerts(*documents: str) -> bytes:
    """Several alerts in one SMHI-style wrapper, as some feeds publish them."""
    return ("<alerts>" + "".join(documents) + "</alerts>").encode()


ALERT = _cap("ALLERTA-1", "Alert", expires=NOW + timedelta(days=1))
REFS_1 = f"{SENDER},ALLERTA-1,{NOW.isoformat()}"
UPDATE = _cap("ALLERTA-2", "Update", expires=NOW + timedelta(days=2), references=REFS_1)
CANCEL = _cap(
    "ALLERTA-3",
    "Cancel",
    expires=NOW + timedelta(days=2),
    references=f"{REFS_1} {SENDER},ALLERTA-2,{NOW.isoformat()}",
)


def _comune(name: str) -> dict[str, Any]:
    """A comune in zone Tosc-B with its own Telegram channel and Mastodon account (sandboxed)."""
    source = {"id": "allerte", "kind": "cap", "url": "https://sample.feeds.invalid/allerte.xml"}
    env = name.upper().replace("-", "_")
    channels = [
        {
            "id": "telegram",
            "platform": "telegram",
            "chat": f"@{env.title().replace('_', '')}",
            "token": f"env:{env}_TG",
        },
        {
            "id": "mastodon",
            "platform": "mastodon",
            "instance": "https://mastodon.invalid",
            "token": f"env:{env}_MA",
        },
    ]
    return tenant(name, sources=[source], channels=channels) | {"alerts": {"zones": ["Tosc-B"]}}


def _serve(stack: LocalStack, body: bytes) -> None:
    (stack.feeds_dir / "allerte.xml").write_bytes(body)


def _round(stack: LocalStack) -> list[dict[str, Any]]:
    """Read the alert feed once, publish everything, and return the posts this made."""
    before = len(stack.sandbox.posts())
    stack.poll_alerts()
    stack.drain()
    return stack.sandbox.posts()[before:]


def test_alert_update_and_cancel_are_one_thread_per_channel_per_comune(make_stack: Any) -> None:
    stack = make_stack([_comune("comune-a"), _comune("comune-b")], {"allerte.xml": _alerts(ALERT)})

    first = _round(stack)
    assert len(first) == 2 * 2  # 2 comuni x (telegram, mastodon)
    assert all("🟠" in p["text"] and "arancione" in p["text"].lower() for p in first)
    assert all("reply_parameters" not in p["options"] and "in_reply_to_id" not in p["options"] for p in first)

    assert _round(stack) == []  # read again (304): nothing new
    _serve(stack, _alerts(ALERT, UPDATE))
    replies = _round(stack)
    assert len(replies) == 4
    _assert_threaded(first, replies)

    _serve(stack, _alerts(ALERT, UPDATE, CANCEL))
    closing = _round(stack)
    assert len(closing) == 4
    assert all("Fine allerta" in p["text"] for p in closing)
    _assert_threaded(first, closing)

    _serve(stack, _alerts(CANCEL, UPDATE, ALERT))  # the same alerts, in another order
    stack.poll_alerts()
    stack.drain()
    assert len(stack.sandbox.posts()) == 12


def test_an_update_read_after_a_newer_one_posts_nothing_and_keeps_the_newer_expiry(make_stack: Any) -> None:
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(ALERT)})
    first = _round(stack)
    older = _cap(
        "ALLERTA-2",
        "Update",
        expires=NOW + timedelta(days=2),
        references=REFS_1,
        sent=NOW + timedelta(minutes=5),
    )
    newer = _cap(
        "ALLERTA-3",
        "Update",
        expires=NOW + timedelta(days=3),
        references=REFS_1,
        sent=NOW + timedelta(minutes=10),
    )
    _serve(stack, _alerts(ALERT, newer))  # as the WebSub push of the newer body, announced first
    _assert_threaded(first, _round(stack))

    _serve(stack, _alerts(ALERT, older))  # the poller's slower read of the older body
    [feed] = stack.poll_alerts()["feeds"]
    assert [(o["identifier"], o["action"], o["reason"]) for o in feed["outcomes"]] == [
        ("ALLERTA-2", "nothing", "superseded")
    ]
    stack.drain()
    assert len(stack.sandbox.posts()) == 2 * 2
    assert highest_active_level("comune-a", NOW + timedelta(days=2, hours=12)) == Level.ORANGE


def _assert_threaded(originals: list[dict[str, Any]], replies: list[dict[str, Any]]) -> None:
    """Each reply answers the original post of its own channel and comune."""
    for reply in replies:
        [original] = [
            o for o in originals if o["platform"] == reply["platform"] and o["target"] == reply["target"]
        ]
        if reply["platform"] == "telegram":
            assert reply["options"]["reply_parameters"]["message_id"] == int(original["id"])
        else:
            assert reply["options"]["in_reply_to_id"] == original["id"]


def test_a_reissue_without_material_change_and_a_test_alert_post_nothing(make_stack: Any) -> None:
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(ALERT)})
    assert len(_round(stack)) == 2
    reissue = _cap("ALLERTA-1B", "Update", expires=NOW + timedelta(days=1), references=REFS_1)
    drill = _cap("PROVA-1", "Alert", expires=NOW + timedelta(days=1)).replace(
        "<status>Actual", "<status>Test"
    )
    _serve(stack, _alerts(ALERT, reissue, drill))

    stack.poll_alerts()
    stack.drain()

    assert len(stack.sandbox.posts()) == 2


def test_crisis_mode_holds_routine_news_while_an_orange_alert_is_in_force(make_stack: Any) -> None:
    comune = _comune("comune-a")
    comune["sources"].append({"id": "notizie", "url": "https://sample.feeds.invalid/feed.rss"} | _NEWS_POLICY)
    comune["routes"].append({"source": "notizie", "channels": ["telegram", "mastodon"]})
    comune["alerts"]["pause_news_from"] = "orange"
    stack = make_stack([comune], {"allerte.xml": _alerts(ALERT), "feed.rss": rss_document(news_items(1))})

    assert len(_round(stack)) == 2  # the alert
    news = stack.poll()
    stack.drain()

    assert len(stack.sandbox.posts()) == 2  # the news waits...
    [announcement] = news["sources"][0]["announcements"]
    assert {d.status for d in deliveries_of("comune-a", announcement)} == {"pending"}

    _serve(stack, _alerts(ALERT, CANCEL))
    assert all("Fine allerta" in p["text"] for p in _round(stack))
    # ...and goes out once the alert is over (the held message comes back on its own; here the
    # housekeeping's re-enqueue stands in for the wait).
    requeue_lost_deliveries("comune-a", datetime.now(UTC) + LOST_AFTER + timedelta(seconds=1))
    stack.drain()
    assert len(stack.sandbox.posts()) == 6


def test_an_exercise_cancel_never_ends_a_real_alert(make_stack: Any) -> None:
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(ALERT)})
    assert len(_round(stack)) == 2
    drill_cancel = CANCEL.replace("<status>Actual", "<status>Exercise")
    _serve(stack, _alerts(ALERT, drill_cancel))

    assert _round(stack) == []


def test_repeated_references_and_an_info_less_cancel_close_the_thread_with_the_posted_level(
    make_stack: Any,
) -> None:
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(ALERT)})
    assert len(_round(stack)) == 2
    bare_cancel = _cap(
        "ALLERTA-9", "Cancel", expires=NOW + timedelta(days=1), references=f"{REFS_1} {REFS_1}"
    )
    bare_cancel = bare_cancel[: bare_cancel.index("<info>")] + "</alert>"  # CAP allows a Cancel without info
    _serve(stack, _alerts(ALERT, bare_cancel))

    closing = _round(stack)

    assert len(closing) == 2
    assert all("Fine allerta arancione" in p["text"] and "Tosc-B" in p["text"] for p in closing)


def test_a_bulletin_with_one_info_block_per_level_is_read_whole(make_stack: Any) -> None:
    """The DPC writes one Italian info block per level and day: the block for our zone counts."""
    other_zone = ALERT.replace("Tosc-B", "Tosc-A").replace("3; orange; Severe", "2; yellow; Moderate")
    ours = ALERT[ALERT.index("<info>") : ALERT.index("</info>") + len("</info>")].replace(
        "3; orange", "4; red"
    )
    bulletin = other_zone.replace("</info>", "</info>" + ours, 1)
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(bulletin)})

    posts = _round(stack)

    assert len(posts) == 2
    assert all("🔴" in p["text"] and "Tosc-B" in p["text"] for p in posts)


def test_an_alert_post_held_up_past_the_alert_s_expiry_is_dropped_not_posted_late(make_stack: Any) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=4)
    stack = make_stack(
        [_comune("comune-a")], {"allerte.xml": _alerts(_cap("BREVE-1", "Alert", expires=soon))}
    )
    stack.sandbox.inject("mastodon", "server_error", count=1)
    result = stack.poll_alerts()
    stack.drain()
    assert [p["platform"] for p in stack.sandbox.posts()] == ["telegram"]

    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 1.5)
    stack.drain()

    [announcement] = [o["announcement"] for f in result["feeds"] for o in f["outcomes"] if o["announcement"]]
    statuses = {d.channel: (d.status, d.error_reason) for d in deliveries_of("comune-a", announcement)}
    assert statuses == {"telegram": ("posted", None), "mastodon": ("failed", "expired")}
    assert [p["platform"] for p in stack.sandbox.posts()] == ["telegram"]


def test_a_raised_alert_is_a_new_post_announced_in_the_old_thread_and_later_updates_follow_it(
    make_stack: Any,
) -> None:
    yellow = _cap("GIALLA-1", "Alert", expires=NOW + timedelta(days=1), level="2; yellow; Moderate")
    raised = _cap(
        "GIALLA-2",
        "Update",
        expires=NOW + timedelta(days=1),
        references=f"{SENDER},GIALLA-1,{NOW.isoformat()}",
    )
    later = _cap(
        "GIALLA-3",
        "Update",
        expires=NOW + timedelta(days=2),
        references=f"{SENDER},GIALLA-2,{NOW.isoformat()}",
    )
    stack = make_stack([_comune("comune-a")], {"allerte.xml": _alerts(yellow)})
    first = _round(stack)
    assert len(first) == 2 and all("🟡" in p["text"] for p in first)

    _serve(stack, _alerts(yellow, raised))
    result = stack.poll_alerts()
    stack.drain()
    second = stack.sandbox.posts()[2:]

    new_posts = [p for p in second if "Sostituisce l'avviso di allerta gialla" in p["text"]]
    notices = [p for p in second if "segue un nuovo avviso" in p["text"]]
    assert len(second) == 4 and len(new_posts) == 2 and len(notices) == 2
    assert all(
        "reply_parameters" not in p["options"] and "in_reply_to_id" not in p["options"] for p in new_posts
    )
    _assert_threaded(first, notices)  # each channel's yellow thread says a new notice follows
    [announced] = [o["announcement"] for f in result["feeds"] for o in f["outcomes"] if o["announcement"]]
    stored = get_announcement("comune-a", announced)
    assert stored is not None and stored.alert_change == "level_up"

    _serve(stack, _alerts(yellow, raised, later))
    replies = _round(stack)
    assert len(replies) == 2 and all("Aggiornamento" in p["text"] for p in replies)
    _assert_threaded(new_posts, replies)  # under the orange post, not the yellow one

    _round(stack)
    assert len(stack.sandbox.posts()) == 8


def test_an_exercise_is_shown_marked_on_the_sandbox_to_a_comune_that_asks_and_ends_in_its_own_thread(
    make_stack: Any,
) -> None:
    comune = _comune("comune-a")
    comune["alerts"]["include_tests_in_sandbox"] = True
    drill = ALERT.replace("<status>Actual", "<status>Exercise")
    stack = make_stack([comune], {"allerte.xml": _alerts(drill)})

    first = _round(stack)
    assert len(first) == 2
    # At the very start (Telegram's title is bold).
    mark = "🧪 ESERCITAZIONE — non è un'allerta reale."
    assert all(p["text"].removeprefix("<b>").startswith(mark) for p in first)

    _serve(stack, _alerts(drill, CANCEL.replace("<status>Actual", "<status>Exercise")))
    closing = _round(stack)
    assert len(closing) == 2 and all("Fine allerta" in p["text"] for p in closing)
    _assert_threaded(first, closing)
