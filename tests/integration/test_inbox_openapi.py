"""openapi/inbox.yaml is the staff API's contract, held against the code three ways: its routes are
the app's /inbox routes and its limits the code's; what the live local API answers (successes and
every kind of refusal) validates against it; and requests generated from it, valid and invalid
(schemathesis), never get a 5xx, an undocumented status, header or shape, and invalid ones are
refused with a 4xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import app
from chalicelib.config.models import SLUG_PATTERN
from chalicelib.inbox import api_requests, store
from devtools.stack import LocalStack
from tests.integration.staff_api_support import TENANTS, StaffClient, citizen_writes, reset, staff_api_stack

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi" / "inbox.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
SCHEMA = schemathesis.openapi.from_path(str(SPEC_FILE))
OPERATIONS: list[APIOperation] = [result.ok() for result in SCHEMA.get_all_operations()]
METHODS = ("get", "put", "post", "patch", "delete")
A, B = TENANTS
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 20  # per operation and mode: the whole fuzz run takes seconds


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with staff_api_stack(tmp_path_factory.mktemp("staff-api-contract")) as started:
        started.mint_dev_token("anna", [A])  # a colleague conversations can be assigned to
        yield started


@dataclass(frozen=True)
class Seeded:
    """Real things to name in paths: a conversation, its citizen, a consultation with comments."""

    conversation_id: str
    citizen_key: str
    announcement_id: str = "ann-1"

    def path_parameters(self) -> dict[str, str]:
        return {
            "tenant": A,
            "conversation_id": self.conversation_id,
            "citizen_key": self.citizen_key,
            "announcement_id": self.announcement_id,
        }


def seed(stack: LocalStack) -> Seeded:
    reset(stack)
    store.link_post(A, "telegram", "post-1", "ann-1", now=datetime.now(UTC))
    citizen_writes("c1", user="u2", kind="comment", post="post-1", text="Osservazione: più panchine.")
    first = citizen_writes("m1", text="Le scuole sono aperte?", ago=timedelta(hours=3))
    citizen_writes("m2", text="E domani?", ago=timedelta(hours=2))
    return Seeded(first.conversation.id, first.conversation.citizen_key)


def _operation_of(method: str, path: str) -> APIOperation:
    return next(op for op in OPERATIONS if (op.method, op.path) == (method.lower(), path))


# ---- the file and the code ------------------------------------------------------------------


def test_the_file_is_a_valid_openapi_3_1_document() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate_openapi(SPEC)


def test_the_routes_of_the_app_are_the_routes_of_the_file() -> None:
    in_app = {
        (method.lower(), path)
        for path, methods in app.app.routes.items()
        if path.startswith("/inbox/")
        for method in methods
    }
    in_file = {(method, path) for path, item in SPEC["paths"].items() for method in item if method in METHODS}
    assert in_app == in_file


def test_the_files_limits_are_the_codes() -> None:
    schemas = SPEC["components"]["schemas"]
    parameters = SPEC["components"]["parameters"]
    assert schemas["Slug"]["pattern"] == SLUG_PATTERN
    assert schemas["Tag"]["pattern"] == api_requests.TAG_PATTERN
    assert schemas["UserId"]["pattern"] == api_requests.USER_PATTERN
    assert schemas["ConversationId"]["pattern"] == api_requests.CONVERSATION_PATTERN
    assert parameters["CitizenKey"]["schema"]["pattern"] == api_requests.CITIZEN_KEY_PATTERN
    assert (
        parameters["IdempotencyKey"]["schema"]["pattern"]
        == api_requests.ID_PATTERN
        == store.MESSAGE_ID.pattern
    )
    assert parameters["Cursor"]["schema"]["maxLength"] == api_requests.MAX_CURSOR_CHARS
    assert schemas["Text"]["pattern"] == api_requests.TEXT_PATTERN
    assert schemas["Text"]["maxLength"] == api_requests.MAX_TEXT
    assert schemas["ConversationChange"]["properties"]["tags"]["maxItems"] == store.MAX_TAGS
    limits = [p["schema"] for p in _query_parameters() if p["name"] == "limit"]
    assert {schema["maximum"] for schema in limits} == {api_requests.MAX_PAGE}
    assert f"{api_requests.MAX_BODY_BYTES:,} bytes" in SPEC["info"]["description"]
    month = next(p for p in _query_parameters() if p["name"] == "month")
    assert month["schema"]["pattern"] == api_requests.MONTH_PATTERN


def _query_parameters() -> list[dict[str, Any]]:
    return [
        parameter
        for item in SPEC["paths"].values()
        for method, operation in item.items()
        if method in METHODS
        for parameter in operation.get("parameters", [])
        if "$ref" not in parameter and parameter["in"] == "query"
    ]


# ---- what the live API answers --------------------------------------------------------------


def test_every_answer_of_the_live_api_is_as_documented(stack: LocalStack) -> None:
    seeded = seed(stack)
    staff = StaffClient(str(stack.api_url), stack.dev_tokens[A])
    conversation = f"/inbox/{A}/conversations/{seeded.conversation_id}"
    citizen = f"/inbox/{A}/citizens/{seeded.citizen_key}"
    unknown = f"/inbox/{A}/conversations/{'f' * 20}"
    json_type = {"Content-Type": "application/json"}
    walk: list[tuple[str, str, str, dict[str, Any], int]] = [
        ("GET", "/inbox/{tenant}/conversations", f"/inbox/{A}/conversations", {}, 200),
        ("GET", "/inbox/{tenant}/conversations", f"/inbox/{A}/conversations?status=shut", {}, 400),
        ("GET", "/inbox/{tenant}/conversations", f"/inbox/{B}/conversations", {}, 403),
        ("GET", "/inbox/{tenant}/conversations/{conversation_id}", conversation, {}, 200),
        ("GET", "/inbox/{tenant}/conversations/{conversation_id}", unknown, {}, 404),
        ("POST", "/inbox/{tenant}/conversations/{conversation_id}/reply", conversation + "/reply",
         {"json": {"text": "Sì."}, "headers": {"Idempotency-Key": "k1"}}, 201),
        ("POST", "/inbox/{tenant}/conversations/{conversation_id}/reply", conversation + "/reply",
         {"json": {"text": "Sì."}, "headers": {"Idempotency-Key": "k1"}}, 200),
        ("POST", "/inbox/{tenant}/conversations/{conversation_id}/reply", conversation + "/reply",
         {"data": "testo", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", "/inbox/{tenant}/conversations/{conversation_id}/notes", conversation + "/notes",
         {"json": {"text": "nota"}}, 201),
        ("POST", "/inbox/{tenant}/conversations/{conversation_id}/notes", conversation + "/notes",
         {"data": b'{"text": "' + b"x" * api_requests.MAX_BODY_BYTES + b'"}', "headers": json_type}, 413),
        ("PATCH", "/inbox/{tenant}/conversations/{conversation_id}", conversation,
         {"json": {"status": "resolved", "tags": ["scuole"], "assignee": "anna"}}, 200),
        ("PATCH", "/inbox/{tenant}/conversations/{conversation_id}", conversation,
         {"json": {"assignee": "mario"}}, 400),
        ("PATCH", "/inbox/{tenant}/conversations/{conversation_id}", conversation,
         {"json": {"status": "open", "version": 0}}, 409),
        ("GET", "/inbox/{tenant}/figures", f"/inbox/{A}/figures?period=day", {}, 200),
        ("GET", "/inbox/{tenant}/consultations/{announcement_id}/observations",
         f"/inbox/{A}/consultations/ann-1/observations", {}, 200),
        ("GET", "/inbox/{tenant}/consultations/{announcement_id}/observations",
         f"/inbox/{A}/consultations/ann-1/observations?format=csv", {}, 200),
        ("GET", "/inbox/{tenant}/citizens/{citizen_key}/export", citizen + "/export", {}, 200),
        ("DELETE", "/inbox/{tenant}/citizens/{citizen_key}", citizen, {}, 200),
        ("GET", "/inbox/{tenant}/audit", f"/inbox/{A}/audit", {}, 200),
        ("GET", "/inbox/{tenant}/audit", f"/inbox/{A}/audit?month=may", {}, 400),
    ]  # fmt: skip
    for method, template, path, options, status in walk:
        response = staff.request(method, path, **options)
        assert response.status_code == status, (method, path, response.text)
        _operation_of(method, template).validate_response(response)
    unauthenticated = StaffClient(str(stack.api_url), None).get(f"/inbox/{A}/audit")
    assert unauthenticated.status_code == 401
    _operation_of("GET", "/inbox/{tenant}/audit").validate_response(unauthenticated)


def test_an_answer_the_file_does_not_describe_fails_validation(stack: LocalStack) -> None:
    """The validation above can fail: an extra field in a response is caught."""
    seed(stack)
    response = StaffClient(str(stack.api_url), stack.dev_tokens[A]).get(f"/inbox/{A}/conversations")
    response._content = response.content.replace(b'"items":', b'"surprise":1,"items":')
    with pytest.raises(Exception, match="surprise"):
        _operation_of("GET", "/inbox/{tenant}/conversations").validate_response(response)


# ---- requests generated from the file -------------------------------------------------------


def _other_inputs(operation: APIOperation) -> bool:
    """Whether an operation takes anything but its path (what negative generation can break)."""
    definition = SPEC["paths"][operation.path][operation.method]
    parameters = [_resolved(parameter) for parameter in definition.get("parameters", [])]
    return "requestBody" in definition or any(parameter["in"] != "path" for parameter in parameters)


def _resolved(parameter: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in parameter:
        return parameter
    found: dict[str, Any] = SPEC["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
    return found


def _cases(operation: APIOperation, mode: GenerationMode, seeded: Seeded) -> st.SearchStrategy[Case]:
    """Cases for the seeded tenant; half of them (where something else is left to generate) name
    the seeded conversation, citizen or consultation, so generation reaches past the 404."""
    generated = operation.as_strategy(generation_mode=mode, path_parameters={"tenant": A})
    names = set(re.findall(r"{(\w+)}", operation.path))
    if names == {"tenant"} or not (mode is GenerationMode.POSITIVE or _other_inputs(operation)):
        return generated
    real = {name: value for name, value in seeded.path_parameters().items() if name in names}
    return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=real))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_generated_requests_never_get_a_server_error_or_an_undocumented_answer(
    stack: LocalStack, operation: APIOperation, mode: GenerationMode
) -> None:
    seeded = seed(stack)
    token = stack.dev_tokens[A]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=_cases(operation, mode, seeded))
    def check(case: Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.validate_response(case.call(base_url=stack.api_url), checks=CHECKS)

    check()
