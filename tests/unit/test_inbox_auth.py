"""Who is calling the staff API: Cognito claims as API Gateway hands them over (every shape of the
groups claim), dev tokens (whole-token match, nothing else accepted), and the rule that dev tokens
count only where no user pool is configured."""

from __future__ import annotations

import json

import pytest
from chalice.app import CognitoUserPoolAuthorizer

from chalicelib.inbox import auth
from chalicelib.inbox.auth import NotAllowed, NotAuthenticated, Staff

POOL_ARN = "arn:aws:cognito-idp:eu-south-1:123456789012:userpool/eu-south-1_Example"
TOKENS = json.dumps(
    {
        "token-anna-0123456789": {"user": "anna", "tenants": ["comune-a"]},
        "token-both-0123456789": {"user": "ced", "tenants": ["comune-a", "comune-b"]},
    }
)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.USER_POOL_ARN_ENV, raising=False)
    monkeypatch.setenv(auth.DEV_TOKENS_ENV, TOKENS)


@pytest.fixture
def in_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.USER_POOL_ARN_ENV, POOL_ARN)
    monkeypatch.delenv(auth.DEV_TOKENS_ENV, raising=False)


# ---- Cognito claims -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "groups",
    [
        ["tenant-comune-a", "tenant-comune-b", "editors"],
        "tenant-comune-a,tenant-comune-b,editors",
        "[tenant-comune-a tenant-comune-b editors]",
        "tenant-comune-a, tenant-comune-b",
    ],
    ids=["list", "comma-separated", "bracketed", "comma-and-space"],
)
def test_tenant_groups_become_tenants_whatever_shape_the_claim_has(groups: object) -> None:
    staff = auth.staff_from_claims({"cognito:username": "anna", "cognito:groups": groups})
    assert staff == Staff("anna", frozenset({"comune-a", "comune-b"}))


def test_a_user_without_tenant_groups_belongs_to_no_tenant() -> None:
    for claims in ({"cognito:username": "anna"}, {"cognito:username": "anna", "cognito:groups": "editors"}):
        assert auth.staff_from_claims(claims).tenants == frozenset()


def test_the_user_is_the_username_else_the_subject() -> None:
    assert auth.staff_from_claims({"sub": "4f1c", "cognito:groups": "tenant-a"}).user == "4f1c"
    assert auth.staff_from_claims({"username": "anna", "sub": "4f1c"}).user == "anna"


@pytest.mark.parametrize("claims", [{}, {"cognito:groups": "tenant-comune-a"}, {"cognito:username": ""}])
def test_claims_without_a_user_are_not_authenticated(claims: dict[str, object]) -> None:
    with pytest.raises(NotAuthenticated):
        auth.staff_from_claims(claims)


def test_in_aws_the_verified_claims_are_read(in_aws: None) -> None:
    context = {"authorizer": {"claims": {"cognito:username": "anna", "cognito:groups": "tenant-comune-a"}}}
    assert auth.authenticate(context, {}) == Staff("anna", frozenset({"comune-a"}))


def test_in_aws_a_request_without_claims_is_not_authenticated(in_aws: None) -> None:
    """A route that somehow lost its authorizer still refuses everyone."""
    for context in ({}, {"authorizer": None}, {"authorizer": {"claims": {}}}):
        with pytest.raises(NotAuthenticated):
            auth.authenticate(context, {"authorization": "Bearer token-anna-0123456789"})


def test_in_aws_dev_tokens_count_for_nothing_even_if_configured(
    in_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(auth.DEV_TOKENS_ENV, TOKENS)
    with pytest.raises(NotAuthenticated):
        auth.authenticate({}, {"authorization": "Bearer token-anna-0123456789"})


# ---- dev tokens -----------------------------------------------------------------------------


def test_locally_a_dev_token_stands_for_its_user_and_tenants(local: None) -> None:
    staff = auth.authenticate({}, {"authorization": "Bearer token-both-0123456789"})
    assert staff == Staff("ced", frozenset({"comune-a", "comune-b"}))
    assert auth.authenticate({}, {"authorization": "bearer token-anna-0123456789"}).user == "anna"


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "token-anna-0123456789",
        "Basic token-anna-0123456789",
        "Bearer token-anna-012345678",
        "Bearer token-anna-01234567890",
        "Bearer TOKEN-ANNA-0123456789",
        "Bearer token-anna-0123456789 extra",
        "Bearer " + "x" * 600,
    ],
)
def test_locally_anything_but_a_whole_configured_token_is_refused(local: None, authorization: str) -> None:
    with pytest.raises(NotAuthenticated):
        auth.authenticate({}, {"authorization": authorization})


