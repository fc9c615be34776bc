"""The alert pipeline's decisions against a real table (moto): an alert skipped under one alert config
is decided again under another; Test and Exercise alerts reach only the sandbox's channels of a
tenant that asks for them, in threads of their own, never touching real alerts or crisis mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.alerts import pipeline
from chalicelib.alerts.areas import config_digest
from chalicelib.alerts.model import Alert, Area, Info, Level, Reference
from chalicelib.alerts.pipeline import handle_alerts
from chalicelib.alerts.threads import Facts, Thread
from chalicelib.config.models import CapSource, Config, Tenant
from chalicelib.publishing.announce import Announced, put
from chalicelib.storage import dynamo, keys
from chalicelib.storage.alert_threads import (
    AlertLedger,
    alert_key,
    find_rows,
    handled_row,
    highest_active_level,
    thread_row,
)
from chalicelib.storage.announcements import get_announcement
from tests.conftest import tenant

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SENDER = "allerte@protezionecivile.example.it"
SOURCE = {"id": "allerte", "kind": "cap", "url": "https://sample.feeds.invalid/allerte.xml"}


def _tenant(**alerts: Any) -> Tenant:
    config = {"version": 1, "tenants": [tenant("comune-a", [SOURCE]) | {"alerts": alerts}]}
    return Config.model_validate(config).tenants[0]


def _source(comune: Tenant) -> CapSource:
    [source] = comune.alert_sources
    return source


def _alert(
    identifier: str,
    *,
    status: str = "Actual",
    msg_type: str = "Alert",
    zone: str = "Tosc-B",
    references: tuple[str, ...] = (),
    expires: datetime = NOW + timedelta(hours=12),
    sent: datetime = NOW,
    referenced_sent: dict[str, datetime] | None = None,
) -> Alert:
    info = Info(
        language="it-IT",
        event="Allerta arancione per rischio idrogeologico",
        onset=NOW,
        expires=expires,
        sender_name="Centro Funzionale Regionale",
        parameters=(("awareness_level", "3; orange; Severe"),),
        areas=(Area("Valdarno", geocodes=(("Zona di Allerta", zone),)),),
    )
    return Alert(
        identifier=identifier,
        sender=SENDER,
        sent=sent,
        status=status,  # type: ignore[arg-type]  # the tests pass valid statuses only
        msg_type=msg_type,  # type: ignore[arg-type]
        references=tuple(
            Reference(SENDER, ref, (referenced_sent or {}).get(ref, NOW).isoformat()) for ref in references
        ),
        infos=(info,),
    )


def _handle(comune: Tenant, *alerts: Alert) -> tuple[list[str], list[Announced]]:
    outcomes, announced = handle_alerts(comune, _source(comune), alerts, NOW)
    return [o.action for o in outcomes], announced


# --- decided again under another config ------------------------------------------------------------


def test_an_alert_skipped_before_the_zone_was_fixed_is_posted_once_after(dynamo_table: str) -> None:
    wrong, fixed = _tenant(zones=["Tosc-A"]), _tenant(zones=["Tosc-B"])
    alert = _alert("ALLERTA-1")

    assert _handle(wrong, alert) == (["nothing"], [])
    assert _handle(wrong, alert) == ([], [])  # handled under this config: not decided again

    actions, [announced] = _handle(fixed, alert)
    assert actions == ["post"] and {d.channel for d in announced.deliveries} == {"telegram", "mastodon"}
    assert _handle(fixed, alert) == ([], [])


def test_a_row_written_before_configs_were_recorded_is_decided_again(dynamo_table: str) -> None:
    comune = _tenant(zones=["Tosc-B"])
    legacy = handled_row(AlertLedger("comune-a", "unused"), SENDER, "ALLERTA-1", NOW, None)
    del legacy["config_digest"]
    dynamo.client().put_item(TableName=dynamo_table, Item=dynamo.to_dynamo(legacy))

    actions, announced = _handle(comune, _alert("ALLERTA-1"))

    assert actions == ["post"] and len(announced) == 1


def test_an_alert_with_a_thread_is_never_decided_again_for_a_new_config(dynamo_table: str) -> None:
    assert _handle(_tenant(zones=["Tosc-B"]), _alert("ALLERTA-1"))[0] == ["post"]
    assert _handle(_tenant(zones=["Tosc-B", "Tosc-C"]), _alert("ALLERTA-1")) == ([], [])


def test_only_one_of_two_pollers_deciding_under_the_same_config_claims_the_alert(dynamo_table: str) -> None:
    old, new = AlertLedger("comune-a", "0" * 16), AlertLedger("comune-a", "1" * 16)

    def claim(ledger: AlertLedger, row: dict[str, Any]) -> None:
        condition, values = ledger.claim()
        dynamo.client().transact_write_items(TransactItems=[put(row, condition, values)])

    claim(old, handled_row(old, SENDER, "ALLERTA-1", NOW, None))
    claim(new, handled_row(new, SENDER, "ALLERTA-1", NOW, None))  # another config: decided again
    with pytest.raises(ClientError) as raised:
        claim(new, handled_row(new, SENDER, "ALLERTA-1", NOW, None))  # the second poller
    assert dynamo.is_condition_failure(raised.value)
    assert find_rows(new, [(SENDER, "ALLERTA-1")]) == {(SENDER, "ALLERTA-1"): None}
    assert find_rows(old, [(SENDER, "ALLERTA-1")]) == {}

    # A row with a thread is never claimed again, whatever config it was written under.
    facts = Facts(Level.ORANGE, "idrogeologico", ("Valdarno",), NOW, NOW + timedelta(hours=12))
    claim(old, thread_row(old, SENDER, "ALLERTA-2", Thread("20261122T060000abcd0123", facts), NOW))
    with pytest.raises(ClientError):
        claim(new, handled_row(new, SENDER, "ALLERTA-2", NOW, None))
    assert find_rows(new, [(SENDER, "ALLERTA-2")]) == {
        (SENDER, "ALLERTA-2"): Thread("20261122T060000abcd0123", facts)
    }


def test_every_row_records_the_config_it_was_decided_under(dynamo_table: str) -> None:
    comune = _tenant(zones=["Tosc-B"])
    _handle(comune, _alert("ALLERTA-1"), _alert("ALTROVE-1", zone="Tosc-A"))
    for identifier in ("ALLERTA-1", "ALTROVE-1"):
        row = dynamo.client().get_item(
            TableName=dynamo_table,
            Key=dynamo.to_dynamo({"pk": keys.alert_pk("comune-a"), "sk": alert_key(SENDER, identifier)}),
        )["Item"]
        assert dynamo.from_dynamo(row)["config_digest"] == config_digest(comune.alerts)  # type: ignore[arg-type]


# --- updates read out of order ------------------------------------------------------------------------


def _updates() -> tuple[Alert, Alert]:
    """Two updates of ALLERTA-1, five minutes apart, the newer one running longer."""
    older = _alert(
        "ALLERTA-2",
        msg_type="Update",
        references=("ALLERTA-1",),
        expires=NOW + timedelta(hours=6),
        sent=NOW + timedelta(minutes=5),
    )
    newer = _alert(
        "ALLERTA-3",
        msg_type="Update",
        references=("ALLERTA-1", "ALLERTA-2"),
        expires=NOW + timedelta(hours=9),
        sent=NOW + timedelta(minutes=10),
    )
    return older, newer


def test_an_older_update_read_after_a_newer_one_posts_nothing_and_keeps_the_thread(
    dynamo_table: str,
) -> None:
    comune = _tenant(zones=["Tosc-B"])
    _, [first] = _handle(comune, _alert("ALLERTA-1"))
    older, newer = _updates()
    assert _handle(comune, newer)[0] == ["update"]  # the push job read the newer body first

    # The poller's slower read (or a retried job) brings the older one.
    assert _handle(comune, older) == (["nothing"], [])

    ledger = AlertLedger("comune-a", config_digest(comune.alerts))  # type: ignore[arg-type]
    rows = find_rows(ledger, [(SENDER, name) for name in ("ALLERTA-1", "ALLERTA-2", "ALLERTA-3")])
    threads = set(rows.values())
    assert len(threads) == 1  # the older update's row joined the thread as it is
    [thread] = threads
    assert thread is not None and thread.anchor == first.announcement.id
    assert thread.facts.expires == newer.infos[0].expires and thread.sent == newer.sent
    assert highest_active_level("comune-a", NOW + timedelta(hours=7)) == Level.ORANGE  # newer expiry kept
    assert _handle(comune, older, newer) == ([], [])


def test_a_thread_stored_before_sent_was_recorded_takes_any_update(dynamo_table: str) -> None:
    comune = _tenant(zones=["Tosc-B"])
    ledger = AlertLedger("comune-a", config_digest(comune.alerts))  # type: ignore[arg-type]
    facts = Facts(Level.ORANGE, "idrogeologico", ("Valdarno",), NOW, NOW + timedelta(hours=12))
    legacy = thread_row(ledger, SENDER, "ALLERTA-1", Thread("20261122T060000abcd0123", facts), NOW)
    del legacy["sent"]
    dynamo.client().put_item(TableName=dynamo_table, Item=dynamo.to_dynamo(legacy))
    older, _ = _updates()

    actions, [reply] = _handle(comune, older)

    assert actions == ["update"] and reply.deliveries[0].thread_anchor == "20261122T060000abcd0123"
    assert find_rows(ledger, [(SENDER, "ALLERTA-1")])[(SENDER, "ALLERTA-1")].sent == older.sent  # type: ignore[union-attr]


def test_a_cancel_that_references_the_newest_update_ends_the_thread_despite_an_earlier_sent(
    dynamo_table: str,
) -> None:
    comune = _tenant(zones=["Tosc-B"])
    _, [first] = _handle(comune, _alert("ALLERTA-1"))
    _, newer = _updates()
    assert _handle(comune, newer)[0] == ["update"]
    # The issuer's clock puts its cancel two minutes before the update it answers.
    cancel = _alert(
        "FINE-1",
        msg_type="Cancel",
        references=("ALLERTA-1", "ALLERTA-3"),
        sent=newer.sent - timedelta(minutes=2),
        referenced_sent={"ALLERTA-3": newer.sent},
    )

    actions, [end] = _handle(comune, cancel)

    assert actions == ["end"] and end.deliveries[0].thread_anchor == first.announcement.id
    assert highest_active_level("comune-a", NOW) is None  # crisis mode no longer holds news
    ledger = AlertLedger("comune-a", config_digest(comune.alerts))  # type: ignore[arg-type]
    thread = find_rows(ledger, [(SENDER, "ALLERTA-1")])[(SENDER, "ALLERTA-1")]
    assert thread is not None and thread.ended and thread.sent == newer.sent  # never rewound


def test_a_poll_that_read_the_rows_before_a_newer_update_was_written_never_rewinds_them(
    dynamo_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    comune = _tenant(zones=["Tosc-B"])
    _handle(comune, _alert("ALLERTA-1"))
    ledger = AlertLedger("comune-a", config_digest(comune.alerts))  # type: ignore[arg-type]
    older, newer = _updates()
    # The poll, handling the older update, reads the rows ...
    read_by_poll = find_rows(ledger, [(SENDER, "ALLERTA-1"), (SENDER, "ALLERTA-2")])
    assert _handle(comune, newer)[0] == ["update"]  # ... then a push writes the newer one ...
    reads = iter([read_by_poll])
    monkeypatch.setattr(pipeline, "find_rows", lambda *args: next(reads, None) or find_rows(*args))

    assert _handle(comune, older) == (["nothing"], [])  # ... and the poll's write is refused

    thread = find_rows(ledger, [(SENDER, "ALLERTA-1")])[(SENDER, "ALLERTA-1")]
    assert thread is not None and (thread.sent, thread.facts.expires) == (newer.sent, newer.infos[0].expires)
    assert highest_active_level("comune-a", NOW + timedelta(hours=7)) == Level.ORANGE  # newer expiry kept
    assert find_rows(ledger, [(SENDER, "ALLERTA-2")]) == {}  # not handled: read again, ...
    outcomes, announced = handle_alerts(comune, _source(comune), [older], NOW)
    assert ([o.reason for o in outcomes], announced) == (["superseded"], [])  # ... then superseded


# --- Test and Exercise alerts in the sandbox ---------------------------------------------------------


@pytest.fixture
def sandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack's view: only the Telegram channel posts to the platform fakes (the Mastodon
    one would have a real token)."""
    monkeypatch.setenv(settings.SANDBOX_CHANNELS_ENV, "comune-a/telegram,comune-b/mastodon")


