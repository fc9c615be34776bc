"""From parsed alerts to posts on one tenant's channels: match, decide against the stored thread,
then write the thread rows, the announcements and their deliveries in one transaction.

Every alert identifier a tenant has handled gets a row (with its thread, or marked as needing no
post), written with the announcement: an alert read again on the next poll, seconds later, is
skipped after one batch read, and two pollers cannot both post it. A "no post" row counts only under
the alert config it was decided with: after a comune's zones or level change, the alert in force is
decided again (and posted, if it now concerns the comune).

Test and Exercise alerts are shown only in the local sandbox, to a tenant that asks for them
(`include_tests_in_sandbox`), on its channels that post to the platform fakes: marked, in threads of
their own (rows apart from real alerts' rows), never counted as alerts in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.alerts.areas import PUBLIC_STATUSES, admits, best_info, config_digest
from chalicelib.alerts.cap import hazard, is_all_clear, parse_time, preferred_info
from chalicelib.alerts.errors import AlertError
from chalicelib.alerts.model import Alert, Area, Info, Level
from chalicelib.alerts.render import AlertFacts, alert_post, area_name, raised_notice
from chalicelib.alerts.threads import Action, Decision, Facts, Thread, decide
from chalicelib.clock import iso
from chalicelib.config.models import AlertsConfig, AnyChannel, CapSource, Tenant
from chalicelib.observability import logger
from chalicelib.publishing.announce import (
    Announced,
    Outgoing,
    announcement_id,
    put,
    write_announcements,
)
from chalicelib.storage import dynamo
from chalicelib.storage.alert_threads import (
    AlertLedger,
    active_key,
    active_row,
    alert_key,
    find_rows,
    handled_row,
    thread_row,
)

Key = tuple[str, str]  # (sender, identifier)
MAX_LINKED = 20


@dataclass(frozen=True)
class AlertOutcome:
    tenant: str
    identifier: str
    action: str
    reason: str
    announcement: str | None = None


@dataclass(frozen=True)
class _Context:
    tenant: Tenant
    config: AlertsConfig
    source: CapSource
    now: datetime
    ledger: AlertLedger  # where handled alerts are recorded: real ones, or the sandbox's drills
    channels: list[AnyChannel]  # where the posts go

    @property
    def drill(self) -> bool:
        return self.ledger.drill


def handle_alerts(
    tenant: Tenant, source: CapSource, alerts: Sequence[Alert], now: datetime
) -> tuple[list[AlertOutcome], list[Announced]]:
    """Decide and record each alert not yet handled for this tenant; the caller enqueues the
    deliveries of what was announced."""
    if tenant.alerts is None or not alerts:
        return [], []
    digest = config_digest(tenant.alerts)
    routed = tenant.channels_for(source.id)
    real = _Context(tenant, tenant.alerts, source, now, AlertLedger(tenant.id, digest), routed)
    sandboxed = settings.sandbox_channels()
    drill = replace(
        real,
        ledger=AlertLedger(tenant.id, digest, drill=True),
        channels=[c for c in routed if f"{tenant.id}/{c.id}" in sandboxed],
    )
    actual: list[Alert] = []
    drills: list[Alert] = []
    for alert in alerts:
        # A Test or Exercise alert the tenant asks to see, with sandbox channels to show it on; any
        # other is decided as real (and a non-Actual one is then recorded as never posted).
        shown_as_drill = (
            bool(drill.channels)
            and alert.status not in PUBLIC_STATUSES
            and admits(alert, tenant.alerts, sandbox=True)
        )
        (drills if shown_as_drill else actual).append(alert)
    outcomes, announced = _handle_all(real, actual)
    if drills:
        drill_outcomes, drill_announced = _handle_all(drill, drills)
        outcomes += drill_outcomes
        announced += drill_announced
    return outcomes, announced


def _handle_all(context: _Context, alerts: Sequence[Alert]) -> tuple[list[AlertOutcome], list[Announced]]:
    if not alerts:
        return [], []
    tenant = context.tenant
    wanted = {(a.sender, a.identifier) for a in alerts}
    wanted |= {(r.sender, r.identifier) for a in alerts for r in a.references}
    stored = find_rows(context.ledger, wanted)
    outcomes: list[AlertOutcome] = []
    announced: list[Announced] = []
    # Originals before their updates, so an update in the same document finds its thread.
    for alert in sorted(alerts, key=lambda a: a.sent):
        if (alert.sender, alert.identifier) in stored:
            continue  # handled on an earlier poll
        outcome, posted, thread = _handle(context, alert, stored)
        if outcome.action != Action.NOTHING.value and posted is None:
            # Another poller or a push handled this alert first: what it stored is the truth.
            stored.update(find_rows(context.ledger, wanted))
            outcome = AlertOutcome(tenant.id, alert.identifier, Action.NOTHING.value, "handled elsewhere")
        else:
            stored[(alert.sender, alert.identifier)] = thread
        outcomes.append(outcome)
        announced.extend(posted or [])
    return outcomes, announced


def _handle(
    context: _Context, alert: Alert, stored: dict[Key, Thread | None]
) -> tuple[AlertOutcome, list[Announced] | None, Thread | None]:
    own = (alert.sender, alert.identifier)
    # Each referenced thread row once (a feed may repeat a triple), at most MAX_LINKED of them so
    # the transaction stays far below DynamoDB's 100 items.
    references = dict.fromkeys((r.sender, r.identifier) for r in alert.references)
    linked = [key for key in references if key != own and stored.get(key)][:MAX_LINKED]
    thread = stored[linked[0]] if linked else None
    if not admits(alert, context.config, sandbox=context.drill):
        # Test, Exercise, Draft, Ack, Error, non-public scope: never posted, and never allowed to
        # change what was posted for real (an exercise cancel must not end a real alert).
        _write(_rows(context, alert, [], None))
        return AlertOutcome(context.tenant.id, alert.identifier, "nothing", "not a public alert"), None, None
    if thread is not None and _stale(alert, thread, stored):
        # Read after a newer update of its thread (a poll slower than a push, a retried job): what
        # it says is stale. Its own row joins the thread as it is; the thread is not rewound.
        _write(_rows(context, alert, [], thread))
        decision = Decision(Action.NOTHING, "superseded", thread)
        return _outcome(context, alert, decision, None), None, thread
    info, areas, level = best_info(alert, context.config)
    facts = _facts(info, areas, level or (thread.facts.level if thread else None))
    decision = decide(
        facts=facts,
        all_clear=is_all_clear(alert, info),
        thread=thread,
        min_level=context.config.minimum_level,
        now=context.now,
    )
    newest = _newest(alert, thread)
    if decision.thread is not None:
        # Handled in `sent` order from here on (older ones were superseded above): the newest so far.
        decision = replace(decision, thread=replace(decision.thread, sent=newest))
    posted: list[Announced] | None = None
    if decision.action is not Action.NOTHING and info is None and thread is not None:
        # A Cancel may carry no info at all: the end of alert is told in the thread's own words.
        info = Info(language="it-IT", event="")
    if decision.action is Action.NOTHING or info is None:
        after = decision.thread
        _write(_rows(context, alert, linked, after) + _active_changes(context, thread, after))
    else:
        case = _Case(alert, info, decision, facts, areas, thread, linked, newest)
        posted, after = _announce(context, case)
    return _outcome(context, alert, decision, posted), posted, after


def _stale(alert: Alert, thread: Thread, stored: dict[Key, Thread | None]) -> bool:
    """Older than the thread's newest message, and not answering one of the thread's messages at
    least as new: an issuer's clock may put a Cancel that references the newest update before that
    update's `sent`; it still ends the thread."""
    if thread.sent is None or alert.sent >= thread.sent:
        return False
    return not any(sent >= thread.sent for sent in _referenced_sent(alert, stored, thread.anchor))


