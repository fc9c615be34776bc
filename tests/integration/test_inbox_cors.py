"""CORS on the staff API as the deployment configures it: with BANDITORE_STAFF_ORIGIN the /inbox routes
answer preflights (without a token: browsers send none) and mark every answer, refusals included, with
that one origin; without it nothing on any route speaks CORS. Requests go through Chalice's local
gateway (chalice.test.Client), which answers preflights as API Gateway does.

app.py reads the origin when it is imported (route decorators need it), so the configured app is a
second copy of the module loaded with the variable set; the `app` module itself stays as imported."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.config import Config
from chalice.local import LocalGateway
from chalice.test import Client

import app as unconfigured
from chalicelib.inbox.cors import MAX_AGE_SECONDS, STAFF_ORIGIN_ENV, check_origin
from devtools.stack import LocalStack
from tests.conftest import tenant

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://staff.comune-a.example.it"
TENANT = "comune-a"
CONVERSATIONS = f"/inbox/{TENANT}/conversations"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def _preflight(app: Chalice, path: str) -> dict[str, Any]:
    """A preflight through Chalice's local gateway, as chalice.test.Client would send it (its own
    request() cannot read an answer without a body, which is what a preflight's is)."""
    answer: dict[str, Any] = LocalGateway(app, Config()).handle_request(
        method="OPTIONS", path=path, headers=PREFLIGHT, body=b""
    )
    return answer


def _app_with_origin(monkeypatch: pytest.MonkeyPatch, origin: str) -> Chalice:
    monkeypatch.setenv(STAFF_ORIGIN_ENV, origin)
    spec = importlib.util.spec_from_file_location("app_with_staff_origin", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    configured: Chalice = module.app
    return configured


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack([tenant(TENANT) | {"inbox": {"retention_days": 30}}], {})


def test_a_preflight_needs_no_token_and_names_the_one_origin_headers_and_methods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = _preflight(_app_with_origin(monkeypatch, ORIGIN), f"{CONVERSATIONS}/0123456789abcdef0123")
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = set(headers["Access-Control-Allow-Headers"].split(","))
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= allowed
    assert set(headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "PATCH", "OPTIONS"}
    assert headers["Access-Control-Max-Age"] == str(MAX_AGE_SECONDS)


def test_every_answer_carries_the_origin_refusals_included(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = stack.mint_dev_token("anna", [TENANT])
    with Client(_app_with_origin(monkeypatch, ORIGIN)) as client:
        listed = client.http.get(
            CONVERSATIONS, headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN}
        )
        refused = client.http.get(CONVERSATIONS, headers={"Origin": ORIGIN})
    assert listed.status_code == 200, listed.body
    assert refused.status_code == 401
    for answer in (listed, refused):
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert set(answer.headers["Access-Control-Expose-Headers"].split(",")) == {
            "X-Next-Cursor",
            "Retry-After",
        }
        # The same value whatever Origin asked: a cache can never hand one origin's answer to another.
        assert "Vary" not in answer.headers or "Origin" not in answer.headers["Vary"]


def test_without_a_configured_origin_no_route_speaks_cors(stack: LocalStack) -> None:
    token = stack.mint_dev_token("anna", [TENANT])
    preflight = _preflight(unconfigured.app, CONVERSATIONS)
    with Client(unconfigured.app) as client:
        listed = client.http.get(
            CONVERSATIONS, headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN}
        )
    assert listed.status_code == 200
    for headers in (preflight["headers"], listed.headers):
        assert not any(name.lower() == "access-control-allow-origin" for name in headers)


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://staff.example.it/",
        "https://staff.example.it/inbox",
        "http://staff.example.it",
        "staff.it",
        "",
        "https://staff.example.it\n",  # a header value with a line break in it
    ],
)
def test_only_an_origin_can_be_configured(origin: str) -> None:
    with pytest.raises(ValueError, match=STAFF_ORIGIN_ENV):
        check_origin(origin)


@pytest.mark.parametrize("origin", [ORIGIN, "https://staff.example.it:8443", "http://localhost:3000"])
def test_origins_a_deployment_may_allow(origin: str) -> None:
    assert check_origin(origin) == origin
