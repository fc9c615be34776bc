"""What the staff API answers: the JSON shapes of conversations, messages, figures and the audit
trail (openapi/inbox.yaml describes each), and the CSV of a consultation's observations.

Staff see what they need to answer and nothing more: the citizen's display name and pseudonymous
key (for GDPR requests), never the platform's user id or the adapters' reply targets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chalicelib.clock import iso
from chalicelib.inbox.consultations import Observation
from chalicelib.inbox.figures import Distribution, PeriodFigures
from chalicelib.inbox.model import Conversation, ConversationSummary, Message
from chalicelib.inbox.store import AuditEntry

Json = dict[str, Any]
OBSERVATION_COLUMNS = (
    "received_at",
    "channel",
    "platform",
    "citizen_name",
    "text",
    "lat",
    "lon",
    "conversation_id",
    "message_id",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such cells get
# a leading apostrophe, which spreadsheets show as text and never evaluate.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _when(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def _shown(c: Conversation | ConversationSummary) -> Json:
    """What a list row and a whole conversation both show."""
    return {
        "id": c.id,
        "channel": c.channel,
        "platform": c.platform,
        "kind": c.kind,
        "status": c.status,
        "urgent": c.urgent,
        "tags": list(c.tags),
        "assignee": c.assignee,
        "snippet": c.snippet,
        "announcement_id": c.announcement_id,
        "opened_at": iso(c.opened_at),
        "last_activity_at": iso(c.last_activity_at),
        "first_response_at": _when(c.first_response_at),
    }


def summary(row: ConversationSummary) -> Json:
    return {**_shown(row), "citizen_name": row.citizen_name, "sla_breached": row.sla_breached}


def conversation(c: Conversation) -> Json:
    return {
        **_shown(c),
        "citizen_name": c.citizen.display_name,
        "citizen_key": c.citizen_key,
        "resolved_at": _when(c.resolved_at),
        "sla_breached_at": _when(c.sla_breached_at),
        "message_count": c.message_count,
        "reopen_count": c.reopen_count,
        "version": c.version,
    }


def message(m: Message, delivery_state: str | None = None) -> Json:
    return {
        "id": m.id,
        "direction": m.direction,
        "kind": m.kind,
        "text": m.text,
        "at": iso(m.at),
        "author": m.author,
        "automatic": m.automatic,
        "private": m.private,
        "reply_to_message_id": m.reply_to_message_id,
        "location": {"lat": m.location.lat, "lon": m.location.lon} if m.location else None,
        # Outbound replies: "queued" until the platform confirmed it ("sent") or refused it ("failed").
        "delivery_state": delivery_state,
    }


def messages(page: Sequence[Message], states: Mapping[str, str]) -> list[Json]:
    return [message(m, states.get(m.id)) for m in page]


def figures(report: Sequence[PeriodFigures]) -> list[Json]:
    return [
        {
            "start": iso(period.start),
            "end": iso(period.end),
            "conversations": period.conversations,
            "first_response": _distribution(period.first_response),
            "resolution": _distribution(period.resolution),
            "resolved_without_reply": period.resolved_without_reply,
        }
        for period in report
    ]


def _distribution(d: Distribution) -> Json:
    return {
        "count": d.count,
        "waiting": d.waiting,
        "median_seconds": d.median_seconds,
        "p90_seconds": d.p90_seconds,
        "buckets": [
            {"label": b.label, "upper_seconds": b.upper_seconds, "count": b.count} for b in d.buckets
        ],
    }


def audit(entries: Sequence[AuditEntry]) -> list[Json]:
    return [
        {
            "at": iso(entry.at),
            "user": entry.user,
            "action": entry.action,
            "conversation_id": entry.conversation_id,
            "fields": entry.fields,
        }
        for entry in entries
    ]


def observation(o: Observation) -> Json:
    location = o.message.location
    return {
        "received_at": iso(o.message.at),
        "channel": o.conversation.channel,
        "platform": o.conversation.platform,
        "citizen_name": o.conversation.citizen.display_name,
        "text": o.message.text,
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "conversation_id": o.conversation.id,
        "message_id": o.message.id,
    }


def observations_csv(found: Sequence[Observation]) -> str:
    """RFC 4180 CSV with a header row. It starts with a byte order mark: without it, the
    spreadsheet most administrations open it with reads UTF-8 as Latin-1 and garbles accents."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(OBSERVATION_COLUMNS)
    for item in found:
        row = observation(item)
        writer.writerow([_cell(row[column]) for column in OBSERVATION_COLUMNS])
    return "\ufeff" + out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):  # what citizens wrote; numbers (a negative latitude) stay numbers
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    return str(value)
