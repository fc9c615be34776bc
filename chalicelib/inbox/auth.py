"""Who is calling the staff API, and which tenants they may act for.

In AWS every /inbox route has a Cognito user pool authorizer (app.py attaches it when
BANDITORE_STAFF_USER_POOL_ARN names the pool, which the CDK stack sets at synth): API Gateway has
verified the caller's ID token before the function runs, and the handler only reads the token's
claims, mapping its `tenant-{id}` groups to tenants.

Locally there is no API Gateway and no user pool, so staff present dev tokens (`Authorization:
Bearer <token>`) listed in BANDITORE_DEV_TOKENS as JSON {token: {"user": ..., "tenants": [...]}}.
Dev tokens are accepted only while no user pool is configured. That is safe because the two never
meet: in AWS the pool is configured (so dev tokens are never even read) and the stack never sets
BANDITORE_DEV_TOKENS (tests/infra asserts both); a deployment missing the pool variable has no
dev tokens either, so every request is refused with 401 rather than let through. The reverse is
not safe: never set the pool variable locally, where Chalice's local server decodes Cognito tokens
without verifying them.

Who may be assigned a conversation (`is_tenant_staff`) follows the same split: in AWS a member of
the tenant's Cognito group (AdminListGroupsForUser on the pool the ARN names), locally a user a dev
token names for the tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import CognitoUserPoolAuthorizer

from chalicelib import aws

USER_POOL_ARN_ENV = "BANDITORE_STAFF_USER_POOL_ARN"
DEV_TOKENS_ENV = "BANDITORE_DEV_TOKENS"
AUTHORIZER_NAME = "StaffUserPool"
GROUP_PREFIX = "tenant-"
# The 401 answer, the same from the handler and from API Gateway's own refusal (infra sets it there).
UNAUTHENTICATED_MESSAGE = "Autenticazione richiesta: manca un token valido."
WWW_AUTHENTICATE = 'Bearer realm="banditore-inbox"'
_BEARER = re.compile(r"^Bearer +([\x21-\x7e]{1,512})$", re.IGNORECASE)


class NotAuthenticated(Exception):
    """No credentials, or credentials nobody issued (401)."""


class NotAllowed(Exception):
    """A known user asking for a tenant they do not belong to (403)."""


class StaffDirectoryUnavailable(Exception):
    """The user pool could not say who its staff are (throttled, unreachable): 503, try again."""


@dataclass(frozen=True)
class Staff:
    user: str
    tenants: frozenset[str]

    def check_member(self, tenant: str) -> None:
        if tenant not in self.tenants:
            raise NotAllowed(tenant)


def group_name(tenant: str) -> str:
    """The Cognito group of a tenant's staff (the CDK stack creates one per configured tenant)."""
    return f"{GROUP_PREFIX}{tenant}"


def staff_authorizer() -> CognitoUserPoolAuthorizer | None:
    """The authorizer for every /inbox route, or None where no user pool is configured (locally).
    Read when app.py is imported: under CDK synth the ARN is a token the template resolves."""
    arn = os.environ.get(USER_POOL_ARN_ENV)
    return CognitoUserPoolAuthorizer(AUTHORIZER_NAME, provider_arns=[arn]) if arn else None


def authenticate(request_context: Mapping[str, Any], headers: Mapping[str, str]) -> Staff:
    if os.environ.get(USER_POOL_ARN_ENV):
        authorizer = request_context.get("authorizer") or {}
        return staff_from_claims(authorizer.get("claims") or {})
    return staff_from_dev_token(headers.get("authorization", ""), os.environ.get(DEV_TOKENS_ENV, ""))


def staff_from_claims(claims: Mapping[str, Any]) -> Staff:
    """The user and tenants of a token API Gateway verified. API Gateway hands every claim over as
    a string: a list of groups arrives as "a,b" or "[a b]" depending on the integration, so all
    three shapes are read (group names hold neither commas, spaces nor brackets)."""
    user = claims.get("cognito:username") or claims.get("username") or claims.get("sub")
    if not isinstance(user, str) or not user:
        raise NotAuthenticated("no user in the token's claims")
    groups = claims.get("cognito:groups", [])
    if isinstance(groups, str):
        groups = groups.strip("[]").replace(",", " ").split()
    names = [group for group in groups if isinstance(group, str)] if isinstance(groups, list) else []
    return Staff(user, frozenset(g.removeprefix(GROUP_PREFIX) for g in names if g.startswith(GROUP_PREFIX)))


def staff_from_dev_token(authorization: str, configured: str) -> Staff:
    """The identity a dev token stands for. Every configured token is compared, in constant time
    and on digests (so neither the position of a match nor a token's length shows in the timing)."""
    match = _BEARER.match(authorization)
    if not match or not configured:
        raise NotAuthenticated("no bearer token")
    try:
        tokens = json.loads(configured)
    except ValueError:
        raise NotAuthenticated(f"{DEV_TOKENS_ENV} is not JSON") from None
    given = hashlib.sha256(match.group(1).encode()).digest()
    found: Any = None
    for token, identity in tokens.items() if isinstance(tokens, dict) else []:
        if hmac.compare_digest(given, hashlib.sha256(str(token).encode()).digest()):
            found = identity
    staff = _identity(found)
    if staff is None:
        raise NotAuthenticated("unknown token")
    return staff


def _identity(found: Any) -> Staff | None:
    """The staff a dev token's entry names; None for an entry without a user."""
    if not isinstance(found, dict) or not isinstance(found.get("user"), str):
        return None
    tenants = found.get("tenants", [])
    return Staff(found["user"], frozenset(t for t in tenants if isinstance(t, str)))


def is_tenant_staff(tenant: str, user: str) -> bool:
    """Whether `user` is a staff member of `tenant`: in AWS in the tenant's Cognito group, locally
    named for the tenant by a dev token. Raises StaffDirectoryUnavailable when Cognito cannot say."""
    arn = os.environ.get(USER_POOL_ARN_ENV)
    if arn:
        return group_name(tenant) in _cognito_groups(user_pool_id(arn), user)
    return any(staff.user == user and tenant in staff.tenants for staff in _dev_identities())


def user_pool_id(arn: str) -> str:
    """The pool id an ARN names (arn:aws:cognito-idp:{region}:{account}:userpool/{id}): the one
    variable that configures the authorizer also names the pool to ask, so the two cannot differ."""
    return arn.rpartition("/")[2]


def _cognito_groups(pool_id: str, user: str) -> set[str]:
    names: set[str] = set()
    try:
        pages = aws.client("cognito-idp").get_paginator("admin_list_groups_for_user")
        for page in pages.paginate(UserPoolId=pool_id, Username=user):
            names.update(str(group.get("GroupName")) for group in page.get("Groups", []))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        if code == "UserNotFoundException":
            return set()
        raise StaffDirectoryUnavailable(code) from None
    except BotoCoreError as error:  # unreachable, timed out: the answer is unknown, not "no"
        raise StaffDirectoryUnavailable(type(error).__name__) from None
    return names


def _dev_identities() -> list[Staff]:
    """Every identity BANDITORE_DEV_TOKENS names (none when it is unset or not JSON)."""
    try:
        tokens = json.loads(os.environ.get(DEV_TOKENS_ENV) or "{}")
    except ValueError:
        return []
    entries = tokens.values() if isinstance(tokens, dict) else []
    return [staff for entry in entries if (staff := _identity(entry)) is not None]
