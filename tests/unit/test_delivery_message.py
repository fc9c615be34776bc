"""Queue messages (deliveries and reply jobs) are validated before anything acts on them; anything
else goes to the DLQ."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.publishing.lanes import BadMessage, DeliveryMessage, ReplyJob, parse_message

IDENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40)


@given(tenant=IDENT, announcement=IDENT, channel=IDENT, lane=st.sampled_from(["normal", "urgent"]))
def test_round_trip(tenant: str, announcement: str, channel: str, lane: str) -> None:
    message = DeliveryMessage(tenant, announcement, channel, lane)  # type: ignore[arg-type]
    assert parse_message(message.to_json()) == message


@given(tenant=IDENT, conversation=IDENT, message=IDENT, channel=IDENT)
def test_a_reply_job_round_trips_and_is_told_from_a_delivery(
    tenant: str, conversation: str, message: str, channel: str
) -> None:
    job = ReplyJob(tenant, conversation, message, channel)
    assert parse_message(job.to_json()) == job


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "not JSON"),
        (json.dumps({"v": 2}), "unknown message version"),
        (json.dumps({"v": 1, "tenant": "a", "announcement": "b", "channel": "c", "lane": "fast"}), "lane"),
        (
            json.dumps({"v": 1, "tenant": "../x", "announcement": "b", "channel": "c", "lane": "normal"}),
            "tenant",
        ),
        (
            json.dumps({"v": 1, "tenant": "a", "announcement": 5, "channel": "c", "lane": "normal"}),
            "announcement",
        ),
        (json.dumps({"v": 1, "tenant": "a", "announcement": "b", "lane": "normal"}), "channel"),
        ("x" * 2000, "too large"),
        (json.dumps({"v": 1, "kind": "poll", "tenant": "a", "channel": "c", "lane": "urgent"}), "kind"),
        (
            json.dumps({"v": 1, "kind": "reply", "tenant": "a", "conversation": "b", "lane": "urgent"}),
            "message",
        ),
    ],
)
def test_bad_messages_are_refused_with_a_reason(body: str, why: str) -> None:
    with pytest.raises(BadMessage, match=why):
        parse_message(body)
