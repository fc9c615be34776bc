"""The staff API over real HTTP on the local stack: authentication, tenant isolation (reads and
writes across tenants refused, nothing written), every route's behaviour and its refusals (400 with
field messages, 404, 409, 413, 415), replies recorded and queued honestly, and the audit trail."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.inbox import auth, store
from chalicelib.inbox.api_requests import MAX_BODY_BYTES, MAX_TEXT
from chalicelib.storage import dynamo
from devtools.stack import LocalStack
from tests.integration.staff_api_support import (
    TENANTS,
    WITHOUT_INBOX,
    StaffClient,
    citizen_writes,
    queued_jobs,
    reset,
    staff_api_stack,
)

A, B = TENANTS
TEXT = "Buongiorno, le scuole sono aperte domani?"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with staff_api_stack(tmp_path_factory.mktemp("staff-api")) as started:
        started.mint_dev_token("anna", [A])  # a colleague conversations can be assigned to
        yield started


@pytest.fixture(autouse=True)
def empty(stack: LocalStack) -> None:
    reset(stack)


@pytest.fixture
def staff(stack: LocalStack) -> StaffClient:
    """Staff of comune-a only."""
    return StaffClient(str(stack.api_url), stack.dev_tokens[A])


def _conversation(tenant_id: str = A, message_id: str = "m1", **options: object) -> str:
    return citizen_writes(message_id, tenant_id=tenant_id, text=TEXT, **options).conversation.id  # type: ignore[arg-type]


def _error(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert isinstance(body["error"], str) and body["error"]
    return body


# ---- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer  "],
    ids=["none", "empty", "no-token", "unknown", "basic", "blank"],
)
def test_requests_without_a_valid_token_are_refused_with_401(
    stack: LocalStack, authorization: str | None
) -> None:
    client = StaffClient(str(stack.api_url), None)
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get(f"/inbox/{A}/conversations", headers=headers)
    _error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"


def test_a_token_is_matched_whole_not_by_prefix(stack: LocalStack) -> None:
    token = stack.dev_tokens[A]
    for near in (token[:-1], token + "x", token.upper()):
        _error(StaffClient(str(stack.api_url), near).get(f"/inbox/{A}/conversations"), 401)


def test_tests_can_mint_their_own_dev_token(stack: LocalStack) -> None:
    token = stack.mint_dev_token("collaudo", [B])
    client = StaffClient(str(stack.api_url), token)
    assert client.get(f"/inbox/{B}/conversations").status_code == 200
    _error(client.get(f"/inbox/{A}/conversations"), 403)


def test_the_all_tenants_token_reaches_every_tenant(stack: LocalStack) -> None:
    client = StaffClient(str(stack.api_url), stack.dev_tokens["*"])
    for tenant_id in (A, B, WITHOUT_INBOX):
        assert client.get(f"/inbox/{tenant_id}/conversations").status_code == 200


def test_a_tenant_gone_from_the_configuration_is_404_for_its_staff(stack: LocalStack) -> None:
    client = StaffClient(str(stack.api_url), stack.mint_dev_token("ex", ["comune-chiuso"]))
    _error(client.get("/inbox/comune-chiuso/conversations"), 404)


# ---- tenant isolation -----------------------------------------------------------------------

ROUTES_OF_B = [
    ("GET", "/inbox/{b}/conversations", None),
    ("GET", "/inbox/{b}/conversations/{cid}", None),
    ("PATCH", "/inbox/{b}/conversations/{cid}", {"status": "resolved", "tags": ["x"], "assignee": "intruso"}),
    ("POST", "/inbox/{b}/conversations/{cid}/notes", {"text": "nota"}),
    ("POST", "/inbox/{b}/conversations/{cid}/reply", {"text": "risposta"}),
    ("GET", "/inbox/{b}/figures", None),
    ("GET", "/inbox/{b}/consultations/ann-1/observations?format=csv", None),
    ("GET", "/inbox/{b}/citizens/{key}/export", None),
    ("DELETE", "/inbox/{b}/citizens/{key}", None),
    ("GET", "/inbox/{b}/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES_OF_B, ids=[f"{m} {p}" for m, p, _ in ROUTES_OF_B])
def test_staff_of_one_tenant_can_neither_read_nor_change_another(
    staff: StaffClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    recorded = citizen_writes("m1", tenant_id=B, text=TEXT)
    before = store.get_conversation(B, recorded.conversation.id)
    url = path.format(b=B, cid=recorded.conversation.id, key=recorded.conversation.citizen_key)
    response = staff.request(method, url, json=body)
    refused = _error(response, 403)
    assert TEXT not in response.text and "fields" not in refused
    # Nothing written in comune-b: the conversation, its messages and its trail are as they were.
    assert store.get_conversation(B, recorded.conversation.id) == before
    assert len(store.messages(B, recorded.conversation.id).items) == 1
    assert store.audit_entries(B, datetime.now(UTC).strftime("%Y-%m")) == []


def test_a_tenant_that_does_not_exist_is_refused_like_any_other(staff: StaffClient) -> None:
    """403 whether the tenant exists or not: the answer reveals nothing about other tenants."""
    for tenant_id in ("comune-inesistente", "NOT A SLUG", B):
        _error(staff.get(f"/inbox/{tenant_id}/conversations"), 403)


def test_a_conversation_of_another_tenant_is_not_found_under_ones_own(staff: StaffClient) -> None:
    conversation_id = _conversation(B)
    _error(staff.get(f"/inbox/{A}/conversations/{conversation_id}"), 404)
    _error(staff.post(f"/inbox/{A}/conversations/{conversation_id}/reply", json={"text": "x"}), 404)
    assert len(store.messages(B, conversation_id).items) == 1


# ---- lists ----------------------------------------------------------------------------------


def test_list_pages_through_a_status_urgent_first_then_newest(staff: StaffClient) -> None:
    old = _conversation(message_id="m1", user="u1", ago=timedelta(hours=3))
    new = _conversation(message_id="m2", user="u2", ago=timedelta(hours=1))
    urgent = _conversation(message_id="m3", user="u3", ago=timedelta(hours=5), urgent=True)
    first = staff.get(f"/inbox/{A}/conversations", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == [urgent, new]
    assert first["items"][0]["urgent"] is True and first["items"][0]["snippet"] == TEXT
    second = staff.get(
        f"/inbox/{A}/conversations", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [item["id"] for item in second["items"]] == [old]
    assert second["next_cursor"] is None


def test_list_filters_by_status_channel_tag_and_assignee(staff: StaffClient) -> None:
    tagged = _conversation(message_id="m1", user="u1")
    other = _conversation(message_id="m2", user="u2", channel="mastodon", platform="mastodon")
    staff.patch(f"/inbox/{A}/conversations/{tagged}", json={"tags": ["scuole"], "assignee": "anna"})
    staff.patch(f"/inbox/{A}/conversations/{other}", json={"status": "resolved"})

    def ids(**params: str) -> list[str]:
        response = staff.get(f"/inbox/{A}/conversations", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [tagged]
    assert ids(status="resolved") == [other]
    assert ids(status="resolved", channel="mastodon") == [other]
    assert ids(channel="mastodon") == []
    assert ids(tag="scuole") == ids(assignee="anna") == [tagged]


def test_a_list_page_costs_one_query_whatever_the_size_of_the_inbox(staff: StaffClient) -> None:
    """The handler runs in this process (Chalice's local server): its DynamoDB calls are counted."""
    calls: list[str] = []

    def count(model: object, **_: object) -> None:
        calls.append(model.name)  # type: ignore[attr-defined]

    events = dynamo.client().meta.events
    events.register("before-call.dynamodb", count)
    try:
        per_size = []
        for before, size in ((0, 2), (2, 12)):
            for n in range(before, size):
                _conversation(message_id=f"m{n}", user=f"u{n}")
            calls.clear()
            assert len(staff.get(f"/inbox/{A}/conversations", params={"limit": 5}).json()["items"]) == min(
                size, 5
            )
            per_size.append(list(calls))
    finally:
        events.unregister("before-call.dynamodb", count)
    assert per_size == [["Query"], ["Query"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=chiuso", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=tanti", "limit"),
        ("channel=Telegram!", "channel"),
        ("tag=%23urgente", "tag"),
        ("assignee=anna%20rossi", "assignee"),
        ("channel=telegram&tag=scuole", "request"),
        ("stato=open", "stato"),
        ("status=open&status=resolved", "status"),
        ("cursor=forged.cursor", "cursor"),
        ("cursor=" + "x" * 2049, "cursor"),
    ],
)
def test_bad_list_parameters_get_400_naming_the_field(staff: StaffClient, query: str, field: str) -> None:
    body = _error(staff.get(f"/inbox/{A}/conversations?{query}"), 400)
    assert set(body["fields"]) == {field}  # type: ignore[arg-type]