def _newest(alert: Alert, thread: Thread | None) -> datetime:
    """The `sent` a thread carries after this alert: never earlier than what it had (a message
    answering the newest one may carry an earlier time)."""
    return max(alert.sent, thread.sent) if thread and thread.sent else alert.sent


def _referenced_sent(alert: Alert, stored: dict[Key, Thread | None], anchor: str) -> list[datetime]:
    """The readable `sent` times (kept as written in the triples) of an alert's references to
    messages of the thread under `anchor`."""
    times = []
    for reference in alert.references:
        row = stored.get((reference.sender, reference.identifier))
        if row is None or row.anchor != anchor:
            continue
        try:
            times.append(parse_time(reference.sent, "references"))
        except AlertError:
            continue  # a malformed triple's time says nothing about order
    return times


def _outcome(
    context: _Context, alert: Alert, decision: Decision, posted: list[Announced] | None
) -> AlertOutcome:
    logger.info(
        "Alert decided",
        extra={
            "tenant": context.tenant.id,
            "alert": alert.identifier,
            "action": decision.action.value,
            "reason": decision.reason,
            "drill": context.drill,
        },
    )
    return AlertOutcome(
        context.tenant.id,
        alert.identifier,
        decision.action.value,
        decision.reason,
        posted[0].announcement.id if posted else None,
    )


def _facts(info: Info | None, areas: tuple[Area, ...], level: Level | None) -> Facts | None:
    """The material facts for this tenant, or None when the alert is not for it (no matching area).
    An unreadable level keeps the thread's: an update must not close a thread for want of a colour."""
    if info is None or not areas or level is None:
        return None
    zones = tuple(sorted({area_name(area) for area in areas}))
    return Facts(level, hazard(info), zones, info.onset or info.effective, info.expires)


