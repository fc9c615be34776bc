"""The synthesised CloudFormation template: what infra/ promises to deploy, checked resource by resource
against infra/resources.py, chalicelib's contracts (env var and metric names) and .chalice/config.json,
then linted with cfn-lint.

Synth runs once per test run, as an operator runs it (`python infra/app.py`), in a subprocess:
chalice.cdk imports app.py with CDK tokens in os.environ and leaves both behind, which would leak
into every later test of this process. Under pytest-xdist the workers share one output folder under
a file lock, so the suite pays for one synth however the tests are distributed.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from chalice.utils import to_cfn_resource_name

from chalicelib import observability as obs
from chalicelib import settings
from chalicelib.config.loader import CONFIG_ENV, ConfigError, load_config
from chalicelib.inbox.cors import STAFF_ORIGIN_ENV
from infra.resources import QUEUES, TABLE, QueueSpec

Template = dict[str, Any]


# -- synth -----------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = Path(__file__).with_name("stack-config.yaml")
ALARM_EMAIL = "ced@comune-a.example.it"
STAFF_ORIGIN = "https://staff.comune-a.example.it"  # the staff web app, allowed by CORS
STACK = "Banditore"


@dataclass(frozen=True)
class Synth:
    outdir: Path

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{STACK}.template.json"


def run_synth(outdir: Path, config_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "infra/app.py"],
        cwd=ROOT,
        # No CDK_* from the caller's shell: an account there would change every ARN.
        env={
            **{name: value for name, value in os.environ.items() if not name.startswith("CDK_")},
            "CDK_OUTDIR": str(outdir),
            "BANDITORE_CONFIG_FILE": str(config_file),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The run's synth output, made by whichever test module (or worker) asks first."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, common to all workers
    outdir = shared / "banditore-cdk.out"
    with _exclusive(shared / "banditore-cdk.lock"):
        if not (outdir / "manifest.json").is_file():
            result = run_synth(
                outdir, CONFIG_FILE, BANDITORE_ALARM_EMAIL=ALARM_EMAIL, BANDITORE_STAFF_ORIGIN=STAFF_ORIGIN
            )
            assert result.returncode == 0, f"synth failed:\n{result.stdout}\n{result.stderr}"
    return Synth(outdir)


def read_template(synth: Synth) -> Template:
    data: Template = json.loads(synth.template_file.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesised(tmp_path_factory)


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    return read_template(synth)


# -- reading the template ------------------------------------------------------------------------
def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources(template, "AWS::Serverless::Function").items()}


def sqs_events(function: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: e["Properties"] for name, e in function.get("Events", {}).items() if e["Type"] == "SQS"}


def lane_queue_id(template: Template, spec: QueueSpec) -> str:
    """The logical ID of a lane's queue, found through the event source of its consumer."""
    (event,) = sqs_events(functions(template)[to_cfn_resource_name(spec.consumer)]).values()
    queue_id: str = event["Queue"]["Fn::GetAtt"][0]
    return queue_id


def dlq_id(template: Template, queue_id: str) -> str:
    redrive = template["Resources"][queue_id]["Properties"]["RedrivePolicy"]
    target: str = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    return target


