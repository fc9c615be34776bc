"""The staff API behind the /inbox routes (app.py hands each request to `serve` with its handler).

Checks come in this order: authentication (401), membership of the tenant named in the path (403:
nothing about another tenant is revealed, not even whether it exists), the tenant in the deployed
configuration (404), the input (400, 413, 415), then the conversation (404) and concurrent changes
(409). `serve` is the one place that turns those refusals into responses; bad input never reaches
the store, so it never becomes a 5xx.

Every change and every export of personal data is audited (who, what, when and which fields, never
message text); reading lists, conversations, figures and the trail itself is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from chalice.app import Request, Response

from chalicelib.clock import ROME, utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import InboxConfig
from chalicelib.inbox import api_views as views
from chalicelib.inbox import auth, consultations, figures, gdpr, lifecycle, replies, store
from chalicelib.inbox.api_requests import (
    ANNOUNCEMENT_PATTERN,
    CITIZEN_KEY_PATTERN,
    CONVERSATION_PATTERN,
    ID_PATTERN,
    AuditQuery,
    BadRequest,
    ConversationChange,
    FiguresQuery,
    ListQuery,
    NoQuery,
    NoteBody,
    ObservationsQuery,
    PageQuery,
    PayloadTooLarge,
    ReplyBody,
    UnsupportedMediaType,
    check_format,
    read_body,
    read_query,
)
from chalicelib.inbox.model import Conversation, OutboundKind
from chalicelib.observability import logger

T = TypeVar("T")
NO_STORE = {"Cache-Control": "no-store"}  # personal data: no browser or proxy keeps a copy
IDEMPOTENCY_HEADER = "Idempotency-Key"


class UnknownTenant(Exception):
    """A tenant the caller belongs to that the deployed configuration no longer has."""


_REFUSALS: dict[type[Exception], tuple[int, str]] = {
    auth.NotAuthenticated: (401, auth.UNAUTHENTICATED_MESSAGE),
    auth.NotAllowed: (403, "Non fai parte dello staff di questo ente."),
    UnknownTenant: (404, "Ente sconosciuto."),
    BadRequest: (400, "Richiesta non valida."),
    PayloadTooLarge: (413, "Richiesta troppo grande."),
    UnsupportedMediaType: (415, "Il corpo della richiesta deve essere JSON (application/json)."),
    store.NotFound: (404, "Conversazione non trovata."),
    store.Conflict: (409, "La conversazione è cambiata nel frattempo: ricaricala e riprova."),
    auth.StaffDirectoryUnavailable: (503, "Elenco dello staff non raggiungibile: riprova tra poco."),
}


@dataclass(frozen=True)
class Call:
    """One authorised request: who asks, for which tenant, with that tenant's inbox settings."""

    request: Request
    staff: auth.Staff
    tenant: str
    inbox: InboxConfig
    now: datetime


def serve(request: Request, tenant: str, handler: Callable[..., Response], *path: str) -> Response:
    """Authenticate, authorise for `tenant`, run `handler(call, *path)`, map refusals to responses."""
    try:
        staff = auth.authenticate(request.context, request.headers)
        staff.check_member(tenant)
        return handler(Call(request, staff, tenant, _inbox_of(tenant), utcnow()), *path)
    except tuple(_REFUSALS) as refusal:
        return _refused(request, refusal)


def _inbox_of(tenant: str) -> InboxConfig:
    try:
        configured = current_config().tenant(tenant)
    except KeyError:
        raise UnknownTenant(tenant) from None
    # A tenant without inbox settings gets the defaults: its data stays readable, exportable and
    # erasable (GDPR requests do not wait for the configuration).
    return configured.inbox or InboxConfig()


def _refused(request: Request, refusal: Exception) -> Response:
    status, message = next(answer for kind, answer in _REFUSALS.items() if isinstance(refusal, kind))
    body: dict[str, Any] = {"error": message}
    headers: dict[str, str | list[str]] = {**NO_STORE}
    if isinstance(refusal, BadRequest):
        body["fields"] = refusal.fields
    if isinstance(refusal, auth.NotAuthenticated):
        headers["WWW-Authenticate"] = auth.WWW_AUTHENTICATE
    if isinstance(refusal, auth.StaffDirectoryUnavailable):
        headers["Retry-After"] = "5"
        logger.warning("Staff directory unavailable", extra={"error": str(refusal)})
    logger.info("Staff API request refused", extra={"status": status, "route": request.path})
    return Response(body=body, status_code=status, headers=headers)