def test_a_drill_reaches_only_the_sandboxed_channels_marked_in_a_thread_of_its_own(
    dynamo_table: str, sandboxed: None
) -> None:
    comune = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=True)

    actions, [drill] = _handle(comune, _alert("ESERCITAZIONE-1", status="Exercise"))

    assert actions == ["post"]
    assert [d.channel for d in drill.deliveries] == ["telegram"]
    assert drill.announcement.title.startswith("🧪 ESERCITAZIONE — non è un'allerta reale. 🟠")
    assert highest_active_level("comune-a", NOW) is None  # never crisis mode
    update = _alert(
        "ESERCITAZIONE-2",
        status="Exercise",
        msg_type="Update",
        references=("ESERCITAZIONE-1",),
        expires=NOW + timedelta(hours=20),
    )
    actions, [reply] = _handle(comune, update)
    assert actions == ["update"] and reply.deliveries[0].thread_anchor == drill.announcement.id
    assert (drill.announcement.alert_change, reply.announcement.alert_change) == ("new", "update")
    assert _handle(comune, _alert("ESERCITAZIONE-1", status="Exercise"), update) == ([], [])


def test_a_drill_never_touches_a_real_alert_and_a_real_alert_never_a_drill(
    dynamo_table: str, sandboxed: None
) -> None:
    comune = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=True)
    _, [real] = _handle(comune, _alert("ALLERTA-1"))

    cancel = _alert("PROVA-FINE", status="Test", msg_type="Cancel", references=("ALLERTA-1",))
    assert _handle(comune, cancel) == (["nothing"], [])  # the real thread is not in the drills' rows
    assert highest_active_level("comune-a", NOW) is not None

    # The same identifier as a drill is another alert: a thread of its own, on the sandbox only.
    actions, [drill] = _handle(comune, _alert("ALLERTA-1", status="Test"))
    assert actions == ["post"] and drill.announcement.id != real.announcement.id
    stored = get_announcement("comune-a", drill.announcement.id)
    assert stored is not None and stored.title.startswith("🧪 TEST — non è un'allerta reale.")


@pytest.mark.parametrize(("asked", "in_sandbox"), [(False, True), (True, False)])
def test_without_the_flag_or_outside_the_sandbox_a_drill_is_never_posted(
    dynamo_table: str, monkeypatch: pytest.MonkeyPatch, asked: bool, in_sandbox: bool
) -> None:
    if in_sandbox:
        monkeypatch.setenv(settings.SANDBOX_CHANNELS_ENV, "comune-a/telegram,comune-a/mastodon")
    else:
        monkeypatch.delenv(settings.SANDBOX_CHANNELS_ENV, raising=False)
    comune = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=asked)

    assert _handle(comune, _alert("PROVA-1", status="Test"), _alert("ESERC-1", status="Exercise")) == (
        ["nothing", "nothing"],
        [],
    )


def test_a_draft_is_never_shown_even_in_the_sandbox(dynamo_table: str, sandboxed: None) -> None:
    comune = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=True)
    assert _handle(comune, _alert("BOZZA-1", status="Draft")) == (["nothing"], [])
