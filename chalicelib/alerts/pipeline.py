"""From parsed alerts to posts on one tenant's channels: match, decide against the stored thread,
then write the thread rows, the announcement and its deliveries in one transaction.

Every alert identifier a tenant has handled gets a row (with its thread, or marked as needing no
post), written with the announcement: an alert read again on the next poll, seconds later, is
skipped after one batch read, and two pollers cannot both post it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.alerts.areas import admits, matching_areas
from chalicelib.alerts.cap import alert_level, hazard, is_all_clear, preferred_info
from chalicelib.alerts.model import Alert, Area, Info, Level
from chalicelib.alerts.render import AlertFacts, alert_post, area_name
from chalicelib.alerts.threads import Action, Decision, Facts, Thread, decide
from chalicelib.config.models import AlertsConfig, CapSource, Tenant
from chalicelib.observability import logger
from chalicelib.publishing.announce import Announced, announcement_id, put, write_announcement
from chalicelib.storage import dynamo
from chalicelib.storage.alert_threads import (
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


def handle_alerts(
    tenant: Tenant, source: CapSource, alerts: Sequence[Alert], now: datetime
) -> tuple[list[AlertOutcome], list[Announced]]:
    """Decide and record each alert not yet handled for this tenant; the caller enqueues the
    deliveries of what was announced."""
    if tenant.alerts is None or not alerts:
        return [], []
    context = _Context(tenant, tenant.alerts, source, now)
    wanted = {(a.sender, a.identifier) for a in alerts}
    wanted |= {(r.sender, r.identifier) for a in alerts for r in a.references}
    stored = find_rows(tenant.id, wanted)
    outcomes: list[AlertOutcome] = []
    announced: list[Announced] = []
    # Originals before their updates, so an update in the same document finds its thread.
    for alert in sorted(alerts, key=lambda a: a.sent):
        if (alert.sender, alert.identifier) in stored:
            continue  # handled on an earlier poll
        outcome, posted, thread = _handle(context, alert, stored)
        if outcome.action != Action.NOTHING.value and posted is None:
            # Another poller or a push handled this alert first: what it stored is the truth.
            stored.update(find_rows(tenant.id, wanted))
            outcome = AlertOutcome(tenant.id, alert.identifier, Action.NOTHING.value, "handled elsewhere")
        else:
            stored[(alert.sender, alert.identifier)] = thread
        outcomes.append(outcome)
        announced.extend([posted] if posted else [])
    return outcomes, announced


def _handle(
    context: _Context, alert: Alert, stored: dict[Key, Thread | None]
) -> tuple[AlertOutcome, Announced | None, Thread | None]:
    own = (alert.sender, alert.identifier)
    # Each referenced thread row once (a feed may repeat a triple), at most MAX_LINKED of them so
    # the transaction stays far below DynamoDB's 100 items.
    references = dict.fromkeys((r.sender, r.identifier) for r in alert.references)
    linked = [key for key in references if key != own and stored.get(key)][:MAX_LINKED]
    thread = stored[linked[0]] if linked else None
    if not admits(alert, context.config):
        # Test, Exercise, Draft, Ack, Error, non-public scope: never posted, and never allowed to
        # change what was posted for real (an exercise cancel must not end a real alert).
        _write(_rows(context, alert, [], None))
        return AlertOutcome(context.tenant.id, alert.identifier, "nothing", "not a public alert"), None, None
    info, areas, level = _best_info(alert, context.config)
    facts = _facts(info, areas, level or (thread.facts.level if thread else None))
    decision = decide(
        facts=facts,
        all_clear=is_all_clear(alert, info),
        thread=thread,
        min_level=context.config.minimum_level,
        now=context.now,
    )
    posted: Announced | None = None
    if decision.action is not Action.NOTHING and info is None and thread is not None:
        # A Cancel may carry no info at all: the end of alert is told in the thread's own words.
        info = Info(language="it-IT", event="")
    if decision.action is Action.NOTHING or info is None:
        after = decision.thread
        _write(_rows(context, alert, linked, after) + _active_changes(context, thread, after))
    else:
        case = _Case(alert, info, decision, facts, areas, thread, linked)
        posted, after = _announce(context, case)
    logger.info(
        "Alert decided",
        extra={"tenant": context.tenant.id, "alert": alert.identifier, "action": decision.action.value},
    )
    outcome = AlertOutcome(
        context.tenant.id,
        alert.identifier,
        decision.action.value,
        decision.reason,
        posted.announcement.id if posted else None,
    )
    return outcome, posted, after


def _best_info(alert: Alert, config: AlertsConfig) -> tuple[Info | None, tuple[Area, ...], Level | None]:
    """The info block that concerns the tenant most: among the blocks in the preferred language
    (the DPC bulletin writes one per level and day, all Italian), the most severe one whose areas
    match; the preferred block when none matches (an end of alert may still need its texts)."""
    preferred = preferred_info(alert)
    if preferred is None:
        return None, (), None
    best: tuple[Info | None, tuple[Area, ...], Level | None] = (preferred, (), alert_level(preferred))
    for info in alert.infos:
        if info.language != preferred.language:
            continue
        areas = matching_areas(info, config)
        level = alert_level(info)
        if areas and (not best[1] or (level or 0) > (best[2] or 0)):
            best = (info, areas, level)
    return best


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


def _announce(context: _Context, case: _Case) -> tuple[Announced | None, Thread | None]:
    alert, thread, decision = case.alert, case.thread, case.decision
    new_id = announcement_id(alert_key(alert.sender, alert.identifier), context.now)
    # An end of alert speaks of what was posted (its level and zones), not of the closing message.
    shown = thread.facts if decision.action is Action.END and thread else case.facts
    if shown is None:  # decide() posts only with facts or a thread
        return None, decision.thread
    post = alert_post(
        AlertFacts(
            alert=alert,
            info=case.info,
            level=shown.level,
            hazard=shown.hazard,
            areas=tuple(Area(description=zone) for zone in shown.zones)
            if decision.action is Action.END
            else case.areas,
        ),
        now=context.now,
        kind=decision.action.value,  # type: ignore[arg-type]  # the same four values as PostKind
        previous_level=thread.facts.level if thread else None,
    )
    if decision.action in (Action.POST, Action.LEVEL_UP):
        after: Thread | None = Thread(anchor=new_id, facts=shown)  # later replies thread under this post
        reply_under = None
    else:
        after, reply_under = decision.thread, thread.anchor if thread else None
    announcement = post.announcement(
        tenant=context.tenant.id,
        announcement_id=new_id,
        source=context.source.id,
        published=alert.sent,
        # Never posted late; an end of alert may still go out after the alert's own expiry.
        valid_until=None if decision.action is Action.END else shown.expires,
    )
    posted = write_announcement(
        context.tenant,
        context.source.id,
        announcement,
        context.now,
        guards=_rows(context, alert, case.linked, after) + _active_changes(context, thread, after),
        thread_anchor=reply_under,
    )
    return posted, after


def _rows(context: _Context, alert: Alert, linked: list[Key], thread: Thread | None) -> list[dict[str, Any]]:
    """This alert's row (new: the guard against a second poller) and the rows of the identifiers it
    references, brought up to the thread's new state."""
    tenant, now = context.tenant.id, context.now
    if thread is None:
        info = preferred_info(alert)
        own = handled_row(tenant, alert.sender, alert.identifier, now, info.expires if info else None)
        return [put(own, "attribute_not_exists(pk)")]
    rows = [put(thread_row(tenant, alert.sender, alert.identifier, thread, now), "attribute_not_exists(pk)")]
    rows += [put(thread_row(tenant, sender, identifier, thread, now)) for sender, identifier in linked]
    return rows


def _active_changes(context: _Context, before: Thread | None, after: Thread | None) -> list[dict[str, Any]]:
    """Keep the tenant's list of alerts in force (crisis mode reads it) in step with the thread:
    a new or raised thread is added under its anchor, an ended or superseded one removed."""
    if after == before:
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