def _ok(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={**NO_STORE})


def _with_cursor(read: Callable[[], T]) -> T:
    """A client's cursor that is not one we issued for this list is bad input, not an error."""
    try:
        return read()
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        if field != "cursor":
            raise
        raise BadRequest({"cursor": message}) from None


def _audit(call: Call, action: str, conversation_id: str | None, fields: dict[str, store.AuditValue]) -> None:
    store.audit(call.tenant, call.staff.user, action, conversation_id, fields, now=call.now)


# ---- conversations --------------------------------------------------------------------------


def list_conversations(call: Call) -> Response:
    query = read_query(call.request, ListQuery)
    page = _with_cursor(
        lambda: store.list_conversations(
            call.tenant,
            status=query.status,
            channel=query.channel,
            tag=query.tag,
            assignee=query.assignee,
            limit=query.limit,
            cursor=query.cursor,
        )
    )
    return _ok({"items": [views.summary(row) for row in page.items], "next_cursor": page.cursor})


def get_conversation(call: Call, conversation_id: str) -> Response:
    check_format("conversation_id", conversation_id, CONVERSATION_PATTERN)
    query = read_query(call.request, PageQuery)
    conversation = _existing(call, conversation_id)
    page = _with_cursor(
        lambda: store.messages(call.tenant, conversation_id, limit=query.limit, cursor=query.cursor)
    )
    states = replies.delivery_states(
        call.tenant, conversation_id, [m.id for m in page.items if m.delivery_id]
    )
    return _ok(
        {
            "conversation": views.conversation(conversation),
            "messages": views.messages(page.items, states),
            "next_cursor": page.cursor,
        }
    )


def change_conversation(call: Call, conversation_id: str) -> Response:
    check_format("conversation_id", conversation_id, CONVERSATION_PATTERN)
    read_query(call.request, NoQuery)
    change = read_body(call.request, ConversationChange)
    # Only the tenant's own staff can be given a conversation; unassigning is always possible.
    if change.assignee is not None and not auth.is_tenant_staff(call.tenant, change.assignee):
        raise BadRequest({"assignee": "is not a staff member of this tenant"})

    def changed(current: Conversation) -> Conversation:
        new = current
        if change.status is not None:
            new = lifecycle.with_status(new, change.status, call.now)
        if change.assignee_given:
            new = lifecycle.with_assignee(new, change.assignee, call.now)
        if change.tags is not None:
            new = lifecycle.with_tags(new, tuple(dict.fromkeys(change.tags)), call.now)
        return new

    updated = store.apply_changes(
        call.tenant,
        conversation_id,
        changed,
        hours=call.inbox.office_hours,
        expected_version=change.version,
    )
    # The values as stored (tags deduplicated), for the fields the request set.
    stored: dict[str, store.AuditValue] = {
        "status": updated.status,
        "assignee": updated.assignee,
        "tags": list(updated.tags),
    }
    _audit(call, "update", conversation_id, {k: v for k, v in stored.items() if k in change.model_fields_set})
    return _ok({"conversation": views.conversation(updated)})


def add_note(call: Call, conversation_id: str) -> Response:
    check_format("conversation_id", conversation_id, CONVERSATION_PATTERN)
    read_query(call.request, NoQuery)
    note = read_body(call.request, NoteBody)
    result = _record(call, conversation_id, note.text, "note")
    if not result.duplicate:
        _audit(call, "note", conversation_id, {"message_id": result.message.id})
    return _ok(
        {"message": views.message(result.message), "conversation": views.conversation(result.conversation)},
        status=200 if result.duplicate else 201,
    )


