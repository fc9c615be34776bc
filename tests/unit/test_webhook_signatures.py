"""The inbox webhooks' checks: Meta's X-Hub-Signature-256 passes only as the HMAC-SHA256 of the exact
raw body under the app secret, written as Meta writes it; Telegram's secret token only when equal;
both compared in constant time. A replayed genuine signature stays valid (the store's dedupe makes
a replay harmless). The inbox lane's message carries any admitted body byte for byte."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from chalicelib.inbox.ingest.queue import MAX_WEBHOOK_BYTES, SQS_MAX_MESSAGE_BYTES, BadEvent, InboundEvent
from chalicelib.inbox.ingest.webhook import same_secret, signed_sha256

APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BODY = (
    '{"object":"page","entry":[{"id":"5550001","changes":[{"value":{"message":"Città allagata"}}]}]}'.encode()
)


def _header(body: bytes = BODY, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_genuine_signature_passes_and_so_does_its_replay() -> None:
    assert signed_sha256(_header(), BODY, APP_SECRET)
    assert signed_sha256(_header(), BODY, APP_SECRET)  # the same call again: dedupe's business


def test_a_signature_under_another_secret_or_of_another_body_is_forged() -> None:
    assert not signed_sha256(_header(secret="il-segreto-di-un-altra-app"), BODY, APP_SECRET)
    assert not signed_sha256(_header(), BODY.replace(b"allagata", b"asciutta"), APP_SECRET)
    assert not signed_sha256(_header(), BODY + b"\n", APP_SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        _header()[:-1],  # one hex digit short
        _header() + "0",  # one too many
        _header()[:-2],
        "sha256=" + "0" * 64,  # the right length, the wrong digest
        "sha256=" + "g" * 64,  # not hex
        _header().upper(),
        " " + _header(),
        _header().replace("sha256=", "sha1="),
        "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest(),  # Meta's older header
        _header().replace("=", ":"),
        _header().removeprefix("sha256="),
    ],
)
def test_missing_malformed_and_wrong_length_signatures_fail(header: str | None) -> None:
    assert not signed_sha256(header, BODY, APP_SECRET)


def test_telegram_secret_token_must_be_equal() -> None:
    secret = "sandbox-comune-a-telegram-webhook-secret"
    assert same_secret(secret, secret)
    for given in (None, "", secret[:-1], secret + "x", secret.upper(), "è" + secret[1:]):
        assert not same_secret(given, secret)


def test_any_admitted_body_fits_one_lane_message_byte_for_byte() -> None:
    body = bytes(range(256)) * (MAX_WEBHOOK_BYTES // 256) + b"\xff" * (MAX_WEBHOOK_BYTES % 256)
    event = InboundEvent(
        "meta", datetime(2026, 11, 23, 5, 30, 1, 250_000, tzinfo=UTC), body, signature=_header(body)
    )
    message = event.to_json()
    assert len(body) == MAX_WEBHOOK_BYTES
    assert len(message.encode()) <= SQS_MAX_MESSAGE_BYTES
    assert InboundEvent.parse(message) == event


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        '{"v": 2}',
        '{"v": 1, "source": "x", "received_at": "2026-11-23T05:30:00+00:00", "body": ""}',
        '{"v": 1, "source": "meta", "received_at": "ieri", "body": ""}',
        '{"v": 1, "source": "meta", "received_at": "2026-11-23T05:30:00+00:00", "body": "%%%"}',
        '{"v": 1, "source": "telegram", "received_at": "2026-11-23T05:30:00+00:00", "body": "", '
        '"tenant": "../x"}',
        '{"v": 1, "source": "telegram", "received_at": "2026-11-23T05:30:00+00:00", "body": "", '
        '"tenant": "comune-a\\n"}',
    ],
)
def test_a_lane_message_that_is_no_inbound_event_is_refused(message: str) -> None:
    with pytest.raises(BadEvent):
        InboundEvent.parse(message)