def test_a_cursor_only_pages_the_list_it_came_from(stack: LocalStack, staff: StaffClient) -> None:
    for n in range(3):
        _conversation(message_id=f"m{n}", user=f"u{n}")
        _conversation(B, message_id=f"m{n}", user=f"u{n}")
    cursor = staff.get(f"/inbox/{A}/conversations", params={"limit": 1}).json()["next_cursor"]
    body = _error(staff.get(f"/inbox/{A}/conversations", params={"status": "pending", "cursor": cursor}), 400)
    assert set(body["fields"]) == {"cursor"}  # type: ignore[arg-type]
    both = StaffClient(str(stack.api_url), stack.dev_tokens["*"])
    _error(both.get(f"/inbox/{B}/conversations", params={"cursor": cursor}), 400)


# ---- one conversation -----------------------------------------------------------------------


def test_a_conversation_reads_with_its_messages_oldest_first(staff: StaffClient) -> None:
    conversation_id = _conversation(message_id="m1", ago=timedelta(hours=2))
    citizen_writes("m2", text="E gli asili?", ago=timedelta(hours=1))
    staff.post(
        f"/inbox/{A}/conversations/{conversation_id}/notes", json={"text": "chiedere all'ufficio scuola"}
    )
    first = staff.get(f"/inbox/{A}/conversations/{conversation_id}", params={"limit": 2}).json()
    assert first["conversation"]["message_count"] == 3
    assert [m["text"] for m in first["messages"]] == [TEXT, "E gli asili?"]
    assert first["messages"][0]["direction"] == "in" and first["messages"][0]["author"] is None
    rest = staff.get(
        f"/inbox/{A}/conversations/{conversation_id}", params={"cursor": first["next_cursor"]}
    ).json()
    assert [(m["kind"], m["author"]) for m in rest["messages"]] == [("note", "staff-comune-a")]
    assert rest["next_cursor"] is None
    # Never shown to staff: the citizen's platform id and what adapters need to answer.
    assert "maria-1001" not in json.dumps(first)