def reply(call: Call, conversation_id: str) -> Response:
    """Record a staff reply (the first one is the first response, measured now) and queue it for
    the citizen's platform. Its delivery state says "queued" until the platform confirmed it."""
    check_format("conversation_id", conversation_id, CONVERSATION_PATTERN)
    read_query(call.request, NoQuery)
    answer = read_body(call.request, ReplyBody)
    conversation = _existing(call, conversation_id)
    if answer.private and conversation.kind != "comment":
        raise BadRequest({"private": "only an answer to a public comment can be private"})
    result = _record(
        call,
        conversation_id,
        answer.text,
        "reply",
        reply_to_message_id=conversation.last_inbound_message_id,
        private=answer.private,
    )
    delivery = replies.queue_reply(result.conversation, result.message, now=call.now)
    if not result.duplicate:
        fields: dict[str, store.AuditValue] = {"message_id": result.message.id, "private": answer.private}
        _audit(call, "reply", conversation_id, fields)
    return _ok(
        {
            "message": views.message(result.message, delivery.state),
            "conversation": views.conversation(result.conversation),
        },
        status=200 if result.duplicate else 201,
    )


def _record(
    call: Call, conversation_id: str, text: str, kind: OutboundKind, **options: Any
) -> store.OutboundResult:
    """Record a note or reply; an Idempotency-Key header makes a client's retry record nothing new."""
    key = call.request.headers.get(IDEMPOTENCY_HEADER)
    message_id = (
        check_format(IDEMPOTENCY_HEADER, key, ID_PATTERN) if key is not None else uuid.uuid4().hex[:20]
    )
    return store.record_outbound(
        call.tenant,
        conversation_id,
        text=text,
        author=call.staff.user,
        kind=kind,
        retention_days=call.inbox.retention_days,
        hours=call.inbox.office_hours,
        now=call.now,
        message_id=message_id,
        delivery_id=message_id if kind == "reply" else None,
        **options,
    )


def _existing(call: Call, conversation_id: str) -> Conversation:
    conversation = store.get_conversation(call.tenant, conversation_id)
    if conversation is None:
        raise store.NotFound(conversation_id)
    return conversation


# ---- figures, consultations, GDPR, audit ----------------------------------------------------


def response_figures(call: Call) -> Response:
    query = read_query(call.request, FiguresQuery)
    first, last = query.days()
    report = figures.report(
        call.tenant,
        start=_midnight(first),
        end=_midnight(last + timedelta(days=1)),
        channel=query.channel,
        period=query.period,
    )
    return _ok(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "period": query.period,
            "channel": query.channel,
            "periods": views.figures(report),
        }
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ROME)


def observations(call: Call, announcement_id: str) -> Response:
    check_format("announcement_id", announcement_id, ANNOUNCEMENT_PATTERN)
    query = read_query(call.request, ObservationsQuery)
    found, cursor = _with_cursor(
        lambda: consultations.observations(call.tenant, announcement_id, cursor=query.cursor)
    )
    fields: dict[str, store.AuditValue] = {
        "announcement_id": announcement_id,
        "format": query.format,
        "observations": len(found),
    }
    _audit(call, "export_observations", None, fields)
    if query.format == "json":
        return _ok(
            {
                "announcement_id": announcement_id,
                "items": [views.observation(item) for item in found],
                "next_cursor": cursor,
            }
        )
    headers: dict[str, str | list[str]] = {
        **NO_STORE,
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="osservazioni-{announcement_id}.csv"',
        **({"X-Next-Cursor": cursor} if cursor else {}),
    }
    return Response(body=views.observations_csv(found), status_code=200, headers=headers)


def export_citizen(call: Call, citizen_key: str) -> Response:
    check_format("citizen_key", citizen_key, CITIZEN_KEY_PATTERN)
    read_query(call.request, NoQuery)
    exported = gdpr.export_citizen(call.tenant, citizen_key)
    _audit(call, "export_citizen", None, {"conversations": len(exported["conversations"])})
    return _ok(exported)


def erase_citizen(call: Call, citizen_key: str) -> Response:
    check_format("citizen_key", citizen_key, CITIZEN_KEY_PATTERN)
    read_query(call.request, NoQuery)
    erased = gdpr.erase_citizen(call.tenant, citizen_key, user=call.staff.user, now=call.now)  # audited there
    return _ok({"conversations": erased.conversations, "messages": erased.messages})


def audit_trail(call: Call) -> Response:
    month = read_query(call.request, AuditQuery).chosen_month()
    return _ok({"month": month, "entries": views.audit(store.audit_entries(call.tenant, month))})
