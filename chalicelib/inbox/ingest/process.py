"""process_inbound: each record of the inbox lane is one platform event, as its webhook stored it.

For each event: normalise it (telegram.py, meta.py), link the Telegram copies of our posts it shows,
then for each citizen message: flag it urgent when it reports a danger (the tenant's danger words,
or a location), record it in its conversation, and where the channel has `auto_replies` record at
most one automatic answer (the alert in force for a question about it, else the FAQ's) and hand
it to replies.queue_reply, which carries it to the platform like a staff reply.

Retries: any failure raises, the record alone goes back to the queue (partial batch response) and
the whole event is processed again later. Recording is idempotent per platform message and an
automatic answer has a fixed id per message (`auto-{message id}`), so a retry completes what is
missing and repeats nothing; counts are emitted only for what an attempt newly recorded.

A danger report gets no automatic answer, even when it mentions an FAQ phrase or the alert: a
person must read it, and an automatic reply could make the citizen think one had.
Nothing here logs message text or citizen identifiers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice.app import SQSEvent

from chalicelib import observability as obs
from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import Config, InboxConfig, Tenant
from chalicelib.inbox import store
from chalicelib.inbox.answers import active_alerts, automatic_answer, is_danger_report
from chalicelib.inbox.ingest import meta, telegram
from chalicelib.inbox.ingest.normalised import PostCopy
from chalicelib.inbox.ingest.queue import InboundEvent
from chalicelib.inbox.model import InboundMessage
from chalicelib.inbox.replies import queue_reply
from chalicelib.observability import logger


def handle_batch(event: SQSEvent) -> dict[str, Any]:
    response = process_partial_response(
        event=event.to_dict(),
        record_handler=process_record,
        # A batch where every record failed is still a partial answer, as on the publish lanes;
        # each failure is counted (InboundFailures, alarmed) and SQS retries the record.
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=event.context,  # type: ignore[arg-type]  # Chalice's context is Lambda's own object
    )
    return dict(response)


def process_record(record: SQSRecord) -> None:
    try:
        process_event(InboundEvent.parse(record.body), current_config(), utcnow())
    except Exception as error:
        # Nothing here is expected to fail, and a citizen may be reporting a danger: someone must
        # know in minutes, not when the DLQ fills. The type only: a message could quote data.
        obs.count(obs.INBOUND_FAILURES, error=type(error).__name__)
        logger.warning("Inbound event failed, to be retried", extra={"error": type(error).__name__})
        raise


def process_event(event: InboundEvent, config: Config, now: datetime) -> None:
    normalised = (telegram.normalise if event.source == "telegram" else meta.normalise)(event, config)
    for copy in normalised.copies:
        _link_copy(copy, now)
    for message in normalised.messages:
        ingest(message, config.tenant(message.tenant), now)
    for reason in normalised.ignored:
        obs.count(obs.INBOUND_IGNORED, platform=event.source, reason=reason)
    logger.info(
        "Inbound event processed",
        extra={
            "source": event.source,
            "messages": len(normalised.messages),
            "ignored": len(normalised.ignored),
        },
    )


def _link_copy(copy: PostCopy, now: datetime) -> None:
    """Let comments under a post's copy in the discussion group link to the post's announcement."""
    if store.announcement_for(copy.tenant, copy.channel, copy.copy_remote_id) is not None:
        return
    announcement = store.announcement_for(copy.tenant, copy.channel, copy.post_remote_id)
    if announcement is not None:
        store.link_post(copy.tenant, copy.channel, copy.copy_remote_id, announcement, now=now)


def ingest(message: InboundMessage, tenant: Tenant, now: datetime) -> None:
    inbox = tenant.inbox or InboxConfig()
    urgent = message.location is not None or is_danger_report(message.text, inbox.danger_words)
    result = store.record_inbound(message, retention_days=inbox.retention_days, now=now, urgent=urgent)
    if not result.duplicate:
        obs.count(obs.INBOUND_MESSAGES, platform=message.platform, kind=message.kind)
        if urgent:
            obs.count(obs.DANGER_REPORTS, platform=message.platform)
        logger.info(
            "Citizen message recorded",
            extra={
                "tenant": message.tenant,
                "channel": message.channel,
                "kind": message.kind,
                "urgent": urgent,
                "new_conversation": result.created_conversation,
                "reopened": result.reopened,
            },
        )
    if tenant.channel(message.channel).auto_replies and not urgent:
        _answer(message, result, inbox, now)


def _answer(message: InboundMessage, recorded: store.RecordResult, inbox: InboxConfig, now: datetime) -> None:
    answer = automatic_answer(message.text, inbox.faq, lambda: active_alerts(message.tenant, now), now)
    if answer is None:
        return
    outbound = store.record_outbound(
        message.tenant,
        recorded.conversation.id,
        text=answer.text,
        author=answer.source,
        automatic=True,
        retention_days=inbox.retention_days,
        hours=inbox.office_hours,
        # Never before the question, whatever the platform's clock said.
        now=max(now, recorded.message.at),
        message_id=f"auto-{recorded.message.id}",
        reply_to_message_id=recorded.message.id,
        # Its delivery row is keyed by the message id (queue_reply), as a staff reply's is.
        delivery_id=f"auto-{recorded.message.id}",
    )
    if not outbound.duplicate:
        obs.count(obs.AUTOMATIC_ANSWERS, source=answer.source)
    # Also after a duplicate: the attempt that recorded the answer may have failed before this.
    queue_reply(outbound.conversation, outbound.message, now=now)