def test_a_malformed_conversation_id_is_400_an_unknown_one_404(staff: StaffClient) -> None:
    body = _error(staff.get(f"/inbox/{A}/conversations/not-an-id"), 400)
    assert set(body["fields"]) == {"conversation_id"}  # type: ignore[arg-type]
    _error(staff.get(f"/inbox/{A}/conversations/{'0' * 20}"), 404)
    _error(staff.patch(f"/inbox/{A}/conversations/{'0' * 20}", json={"status": "open"}), 404)


# ---- replies and notes ----------------------------------------------------------------------


def test_a_reply_is_recorded_queued_on_the_urgent_lane_and_is_the_first_response(
    stack: LocalStack, staff: StaffClient
) -> None:
    conversation_id = _conversation()
    response = staff.post(f"/inbox/{A}/conversations/{conversation_id}/reply", json={"text": "Sì, aperte."})
    assert response.status_code == 201, response.text
    written = response.json()
    message = written["message"]
    assert (message["kind"], message["author"], message["delivery_state"]) == (
        "reply",
        "staff-comune-a",
        "queued",
    )
    assert written["conversation"]["status"] == "pending"
    assert written["conversation"]["first_response_at"] == message["at"]
    # The job names the reply and carries no text; nothing claims it was sent.
    (job,) = queued_jobs(stack, "urgent")
    assert job == {
        "v": 1,
        "kind": "reply",
        "tenant": A,
        "conversation": conversation_id,
        "message": message["id"],
        "channel": "telegram",
        "lane": "urgent",
    }
    shown = staff.get(f"/inbox/{A}/conversations/{conversation_id}").json()["messages"]
    assert [(m["kind"], m["delivery_state"]) for m in shown] == [("direct", None), ("reply", "queued")]
    assert shown[1]["reply_to_message_id"] == shown[0]["id"]
    figures = staff.get(f"/inbox/{A}/figures", params={"period": "month"}).json()
    assert sum(period["first_response"]["count"] for period in figures["periods"]) == 1


