"""The inbox lane's message: one platform event exactly as the webhook received it.

The body travels byte for byte (base64), so processing reads what was signed, and a Meta event is
checked again against each Page's own app secret before its entries are taken (webhook.py admits an
event signed by any configured app). Base64 makes a message 4/3 of the body; MAX_WEBHOOK_BYTES is the
largest body whose message still fits SQS's 256 KiB with room for the envelope.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chalicelib import aws, settings
from chalicelib.clock import iso, parse_iso
from chalicelib.config.models import SLUG_PATTERN

SQS_MAX_MESSAGE_BYTES = 256 * 1024
_ENVELOPE_BYTES = 2 * 1024
MAX_WEBHOOK_BYTES = (SQS_MAX_MESSAGE_BYTES - _ENVELOPE_BYTES) * 3 // 4
MAX_SIGNATURE_CHARS = 100
_SLUG = re.compile(SLUG_PATTERN)

Source = Literal["telegram", "meta"]


class BadEvent(ValueError):
    """A lane message that is not an inbound event: it can never succeed, so SQS moves it to the
    DLQ (visible, alarmed) after its attempts rather than it being dropped unseen."""


@dataclass(frozen=True)
class InboundEvent:
    source: Source
    received_at: datetime
    body: bytes
    # Telegram: the channel whose webhook URL received the update. Meta's one URL serves every
    # Page: its entries name their Page.
    tenant: str | None = None
    channel: str | None = None
    signature: str | None = None  # Meta: X-Hub-Signature-256 as received

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "source": self.source,
                "received_at": iso(self.received_at),
                "tenant": self.tenant,
                "channel": self.channel,
                "signature": self.signature,
                "body": base64.b64encode(self.body).decode("ascii"),
            }
        )

    def payload(self) -> dict[str, Any]:
        """The platform's JSON object (the webhook checked it was one before storing the event)."""
        data = json_object(self.body)
        if data is None:
            raise BadEvent("the body is not a JSON object")
        return data

    @classmethod
    def parse(cls, text: str) -> InboundEvent:
        try:
            data = json.loads(text)
        except ValueError:
            raise BadEvent("message body is not JSON") from None
        if not isinstance(data, dict) or data.get("v") != 1:
            raise BadEvent("unknown message version")
        source = data.get("source")
        if source not in ("telegram", "meta"):
            raise BadEvent("source must be telegram or meta")
        try:
            received_at = parse_iso(str(data.get("received_at")))
            body = base64.b64decode(str(data.get("body")), validate=True)
        except (ValueError, binascii.Error):
            raise BadEvent("received_at or body unreadable") from None
        return cls(
            source=source,
            received_at=received_at,
            body=body,
            tenant=_slug(data, "tenant"),
            channel=_slug(data, "channel"),
            signature=_signature(data),
        )


def json_object(body: bytes) -> dict[str, Any] | None:
    """A body's JSON object; None when it is not JSON, or JSON of another kind."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _slug(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not (isinstance(value, str) and _SLUG.fullmatch(value)):
        raise BadEvent(f"{name} must be an id")
    return value


def _signature(data: dict[str, Any]) -> str | None:
    value = data.get("signature")
    if value is not None and not (isinstance(value, str) and len(value) <= MAX_SIGNATURE_CHARS):
        raise BadEvent("signature must be a short string")
    return value


def enqueue(event: InboundEvent) -> None:
    """Store the event on the inbox lane; an error propagates, so the webhook answers 5xx and the
    platform sends the event again."""
    aws.client("sqs").send_message(
        QueueUrl=settings.required(settings.INBOX_QUEUE_URL_ENV), MessageBody=event.to_json()
    )