@pytest.mark.parametrize("configured", ["", "not json", "[]", '{"t": "anna"}', '{"t": {"tenants": ["a"]}}'])
def test_without_usable_dev_tokens_nobody_gets_in(monkeypatch: pytest.MonkeyPatch, configured: str) -> None:
    monkeypatch.delenv(auth.USER_POOL_ARN_ENV, raising=False)
    monkeypatch.setenv(auth.DEV_TOKENS_ENV, configured)
    with pytest.raises(NotAuthenticated):
        auth.authenticate({}, {"authorization": "Bearer t"})


def test_a_dev_token_with_odd_tenants_keeps_only_names(local: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        auth.DEV_TOKENS_ENV, json.dumps({"t": {"user": "u", "tenants": ["comune-a", 7, None]}})
    )
    assert auth.authenticate({}, {"authorization": "Bearer t"}).tenants == frozenset({"comune-a"})


# ---- tenants and the authorizer -------------------------------------------------------------


def test_membership_is_exact() -> None:
    staff = Staff("anna", frozenset({"comune-a"}))
    staff.check_member("comune-a")
    for other in ("comune-b", "comune-a ", "COMUNE-A", "", "comune"):
        with pytest.raises(NotAllowed):
            staff.check_member(other)


def test_group_names_are_the_tenant_with_its_prefix() -> None:
    assert auth.group_name("comune-a") == "tenant-comune-a"
    claims = {"cognito:username": "u", "cognito:groups": [auth.group_name("comune-a")]}
    assert auth.staff_from_claims(claims).tenants == {"comune-a"}


def test_the_authorizer_exists_only_where_a_user_pool_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.USER_POOL_ARN_ENV, raising=False)
    assert auth.staff_authorizer() is None
    monkeypatch.setenv(auth.USER_POOL_ARN_ENV, POOL_ARN)
    authorizer = auth.staff_authorizer()
    assert isinstance(authorizer, CognitoUserPoolAuthorizer)
    definition = authorizer.to_swagger()["x-amazon-apigateway-authorizer"]
    assert definition == {"type": "cognito_user_pools", "providerARNs": [POOL_ARN]}


# ---- who can be assigned ----------------------------------------------------------------------


@pytest.mark.usefixtures("local")
def test_locally_the_users_dev_tokens_name_for_a_tenant_are_its_staff() -> None:
    assert auth.is_tenant_staff("comune-a", "anna")
    assert auth.is_tenant_staff("comune-b", "ced")
    assert not auth.is_tenant_staff("comune-b", "anna")  # staff of another tenant only
    assert not auth.is_tenant_staff("comune-a", "mario")  # nobody's user
    assert not auth.is_tenant_staff("comune-a", "token-anna-0123456789")  # a token is no user


@pytest.mark.parametrize(
    "configured", ["", "not json", "[]", '{"t": "anna"}', '{"t": {"tenants": ["comune-a"]}}']
)
def test_locally_without_usable_dev_tokens_nobody_is_staff(
    monkeypatch: pytest.MonkeyPatch, configured: str
) -> None:
    monkeypatch.delenv(auth.USER_POOL_ARN_ENV, raising=False)
    monkeypatch.setenv(auth.DEV_TOKENS_ENV, configured)
    assert not auth.is_tenant_staff("comune-a", "anna")


def test_the_pool_to_ask_is_the_one_the_authorizer_names() -> None:
    assert auth.user_pool_id(POOL_ARN) == "eu-south-1_Example"