@dataclass(frozen=True)
class _Case:
    """One alert that gets a post, with what was decided about it."""

    alert: Alert
    info: Info
    decision: Decision
    facts: Facts | None
    areas: tuple[Area, ...]
    thread: Thread | None
    linked: list[Key]
    sent: datetime  # the thread's newest `sent` after this alert (_newest)


def _announce(context: _Context, case: _Case) -> tuple[list[Announced] | None, Thread | None]:
    alert, thread, decision = case.alert, case.thread, case.decision
    # A drill may reuse a real alert's identifier: its announcements must still be its own.
    own_key = alert_key(alert.sender, alert.identifier) + ("#drill" if context.drill else "")
    new_id = announcement_id(own_key, context.now)
    # An end of alert speaks of what was posted (its level and zones), not of the closing message.
    shown = thread.facts if decision.action is Action.END and thread else case.facts
    if shown is None:  # decide() posts only with facts or a thread
        return None, decision.thread
    facts = AlertFacts(
        alert=alert,
        info=case.info,
        level=shown.level,
        hazard=shown.hazard,
        areas=tuple(Area(description=zone) for zone in shown.zones)
        if decision.action is Action.END
        else case.areas,
    )
    post = alert_post(
        facts,
        now=context.now,
        kind=decision.action.value,  # type: ignore[arg-type]  # the same four values as PostKind
        previous_level=thread.facts.level if thread else None,
    )
    if decision.action in (Action.POST, Action.LEVEL_UP):
        # Later replies thread under this post.
        after: Thread | None = Thread(anchor=new_id, facts=shown, sent=case.sent)
        reply_under = None
    else:
        after, reply_under = decision.thread, thread.anchor if thread else None
    # Never posted late; an end of alert may still go out after the alert's own expiry.
    valid_until = None if decision.action is Action.END else shown.expires
    outgoing = [
        Outgoing(
            post.announcement(
                tenant=context.tenant.id,
                announcement_id=new_id,
                source=context.source.id,
                published=alert.sent,
                valid_until=valid_until,
            ),
            thread_anchor=reply_under,
        )
    ]
    if decision.action is Action.LEVEL_UP and thread is not None:
        # The raised alert is a new post; the old thread says so, so that nobody reading it takes
        # the lower level for the current one. Both or neither: one transaction.
        notice = raised_notice(facts, previous_level=thread.facts.level).announcement(
            tenant=context.tenant.id,
            announcement_id=announcement_id(f"{own_key}#raised", context.now),
            source=context.source.id,
            published=alert.sent,
            valid_until=valid_until,
        )
        outgoing.append(Outgoing(notice, thread_anchor=thread.anchor))
    posted = write_announcements(
        context.tenant,
        context.channels,
        outgoing,
        context.now,
        guards=_rows(context, alert, case.linked, after) + _active_changes(context, thread, after),
    )
    return posted, after


def _rows(context: _Context, alert: Alert, linked: list[Key], thread: Thread | None) -> list[dict[str, Any]]:
    """This alert's row (new, or replacing a "no post" row of another config: the guard against a
    second poller) and the rows of the identifiers it references, brought up to the thread's new state."""
    ledger, now = context.ledger, context.now
    claim, values = ledger.claim()
    if thread is None:
        info = preferred_info(alert)
        own = handled_row(ledger, alert.sender, alert.identifier, now, info.expires if info else None)
        return [put(own, claim, values)]
    rows = [put(thread_row(ledger, alert.sender, alert.identifier, thread, now), claim, values)]
    # A referenced row is brought forward only: a poll that read the rows before a push wrote a newer
    # update must not put older facts back (cancelled, the alert is handled again on the next read,
    # and superseded). `sent` is stored as fixed-width UTC text (clock.iso), so text order is time order.
    newer = "attribute_not_exists(sent) OR sent <= :sent"
    sent = {":sent": iso(thread.sent)} if thread.sent else None
    rows += [
        put(thread_row(ledger, sender, identifier, thread, now), newer if sent else None, sent)
        for sender, identifier in linked
    ]
    return rows


def _active_changes(context: _Context, before: Thread | None, after: Thread | None) -> list[dict[str, Any]]:
    """Keep the tenant's list of alerts in force (crisis mode reads it) in step with the thread:
    a new or raised thread is added under its anchor, an ended or superseded one removed. Drills in
    the sandbox are never in force."""
    if after == before or context.drill:
        return []
    changes: list[dict[str, Any]] = []
    if before and not before.ended and (after is None or after.ended or after.anchor != before.anchor):
        changes.append(
            {
                "Delete": {
                    "TableName": dynamo.table_name(),
                    "Key": active_key(context.tenant.id, before.anchor),
                }
            }
        )
    if after and not after.ended:
        changes.append(put(active_row(context.tenant.id, after, context.now)))
    return changes


def _write(guards: list[dict[str, Any]]) -> None:
    try:
        dynamo.client().transact_write_items(TransactItems=guards)
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
