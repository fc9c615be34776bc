"""The staff API's security in the synthesised template: the user pool and its web client as promised,
a group per configured tenant, the pool's authorizer on every /inbox method (and on nothing else),
API Gateway's own 401 in the API's shape, no dev tokens anywhere, and the SLA check and its alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

import app
from chalicelib import observability as obs
from chalicelib.inbox.auth import AUTHORIZER_NAME, DEV_TOKENS_ENV, UNAUTHENTICATED_MESSAGE, USER_POOL_ARN_ENV
from chalicelib.settings import SANDBOX_CHANNELS_ENV
from infra.constructs.staff_auth import DEFAULT_CALLBACK_URL, MIN_PASSWORD_LENGTH
from tests.infra.test_stack import (
    CONFIG_FILE,
    Template,
    alarms,
    functions,
    read_template,
    render,
    resources,
    synthesised,
)

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The stack test_stack.py synthesises (once per test run, whoever asks first)."""
    return read_template(synthesised(tmp_path_factory))


def _one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources(template, resource_type).items()
    return logical_id, resource


def _api(template: Template) -> dict[str, Any]:
    body: dict[str, Any] = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return body


def test_the_user_pool_admits_only_invited_staff_with_strong_passwords_and_totp(template: Template) -> None:
    _, pool = _one(template, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["MfaConfiguration"] == "OPTIONAL"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= MIN_PASSWORD_LENGTH >= 12
    assert all(policy[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    assert props["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"


def test_the_web_app_client_keeps_no_secret_and_signs_in_with_the_code_flow(template: Template) -> None:
    pool_id, _ = _one(template, "AWS::Cognito::UserPool")
    _, client = _one(template, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["UserPoolId"] == {"Ref": pool_id}
    assert props.get("GenerateSecret", False) is False
    assert props["AllowedOAuthFlows"] == ["code"]
    assert props["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(props["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert props["CallbackURLs"] == [DEFAULT_CALLBACK_URL]
    assert props["PreventUserExistenceErrors"] == "ENABLED"


def test_there_is_a_group_for_each_tenant_of_the_deployed_configuration(template: Template) -> None:
    pool_id, _ = _one(template, "AWS::Cognito::UserPool")
    groups = [r["Properties"] for r in resources(template, "AWS::Cognito::UserPoolGroup").values()]
    tenants = [tenant["id"] for tenant in yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))["tenants"]]
    assert sorted(group["GroupName"] for group in groups) == sorted(f"tenant-{tenant}" for tenant in tenants)
    assert all(group["UserPoolId"] == {"Ref": pool_id} for group in groups)


def test_every_inbox_method_and_only_those_has_the_pools_authorizer(template: Template) -> None:
    pool_id, _ = _one(template, "AWS::Cognito::UserPool")
    api = _api(template)
    authorizer = api["securityDefinitions"][AUTHORIZER_NAME]
    assert authorizer["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    assert authorizer["name"] == "Authorization"
    assert authorizer["x-amazon-apigateway-authorizer"]["providerARNs"] == [{"Fn::GetAtt": [pool_id, "Arn"]}]
    deployed = {
        (method, path): operation.get("security")
        for path, item in api["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }
    inbox = {key: security for key, security in deployed.items() if key[1].startswith("/inbox/")}
    assert all(security == [{AUTHORIZER_NAME: []}] for security in inbox.values())
    assert all(security is None for key, security in deployed.items() if key not in inbox)
    # Every /inbox route of the app is deployed, so none is left without its authorizer.
    routes = {
        (m.lower(), p) for p, methods in app.app.routes.items() if p.startswith("/inbox/") for m in methods
    }
    assert set(inbox) == routes and routes


def test_api_gateways_own_401_speaks_the_apis_error_shape(template: Template) -> None:
    refusal = _api(template)["x-amazon-apigateway-gateway-responses"]["UNAUTHORIZED"]
    assert refusal["statusCode"] == "401"
    assert json.loads(refusal["responseTemplates"]["application/json"]) == {"error": UNAUTHENTICATED_MESSAGE}
    headers = refusal["responseParameters"]
    assert headers["gatewayresponse.header.WWW-Authenticate"].startswith("'Bearer")
    assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"


def test_no_function_accepts_dev_tokens_and_every_one_knows_the_pool(template: Template) -> None:
    pool_id, _ = _one(template, "AWS::Cognito::UserPool")
    for name, function in functions(template).items():
        variables = function["Environment"]["Variables"]
        assert DEV_TOKENS_ENV not in variables, name
        assert variables[USER_POOL_ARN_ENV] == {"Fn::GetAtt": [pool_id, "Arn"]}, name
    assert DEV_TOKENS_ENV not in json.dumps(template)


def test_the_sla_check_runs_every_five_minutes_and_alarms_on_the_first_breach(template: Template) -> None:
    (event,) = functions(template)["CheckInboxSla"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)"}}
    (alarm,) = (a for a in alarms(template) if a.get("MetricName") == obs.SLA_BREACHES)
    assert alarm["Namespace"] == obs.NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": obs.SERVICE}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(render(dashboard["Properties"]["DashboardBody"]))["widgets"]
    shown = {metric[1] for widget in widgets for metric in widget["properties"]["metrics"]}
    assert {obs.SLA_BREACHES, obs.CONVERSATIONS_OVER_SLA} <= shown


def test_no_deployed_function_shows_drills_or_fetches_private_images(template: Template) -> None:
    """Test and Exercise alerts and loopback images exist for the local stack only: the variables that
    allow them are never in the deployed template, whatever the configuration says."""
    for name in (SANDBOX_CHANNELS_ENV, "BANDITORE_MEDIA_ALLOW_PRIVATE"):
        assert name not in json.dumps(template), name
