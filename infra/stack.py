"""BanditoreStack: the Chalice app (schedules, queue consumers, REST API) wired to its table, publish
lanes, configuration, secrets and alarms.

One IAM role, owned here, runs every function; Chalice does not manage it (`manage_iam_role: false`).
Managed by Chalice, with `autogen_policy: false` (.chalice/config.json) it would be one role per
function read from `.chalice/policy-<stage>.json` (no "DefaultRole" exists then), and with autogen on
its policy would allow SQS receive/delete on every queue of the account. Owning the role also lets
the functions depend on its policy (see the grants below).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, CfnResource, Environment, Fn, Stack
from aws_cdk import aws_iam as iam
from chalice.cdk import Chalice
from chalice.utils import to_cfn_resource_name
from constructs import Construct

from chalicelib.alerts.websub import CALLBACK_URL_ENV as WEBSUB_CALLBACK_URL_ENV
from chalicelib.config.loader import CONFIG_ENV
from chalicelib.inbox.auth import USER_POOL_ARN_ENV
from chalicelib.inbox.cors import STAFF_ORIGIN_ENV, check_origin
from infra.constructs.config_asset import DeploymentConfig
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import PublishLanes
from infra.constructs.secrets import grant_secret_reads
from infra.constructs.staff_auth import StaffAuth
from infra.constructs.storage import Storage
from infra.resources import QUEUES, runtime_environment

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAM_FUNCTION = "AWS::Serverless::Function"


class BanditoreStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config_file: Path,
        alarm_email: str | None = None,
        staff_callback_url: str | None = None,
        staff_origin: str | None = None,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description="Banditore: news and alerts of a comune to its social channels",
        )
        # First, so an invalid config fails synth at once, before Chalice spends seconds packaging.
        config = DeploymentConfig(self, "Config", config_file=config_file)
        storage = Storage(self, "Storage")
        lanes = PublishLanes(self, "Queues").lanes
        role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
            ],
        )
        environment = runtime_environment(
            table_name=storage.table.table_name,
            queue_urls={name: lane.queue.queue_url for name, lane in lanes.items()},
            queue_arns={name: lane.queue.queue_arn for name, lane in lanes.items()},
        )
        environment[CONFIG_ENV] = config.uri
        # The staff API's authorizer: app.py attaches it to every /inbox route when this is set.
        tenants = [tenant.id for tenant in config.config.tenants]
        staff = StaffAuth(self, "StaffAuth", tenants=tenants, callback_url=staff_callback_url)
        environment[USER_POOL_ARN_ENV] = staff.user_pool_arn
        # The staff web app's origin: app.py gives every /inbox route this CORS origin (none: no CORS).
        if staff_origin:
            environment[STAFF_ORIGIN_ENV] = check_origin(staff_origin)
        # What `banditore dlq redrive` needs to reach the lanes of a deployed stack (see README).
        for name, value in environment.items():
            if name.endswith("_QUEUE_URL"):
                output_id = name.removeprefix("BANDITORE_").title().replace("_", "")  # e.g. PublishQueueUrl
                CfnOutput(self, output_id, value=value, description=f"export {name}=<this value>")
        # The Chalice stage is this stack's path ("Banditore"), so `stages` in .chalice/config.json
        # never applies here; per-function settings live in its top-level `lambda_functions`.
        # Nothing below sets lambda_timeout or lambda_memory_size: stage_config would override them.
        self.chalice = Chalice(
            self,
            "App",
            source_dir=str(PROJECT_DIR),
            stage_config={
                "environment_variables": environment,
                "manage_iam_role": False,
                "iam_role_arn": role.role_arn,
            },
        )

        grants = [
            storage.table.grant_read_write_data(role),
            config.grant_read(role),
            *grant_secret_reads(role, config.config),
            # Who may be assigned a conversation: the members of the tenant's group (inbox/auth.py).
            staff.user_pool.grant(role, "cognito-idp:AdminListGroupsForUser"),
        ]
        for lane in lanes.values():
            # Any function may enqueue (poll, housekeeping requeue); the consumers receive, delete
            # and change visibility (retry delays) on their lane.
            grants += [lane.queue.grant_send_messages(role), lane.queue.grant_consume_messages(role)]
        functions = self._functions()
        for grant in grants:
            # The role's policy is a separate resource: without this, CloudFormation may create
            # the SQS event source mappings first, and Lambda refuses them ("the provided execution
            # role does not have permissions to call ReceiveMessage").
            grant.apply_before(*functions.values())
        self._report_batch_item_failures()
        self._websub_callback()
        StaffAuth.answer_unauthenticated_as_the_api_does(self.chalice.get_resource("RestAPI"), staff_origin)

        Monitoring(
            self,
            "Monitoring",
            functions={name: function.ref for name, function in functions.items()},
            lanes=lanes.values(),
            alarm_email=alarm_email,
        )

    def _functions(self) -> dict[str, CfnResource]:
        """Every function of the Chalice app by logical ID (Publish, PollSources, APIHandler...)."""
        return {
            child.node.id: child
            for child in self.chalice.sam_template.node.children
            if isinstance(child, CfnResource) and child.cfn_resource_type == SAM_FUNCTION
        }

    def _websub_callback(self) -> None:
        """The API's public URL: hubs push alerts to it, and platforms call the inbox webhooks
        under it. Only the functions that register them need it (the WebSub renewal, and the
        channel check for the inbox webhooks): on the API handler it would make a cycle (the REST
        API already depends on that function)."""
        for function in ("renew_websub", "check_channels"):
            self.chalice.get_resource(to_cfn_resource_name(function)).add_property_override(
                f"Environment.Variables.{WEBSUB_CALLBACK_URL_ENV}",
                Fn.sub("https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"),
            )

    def _report_batch_item_failures(self) -> None:
        """Chalice never emits FunctionResponseTypes; without it Lambda deletes a whole batch when
        the handler returns, the records it reported as failed included."""
        for spec in QUEUES:
            function_id = to_cfn_resource_name(spec.consumer)
            # Chalice's own naming for the event of @app.on_sqs_message(name=...)
            event_id = to_cfn_resource_name(f"{spec.consumer}-sqs-event-source")
            self.chalice.get_resource(function_id).add_override(
                f"Properties.Events.{event_id}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"]
            )