def test_a_retried_reply_with_its_idempotency_key_records_nothing_new(
    stack: LocalStack, staff: StaffClient
) -> None:
    conversation_id = _conversation()
    url = f"/inbox/{A}/conversations/{conversation_id}/reply"
    first = staff.post(url, json={"text": "Sì."}, headers={"Idempotency-Key": "click-1"})
    again = staff.post(url, json={"text": "Sì."}, headers={"Idempotency-Key": "click-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["message"]["id"] == first.json()["message"]["id"] == "click-1"
    assert len(store.messages(A, conversation_id).items) == 2
    # Still queued, so the retry queues the job again (the first send may be what failed); the
    # consumer sends once per delivery row.
    assert [job["message"] for job in queued_jobs(stack, "urgent")] == ["click-1", "click-1"]
    assert [entry.action for entry in store.audit_entries(A, datetime.now(UTC).strftime("%Y-%m"))] == [
        "reply"
    ]
    body = _error(staff.post(url, json={"text": "Sì."}, headers={"Idempotency-Key": "not ok!"}), 400)
    assert set(body["fields"]) == {"Idempotency-Key"}  # type: ignore[arg-type]


def test_a_private_reply_is_only_for_public_comments(staff: StaffClient) -> None:
    direct = _conversation()
    body = _error(
        staff.post(f"/inbox/{A}/conversations/{direct}/reply", json={"text": "x", "private": True}), 400
    )
    assert set(body["fields"]) == {"private"}  # type: ignore[arg-type]
    comment = citizen_writes("c1", user="u9", kind="comment", post="post-1", text=TEXT).conversation.id
    response = staff.post(
        f"/inbox/{A}/conversations/{comment}/reply", json={"text": "In privato.", "private": True}
    )
    assert response.status_code == 201 and response.json()["message"]["private"] is True


def test_a_note_changes_neither_status_nor_first_response(staff: StaffClient) -> None:
    conversation_id = _conversation()
    response = staff.post(f"/inbox/{A}/conversations/{conversation_id}/notes", json={"text": "da verificare"})
    assert response.status_code == 201, response.text
    conversation = response.json()["conversation"]
    assert (conversation["status"], conversation["first_response_at"]) == ("open", None)
    assert response.json()["message"]["delivery_state"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({"text": "x" * (MAX_TEXT + 1)}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": 42}, "text"),
        ({"text": "ok", "private": "yes"}, "private"),
        ({"text": "ok", "cc": "sindaco"}, "cc"),
        (["text"], "request"),
    ],
)
def test_bad_reply_bodies_get_400_naming_the_field(staff: StaffClient, body: object, field: str) -> None:
    conversation_id = _conversation()
    refused = _error(staff.post(f"/inbox/{A}/conversations/{conversation_id}/reply", json=body), 400)
    assert set(refused["fields"]) == {field}  # type: ignore[arg-type]
    assert len(store.messages(A, conversation_id).items) == 1


def test_the_longest_reply_fits_even_with_every_character_escaped(staff: StaffClient) -> None:
    conversation_id = _conversation()
    text = "😀" * MAX_TEXT
    raw = json.dumps({"text": text}).encode()  # ensure_ascii: each emoji is 12 bytes
    response = staff.post(
        f"/inbox/{A}/conversations/{conversation_id}/reply",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"]["text"] == text


def test_body_size_media_type_and_json_are_checked(staff: StaffClient) -> None:
    url = f"/inbox/{A}/conversations/{_conversation()}/notes"
    _error(
        staff.post(
            url, data=b"{" + b" " * MAX_BODY_BYTES + b"}", headers={"Content-Type": "application/json"}
        ),
        413,
    )
    _error(
        staff.post(url, data="text=ciao", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415
    )
    _error(staff.post(url, data=b'{"text": "ciao"}'), 415)  # no Content-Type at all
    invalid = _error(staff.post(url, data=b'{"text": ', headers={"Content-Type": "application/json"}), 400)
    assert invalid["fields"] == {"request": "is not valid JSON"}
    ok = staff.post(
        url, data=b'{"text": "ciao"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 201


# ---- changes --------------------------------------------------------------------------------


def test_status_assignee_and_tags_change_together(staff: StaffClient) -> None:
    conversation_id = _conversation()
    url = f"/inbox/{A}/conversations/{conversation_id}"
    response = staff.patch(
        url, json={"status": "resolved", "assignee": "anna", "tags": ["scuole", "meteo", "scuole"]}
    )
    assert response.status_code == 200, response.text
    changed = response.json()["conversation"]
    assert (changed["status"], changed["assignee"], changed["tags"]) == (
        "resolved",
        "anna",
        ["scuole", "meteo"],
    )
    assert changed["resolved_at"] is not None
    unassigned = staff.patch(url, json={"assignee": None}).json()["conversation"]
    assert (unassigned["assignee"], unassigned["tags"], unassigned["status"]) == (
        None,
        ["scuole", "meteo"],
        "resolved",
    )
    (entry, _) = store.audit_entries(A, datetime.now(UTC).strftime("%Y-%m"))
    assert (entry.user, entry.action, entry.conversation_id) == ("staff-comune-a", "update", conversation_id)
    assert entry.fields == {"status": "resolved", "assignee": "anna", "tags": ["scuole", "meteo"]}


def test_a_change_based_on_a_stale_version_is_409_and_changes_nothing(staff: StaffClient) -> None:
    conversation_id = _conversation()
    url = f"/inbox/{A}/conversations/{conversation_id}"
    version = staff.get(url).json()["conversation"]["version"]
    assert staff.patch(url, json={"tags": ["scuole"], "version": version}).status_code == 200
    _error(staff.patch(url, json={"status": "resolved", "tags": [], "version": version}), 409)
    current = staff.get(url).json()["conversation"]
    assert (current["status"], current["tags"], current["version"]) == ("open", ["scuole"], version + 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "request"),
        ({"version": 3}, "request"),
        ({"status": None}, "status"),
        ({"status": "closed"}, "status"),
        ({"tags": None}, "tags"),
        ({"tags": "scuole"}, "tags"),
        ({"tags": ["Scuole"]}, "tags.0"),
        ({"tags": ["ok", "#urgente"]}, "tags.1"),
        ({"tags": [f"t{n}" for n in range(store.MAX_TAGS + 1)]}, "tags"),
        ({"assignee": "anna rossi"}, "assignee"),
        ({"assignee": "x" * 129}, "assignee"),
        ({"status": "open", "version": -1}, "version"),
        ({"status": "open", "version": "3"}, "version"),
        ({"status": "open", "urgent": True}, "urgent"),
    ],
)
def test_bad_changes_get_400_naming_the_field(
    staff: StaffClient, body: dict[str, object], field: str
) -> None:
    conversation_id = _conversation()
    refused = _error(staff.patch(f"/inbox/{A}/conversations/{conversation_id}", json=body), 400)
    assert set(refused["fields"]) == {field}  # type: ignore[arg-type]
    assert store.get_conversation(A, conversation_id).version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "assignee",
    ["mario", f"staff-{B}", "staff-comune-chiuso"],
    ids=["nobody", "staff-of-another-tenant", "staff-of-a-gone-tenant"],
)
def test_only_staff_of_the_tenant_can_be_assigned(
    stack: LocalStack, staff: StaffClient, assignee: str
) -> None:
    stack.mint_dev_token("staff-comune-chiuso", ["comune-chiuso"])
    conversation_id = _conversation()
    url = f"/inbox/{A}/conversations/{conversation_id}"
    refused = _error(staff.patch(url, json={"assignee": assignee, "status": "resolved"}), 400)
    assert set(refused["fields"]) == {"assignee"}  # type: ignore[arg-type]
    # Nothing applied, nothing audited: the request was refused as a whole.
    assert store.get_conversation(A, conversation_id).version == 1  # type: ignore[union-attr]
    assert store.audit_entries(A, datetime.now(UTC).strftime("%Y-%m")) == []
    # A colleague of the tenant, the caller themself, and nobody (unassign) are all fine.
    for accepted in ("anna", "staff-comune-a", None, "staff"):
        response = staff.patch(url, json={"assignee": accepted})
        assert response.status_code == 200, response.text
        assert response.json()["conversation"]["assignee"] == accepted


def test_in_aws_the_tenants_cognito_group_says_who_can_be_assigned(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AdminListGroupsForUser against moto's Cognito (the same client the Lambda builds); dev
    tokens count for nothing once a user pool is configured."""
    cognito = boto3.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="staff")["UserPool"]
    for tenant_id in TENANTS:
        cognito.create_group(GroupName=auth.group_name(tenant_id), UserPoolId=pool["Id"])
    cognito.create_group(GroupName="editors", UserPoolId=pool["Id"])
    for user, group in (("giulia", auth.group_name(A)), ("bruno", auth.group_name(B)), ("eva", "editors")):
        cognito.admin_create_user(UserPoolId=pool["Id"], Username=user)
        cognito.admin_add_user_to_group(UserPoolId=pool["Id"], Username=user, GroupName=group)
    monkeypatch.setenv(auth.USER_POOL_ARN_ENV, pool["Arn"])
    assert auth.user_pool_id(pool["Arn"]) == pool["Id"]

    assert auth.is_tenant_staff(A, "giulia")
    assert not auth.is_tenant_staff(A, "bruno")  # another tenant's staff
    assert not auth.is_tenant_staff(A, "eva")  # in a group that is no tenant's
    assert not auth.is_tenant_staff(A, "mario")  # no such user
    assert not auth.is_tenant_staff(A, "staff-comune-a")  # a dev token's user: not in AWS
    # A pool that cannot be asked is no answer at all: the API says 503, never "not staff".
    monkeypatch.setenv(auth.USER_POOL_ARN_ENV, pool["Arn"].rpartition("/")[0] + "/eu-south-1_Missing")
    with pytest.raises(auth.StaffDirectoryUnavailable):
        auth.is_tenant_staff(A, "giulia")


# ---- figures --------------------------------------------------------------------------------


def test_figures_cover_the_days_asked_for_per_period(staff: StaffClient) -> None:
    _conversation()
    today = datetime.now(UTC).date()
    days = staff.get(
        f"/inbox/{A}/figures",
        params={"from": (today - timedelta(days=2)).isoformat(), "to": today.isoformat(), "period": "day"},
    ).json()
    assert (days["period"], len(days["periods"])) == ("day", 3)
    assert sum(period["conversations"] for period in days["periods"]) == 1
    assert (
        days["periods"][-1]["first_response"]["waiting"] + days["periods"][-2]["first_response"]["waiting"]
        == 1
    )
    default = staff.get(f"/inbox/{A}/figures").json()
    assert (default["period"], default["to"]) == ("week", today.isoformat())
    telegram = staff.get(f"/inbox/{A}/figures", params={"channel": "mastodon", "period": "month"}).json()
    assert sum(period["conversations"] for period in telegram["periods"]) == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-11-10&to=2026-11-01", "request"),
        ("from=2025-01-01&to=2026-11-01", "request"),
        ("from=ieri", "from"),
        ("to=2026-02-30", "to"),
        ("period=year", "period"),
        ("start=2026-11-01", "start"),
    ],
)
def test_bad_figures_parameters_get_400(staff: StaffClient, query: str, field: str) -> None:
    body = _error(staff.get(f"/inbox/{A}/figures?{query}"), 400)
    assert set(body["fields"]) == {field}  # type: ignore[arg-type]


# ---- consultations --------------------------------------------------------------------------


def _consultation() -> list[str]:
    store.link_post(A, "telegram", "post-7", "ann-7", now=datetime.now(UTC))
    texts = ["Serve una pista ciclabile.", '=HYPERLINK("http://x")', "Più alberi, per favore."]
    for n, text in enumerate(texts):
        citizen_writes(
            f"c{n}", user=f"u{n % 2}", kind="comment", post="post-7", text=text, ago=timedelta(hours=5 - n)
        )
    citizen_writes("other", user="u5", kind="comment", post="post-8", text="altro post")
    return texts


def test_observations_are_every_comment_under_the_announcement(staff: StaffClient) -> None:
    texts = _consultation()
    body = staff.get(f"/inbox/{A}/consultations/ann-7/observations").json()
    assert [item["text"] for item in body["items"]] == texts
    assert body["next_cursor"] is None and body["announcement_id"] == "ann-7"
    (entry,) = store.audit_entries(A, datetime.now(UTC).strftime("%Y-%m"))
    assert (entry.action, entry.fields) == (
        "export_observations",
        {"announcement_id": "ann-7", "format": "json", "observations": 3},
    )


def test_observations_download_as_csv_safe_for_spreadsheets(staff: StaffClient) -> None:
    texts = _consultation()
    response = staff.get(f"/inbox/{A}/consultations/ann-7/observations", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="osservazioni-ann-7.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffreceived_at,channel,platform,citizen_name,text,")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [row["text"] for row in rows] == [texts[0], "'" + texts[1], texts[2]]
    assert {row["citizen_name"] for row in rows} == {"Maria Rossi"}


# ---- personal data --------------------------------------------------------------------------


def test_a_citizen_is_exported_then_erased_and_both_are_audited(staff: StaffClient) -> None:
    recorded = citizen_writes("m1", text=TEXT)
    key = recorded.conversation.citizen_key
    staff.post(f"/inbox/{A}/conversations/{recorded.conversation.id}/reply", json={"text": "Sì."})
    exported = staff.get(f"/inbox/{A}/citizens/{key}/export")
    assert exported.status_code == 200, exported.text
    (conversation,) = exported.json()["conversations"]
    assert [m["text"] for m in conversation["messages"]] == [TEXT, "Sì."]
    erased = staff.delete(f"/inbox/{A}/citizens/{key}")
    assert erased.json() == {"conversations": 1, "messages": 2}
    assert staff.get(f"/inbox/{A}/citizens/{key}/export").json()["conversations"] == []
    _error(staff.get(f"/inbox/{A}/conversations/{recorded.conversation.id}"), 404)
    assert staff.delete(f"/inbox/{A}/citizens/{key}").json() == {"conversations": 0, "messages": 0}
    trail = staff.get(f"/inbox/{A}/audit").json()["entries"]
    assert [entry["action"] for entry in trail] == [
        "reply",
        "export_citizen",
        "erase_citizen",
        "export_citizen",
        "erase_citizen",
    ]
    assert key not in json.dumps(trail) and TEXT not in json.dumps(trail) and "Sì." not in json.dumps(trail)


def test_a_malformed_citizen_key_is_400(staff: StaffClient) -> None:
    for method in ("GET", "DELETE"):
        path = f"/inbox/{A}/citizens/NOT-A-KEY" + ("/export" if method == "GET" else "")
        body = _error(staff.request(method, path), 400)
        assert set(body["fields"]) == {"citizen_key"}  # type: ignore[arg-type]


# ---- audit ----------------------------------------------------------------------------------


def test_the_audit_trail_says_who_did_what_when_without_message_text(staff: StaffClient) -> None:
    conversation_id = _conversation()
    staff.post(f"/inbox/{A}/conversations/{conversation_id}/reply", json={"text": "testo della risposta"})
    staff.post(f"/inbox/{A}/conversations/{conversation_id}/notes", json={"text": "testo della nota"})
    staff.patch(f"/inbox/{A}/conversations/{conversation_id}", json={"status": "resolved"})
    month = datetime.now(UTC).strftime("%Y-%m")
    trail = staff.get(f"/inbox/{A}/audit", params={"month": month}).json()
    assert trail["month"] == month
    assert [(e["user"], e["action"], e["conversation_id"]) for e in trail["entries"]] == [
        ("staff-comune-a", action, conversation_id) for action in ("reply", "note", "update")
    ]
    assert "testo della" not in json.dumps(trail)
    assert staff.get(f"/inbox/{A}/audit", params={"month": "2020-01"}).json()["entries"] == []
    for bad in ("2026-13", "novembre", "2026-1"):
        assert set(_error(staff.get(f"/inbox/{A}/audit", params={"month": bad}), 400)["fields"]) == {"month"}  # type: ignore[arg-type]