def render(value: Any) -> str:
    """A value as text: Fn::Join flattened, Fn::Sub as written, Ref/GetAtt as ${Name}/${Name.Attribute}."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    if "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    if "Ref" in value:
        return f"${{{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return f"${{{'.'.join(value['Fn::GetAtt'])}}}"
    raise AssertionError(f"cannot render {value}")


def statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def alarms(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]


# -- storage -------------------------------------------------------------------------------------
def test_table_is_built_from_the_spec(template: Template) -> None:
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 1
    (table,) = tables.values()
    props = table["Properties"]

    def key_schema(pk: str, sk: str) -> list[dict[str, str]]:
        return [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]

    assert props["KeySchema"] == key_schema(TABLE.partition_key, TABLE.sort_key)
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": index.name,
            "KeySchema": key_schema(index.partition_key, index.sort_key),
            "Projection": {"ProjectionType": "ALL"},
        }
        for index in TABLE.indexes
    ]
    assert {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]} == {
        name: "S"
        for name in [TABLE.partition_key, TABLE.sort_key]
        + [key for index in TABLE.indexes for key in (index.partition_key, index.sort_key)]
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": TABLE.ttl_attribute, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


# -- queues --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", QUEUES, ids=lambda spec: spec.lane)
def test_lane_queue_and_dlq_are_built_from_the_spec(template: Template, spec: QueueSpec) -> None:
    queue_id = lane_queue_id(template, spec)
    queue = template["Resources"][queue_id]["Properties"]
    dlq = template["Resources"][dlq_id(template, queue_id)]["Properties"]
    assert queue["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert queue["RedrivePolicy"]["maxReceiveCount"] == spec.max_receive_count
    assert dlq["MessageRetentionPeriod"] == spec.dlq_retention_seconds
    assert queue["SqsManagedSseEnabled"] is dlq["SqsManagedSseEnabled"] is True


def test_each_lane_has_its_own_queue_and_dlq(template: Template) -> None:
    queue_ids = {lane_queue_id(template, spec) for spec in QUEUES}
    dlq_ids = {dlq_id(template, queue_id) for queue_id in queue_ids}
    assert len(queue_ids) == len(dlq_ids) == len(QUEUES)
    assert set(resources(template, "AWS::SQS::Queue")) == queue_ids | dlq_ids


@pytest.mark.parametrize("spec", QUEUES, ids=lambda spec: spec.lane)
def test_visibility_timeout_is_six_times_the_consumer_timeout(template: Template, spec: QueueSpec) -> None:
    consumer = functions(template)[to_cfn_resource_name(spec.consumer)]
    queue = template["Resources"][lane_queue_id(template, spec)]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]


# -- functions -----------------------------------------------------------------------------------
def test_every_sqs_event_source_reports_batch_item_failures(template: Template) -> None:
    consumers = {name: sqs_events(f) for name, f in functions(template).items() if sqs_events(f)}
    assert set(consumers) == {to_cfn_resource_name(spec.consumer) for spec in QUEUES}
    for events in consumers.values():
        for event in events.values():
            assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_functions_run_python_3_11(template: Template) -> None:
    assert {f["Runtime"] for f in functions(template).values()} == {"python3.11"}


def test_per_function_settings_of_chalice_config_apply(template: Template) -> None:
    """Under chalice.cdk the stage is the stack's name, so per-function settings under a stage of
    .chalice/config.json (`stages.dev.lambda_functions`) are silently ignored; only the top-level
    `lambda_functions` apply. Every per-function setting, wherever it is written, must be deployed."""
    chalice_config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    sections = [chalice_config.get("lambda_functions", {})]
    sections += [stage.get("lambda_functions", {}) for stage in chalice_config.get("stages", {}).values()]
    written = [
        (name, key, value)
        for section in sections
        for name, keys in section.items()
        for key, value in keys.items()
    ]
    assert written
    properties = {
        "lambda_timeout": "Timeout",
        "lambda_memory_size": "MemorySize",
        "reserved_concurrency": "ReservedConcurrentExecutions",
    }
    deployed = functions(template)
    assert [(n, k, v) for n, k, v in written if deployed[to_cfn_resource_name(n)][properties[k]] != v] == []


def test_functions_find_their_resources_in_the_environment(template: Template) -> None:
    (table_id,) = resources(template, "AWS::DynamoDB::Table")
    expected: dict[str, Any] = {settings.TABLE_ENV: {"Ref": table_id}}
    for spec in QUEUES:
        queue_id = lane_queue_id(template, spec)
        expected[spec.url_env] = {"Ref": queue_id}
        expected[spec.arn_env] = {"Fn::GetAtt": [queue_id, "Arn"]}
    for name, function in functions(template).items():
        variables = function["Environment"]["Variables"]
        assert {key: variables.get(key) for key in expected} == expected, name
        assert variables[CONFIG_ENV]["Fn::Sub"].startswith("s3://"), name


def test_only_the_functions_that_register_callbacks_know_the_public_url(template: Template) -> None:
    with_url = {
        name
        for name, function in functions(template).items()
        if "BANDITORE_WEBSUB_CALLBACK_URL" in function["Environment"]["Variables"]
    }
    # The WebSub renewal, and the channel check that registers the inbox webhooks.
    assert with_url == {"RenewWebsub", "CheckChannels"}
    for name in with_url:
        url = functions(template)[name]["Environment"]["Variables"]["BANDITORE_WEBSUB_CALLBACK_URL"]
        assert "${RestAPI}" in url["Fn::Sub"]


def test_stack_outputs_the_lane_urls_the_dlq_redrive_needs(template: Template) -> None:
    outputs = template["Outputs"]
    for spec in QUEUES:
        queue_id = lane_queue_id(template, spec)
        assert [o for o in outputs.values() if o["Value"] == {"Ref": queue_id}], spec.url_env


def test_config_is_the_given_file_and_readable_as_that_one_object(synth: Synth, template: Template) -> None:
    uris = {f["Environment"]["Variables"][CONFIG_ENV]["Fn::Sub"] for f in functions(template).values()}
    (uri,) = uris
    key = uri.rsplit("/", 1)[1]
    assert (synth.outdir / f"asset.{key}").read_bytes() == CONFIG_FILE.read_bytes()
    s3_resources = [
        render(resource)
        for statement in statements(template)
        if any(action.startswith("s3:") for action in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"])
    ]
    objects = [arn for arn in s3_resources if "/" in arn]
    assert objects and all(arn.endswith(f"/{key}") for arn in objects)


# -- permissions ---------------------------------------------------------------------------------
def test_secret_grants_name_exactly_the_referenced_secrets(template: Template) -> None:
    granted: dict[str, set[str]] = {}
    for statement in statements(template):
        for action in as_list(statement["Action"]):
            if action.split(":")[0] in {"ssm", "secretsmanager", "kms"}:
                granted.setdefault(action, set()).update(render(r) for r in as_list(statement["Resource"]))
    arn = "arn:aws:{}:eu-south-1:${{AWS::AccountId}}:{}"
    parameters = {
        arn.format("ssm", "parameter/banditore/comune-a/telegram-token"),
        arn.format("ssm", "parameter/banditore/comune-b/telegram-token"),
    }
    # env: references and the tenant named like a reference grant nothing; no kms:Decrypt is needed.
    assert granted == {
        "ssm:GetParameter": parameters,
        "ssm:GetParameters": parameters,
        "secretsmanager:GetSecretValue": {
            arn.format("secretsmanager", "secret:banditore/comune-a/mastodon-??????")
        },
    }


def test_functions_may_send_to_and_consume_from_both_lanes(template: Template) -> None:
    needed = {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    for spec in QUEUES:
        queue_arn = {"Fn::GetAtt": [lane_queue_id(template, spec), "Arn"]}
        allowed = {
            action
            for statement in statements(template)
            if queue_arn in as_list(statement["Resource"])
            for action in as_list(statement["Action"])
        }
        assert needed <= allowed, spec.lane


def test_no_statement_allows_everything(template: Template) -> None:
    assert [s for s in statements(template) if "*" in as_list(s["Resource"])] == []


def test_every_function_waits_for_the_policy_that_lets_it_read_its_queue(template: Template) -> None:
    (policy_id,) = resources(template, "AWS::IAM::Policy")
    for name in functions(template):
        assert policy_id in as_list(template["Resources"][name].get("DependsOn", [])), name


# -- monitoring ----------------------------------------------------------------------------------
def test_emf_alarms_watch_exactly_what_powertools_emits(template: Template) -> None:
    emf = [a for a in alarms(template) if a.get("Namespace") == obs.NAMESPACE]
    assert {a["MetricName"] for a in emf} == {
        obs.PUBLISH_FAILURES,
        obs.FEED_STALE,
        obs.UNHEALTHY_CHANNELS,
        obs.TOKEN_DAYS_LEFT,
        obs.DANGER_REPORTS,
        obs.INBOUND_FAILURES,
        obs.SLA_BREACHES,  # details in test_staff_auth.py
        obs.REPLY_FAILURES,
        obs.MENTION_POLL_FAILURES,
        obs.WEBHOOKS_BROKEN,
        obs.THREAD_UPDATES_LOST,
    }
    for alarm in emf:
        assert alarm["Dimensions"] == [{"Name": "service", "Value": obs.SERVICE}]
        assert alarm["TreatMissingData"] == "notBreaching"
        if alarm["MetricName"] != obs.TOKEN_DAYS_LEFT:
            assert alarm["Threshold"] == 1
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (failures,) = (a for a in emf if a["MetricName"] == obs.PUBLISH_FAILURES)
    assert (failures["Statistic"], failures["Period"], failures["EvaluationPeriods"]) == ("Sum", 300, 1)
    # One citizen's danger report within five minutes is enough to page someone.
    (danger,) = (a for a in emf if a["MetricName"] == obs.DANGER_REPORTS)
    assert (danger["Statistic"], danger["Period"], danger["EvaluationPeriods"]) == ("Sum", 300, 1)
    # A reply that will never reach its citizen pages someone within five minutes.
    (undelivered,) = (a for a in emf if a["MetricName"] == obs.REPLY_FAILURES)
    assert (undelivered["Statistic"], undelivered["Period"], undelivered["EvaluationPeriods"]) == (
        "Sum",
        300,
        1,
    )
    # A token alarms a week before it expires; the check reports the soonest expiry as a minimum.
    (expiring,) = (a for a in emf if a["MetricName"] == obs.TOKEN_DAYS_LEFT)
    assert (expiring["Statistic"], expiring["Threshold"], expiring["ComparisonOperator"]) == (
        "Minimum",
        7,
        "LessThanThreshold",
    )


def test_every_function_has_an_errors_alarm(template: Template) -> None:
    watched = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in alarms(template)
        if a.get("Namespace") == "AWS/Lambda" and a["MetricName"] == "Errors"
    }
    assert watched == set(functions(template))


def test_the_cost_model_prices_every_alarm_the_stack_creates(template: Template) -> None:
    from benchmarks.cost import ALARMS

    assert len(alarms(template)) == ALARMS  # each alarm is billed: `make bench` must count them all


def test_every_dlq_alarms_on_its_first_message(template: Template) -> None:
    sqs_alarms = [a for a in alarms(template) if a.get("Namespace") == "AWS/SQS"]
    for alarm in sqs_alarms:
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    watched = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in sqs_alarms}
    assert watched == {dlq_id(template, lane_queue_id(template, spec)) for spec in QUEUES}


def test_every_alarm_notifies_the_topic_the_email_subscribes_to(template: Template) -> None:
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    for alarm in alarms(template):
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}]
    (subscription,) = (r["Properties"] for r in resources(template, "AWS::SNS::Subscription").values())
    assert subscription == {"Protocol": "email", "TopicArn": {"Ref": topic_id}, "Endpoint": ALARM_EMAIL}


def test_dashboard_shows_posts_failures_feed_errors_and_dlq_depth(template: Template) -> None:
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(render(dashboard["Properties"]["DashboardBody"]))["widgets"]
    shown = {metric[1] for widget in widgets for metric in widget["properties"]["metrics"]}
    assert {
        obs.POSTS_PUBLISHED,
        obs.PUBLISH_FAILURES,
        obs.FEED_ERRORS,
        "ApproximateNumberOfMessagesVisible",
    } <= shown


# -- the template as a whole ---------------------------------------------------------------------
def test_cfn_lint_finds_nothing(synth: Synth) -> None:
    """Warnings fail too: none is ignored, so a new one is either fixed or justified here."""
    matches = lint_file(synth.template_file, config=ManualArgs(regions=["eu-south-1"]))
    assert [f"{m.rule.id} {m.message} ({m.path})" for m in matches] == []


def test_an_invalid_config_fails_synth_with_the_loaders_message(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        CONFIG_FILE.read_text(encoding="utf-8").replace(
            "token: ssm:/banditore/comune-a/telegram-token", "token: 123456:the-token-itself"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as loader:
        load_config(str(config))
    result = run_synth(tmp_path / "cdk.out", config)
    assert result.returncode == 1
    assert str(loader.value) in result.stderr
    assert "the-token-itself" not in result.stderr
    # Validation comes first: Chalice never started packaging, nothing was written.
    assert "deployment package" not in result.stdout
    assert list((tmp_path / "cdk.out").glob("*.template.json")) == []


def test_mention_poll_failures_alarm_on_a_dead_channel_not_on_a_blip(template: Template) -> None:
    """Polls run every 2 minutes: a failure in 3 of the last 4 five-minute periods is a channel that
    keeps failing (a revoked token), one failed period is a platform's blip and pages nobody."""
    (failures,) = (a for a in alarms(template) if a.get("MetricName") == obs.MENTION_POLL_FAILURES)
    assert failures["Namespace"] == obs.NAMESPACE
    assert failures["Dimensions"] == [{"Name": "service", "Value": obs.SERVICE}]
    assert (failures["Statistic"], failures["Period"]) == ("Sum", 300)
    assert (failures["EvaluationPeriods"], failures["DatapointsToAlarm"]) == (4, 3)
    assert (failures["Threshold"], failures["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert failures["TreatMissingData"] == "notBreaching"
    # The other alarms are unchanged: one bad period is enough for them.
    assert all("DatapointsToAlarm" not in a for a in alarms(template) if a is not failures)


# -- the staff API from a browser (CORS) and the assignee check ------------------------------------
def test_the_staff_origin_reaches_the_functions_and_every_inbox_path_answers_its_preflight(
    template: Template,
) -> None:
    for name, function in functions(template).items():
        assert function["Environment"]["Variables"][STAFF_ORIGIN_ENV] == STAFF_ORIGIN, name
    api = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    inbox = {path: item for path, item in api["paths"].items() if path.startswith("/inbox/")}
    assert inbox
    for path, item in inbox.items():
        preflight = item["options"]
        # Answered by API Gateway itself (mock integration): no authorizer, no function call.
        assert "security" not in preflight, path
        assert preflight["x-amazon-apigateway-integration"]["type"] == "mock"
        headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{STAFF_ORIGIN}'"
        allowed = headers["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
        assert {"Authorization", "Content-Type", "Idempotency-Key"} <= set(allowed)
        methods = headers["method.response.header.Access-Control-Allow-Methods"].strip("'").split(",")
        assert set(methods) == {m.upper() for m in item if m != "options"} | {"OPTIONS"}
    # Nothing else of the API is open to browsers.
    assert all("options" not in item for path, item in api["paths"].items() if path not in inbox)
    # API Gateway's own 401 carries the origin too, or the browser would hide it from the app.
    refusal = api["x-amazon-apigateway-gateway-responses"]["UNAUTHORIZED"]["responseParameters"]
    assert refusal["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{STAFF_ORIGIN}'"


def test_an_origin_that_is_not_one_fails_synth_before_packaging(tmp_path: Path) -> None:
    result = run_synth(tmp_path / "cdk.out", CONFIG_FILE, BANDITORE_STAFF_ORIGIN="*")
    assert result.returncode == 1
    assert STAFF_ORIGIN_ENV in result.stderr
    assert list((tmp_path / "cdk.out").glob("*.template.json")) == []


def test_functions_may_list_the_groups_of_the_staff_pools_users_and_nothing_more(template: Template) -> None:
    (pool_id,) = resources(template, "AWS::Cognito::UserPool")
    cognito = [s for s in statements(template) if any("cognito-idp:" in a for a in as_list(s["Action"]))]
    assert cognito == [
        {
            "Action": "cognito-idp:AdminListGroupsForUser",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [pool_id, "Arn"]},
        }
    ]


def test_a_broken_inbox_webhook_alarms_on_the_channel_checks_level(template: Template) -> None:
    """The channel check (every 15 minutes) reports how many inbox webhooks are still broken after it
    registered what it could: one, over a 30-minute period, pages someone."""
    (broken,) = (a for a in alarms(template) if a.get("MetricName") == obs.WEBHOOKS_BROKEN)
    assert broken["Namespace"] == obs.NAMESPACE
    assert (broken["Statistic"], broken["Period"], broken["EvaluationPeriods"]) == ("Maximum", 1800, 1)
    assert (broken["Threshold"], broken["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert "banditore webhooks" in broken["AlarmDescription"]
