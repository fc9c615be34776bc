"""The local stack: Banditore on one machine with no AWS account, no Docker and no internet.

moto (server mode, 127.0.0.1) plays DynamoDB/SQS/SNS/SSM/CloudWatch with resources created from
infra/resources.py (the same definitions as the CDK stack); the platform sandbox plays every social
platform; the sample feeds are served from events/feeds/. The real handlers run through Chalice's
own invoke machinery (so the Powertools middleware runs too): a scheduler fires the schedules, a
pump feeds SQS messages to the queue consumers, and Chalice's local server serves the routes.
Table contents are saved in the state folder on stop and restored on start, so a second run sees
what the first one did.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit

import boto3
import yaml
from chalice.local import LambdaContext

from chalicelib import secrets, settings
from chalicelib.inbox.auth import DEV_TOKENS_ENV
from devtools import aws_local
from devtools.feeds import SampleFeedServer
from devtools.sandbox import Sandbox
from devtools.sandbox.x import sandbox_credentials

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FEEDS_HOST = "sample.feeds.invalid"
EVENTS = ROOT / "events"
LANES = {"urgent": "publish_urgent", "inbox": "process_inbound", "normal": "publish"}
# The config field that says where a channel's platform API lives, where it is not `api_base`.
_API_FIELD = {"mastodon": "instance", "bluesky": "service", "matrix": "homeserver"}
# Platforms whose endpoint is the secret itself (an incoming-webhook URL): the sandbox URL to give it.
_WEBHOOK_PATHS = {
    "slack": "/services/TSANDBOX/{channel}/{secret}",
    "discord": "/api/webhooks/{number}/{secret}",
}


@dataclass
class LocalStack:
    config_path: Path
    state_dir: Path = ROOT / ".banditore"
    api_port: int = 0
    persist: bool = True
    feeds_dir: Path = EVENTS / "feeds"  # served for URLs on SAMPLE_FEEDS_HOST
    sandboxed: list[str] = field(default_factory=list)  # "tenant/channel" posting to the sandbox

    def __post_init__(self) -> None:
        self._saved_env = dict(os.environ)
        self._moto: Any = None
        self.resources: aws_local.LocalResources | None = None
        self.sandbox = Sandbox()
        self.feeds = SampleFeedServer(self.feeds_dir)
        self._api: Any = None
        self._log: Any = None
        self.invocations = 0
        self.api_url: str | None = None
        # Dev tokens of the staff API, new on every start: "*" for every tenant, else by tenant.
        self.dev_tokens: dict[str, str] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, *, serve_api: bool = False) -> LocalStack:
        _forget_process_state()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._moto = aws_local.start_moto()  # empty, even if an earlier stack ran in this process
        os.environ.update(
            AWS_ENDPOINT_URL=self._moto.url,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 (moto accepts any key)
            AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "eu-south-1"),
        )
        os.environ.pop("AWS_PROFILE", None)
        # Feed images are served from this machine: let the image fetcher reach loopback here only.
        os.environ["BANDITORE_MEDIA_ALLOW_PRIVATE"] = "1"
        self.resources = aws_local.create_resources(self._moto.url)
        os.environ.update(self.resources.env())
        self.sandbox.start()
        self.feeds.start()
        self._write_local_config()
        if self.persist:
            restore_table(self.state_file, self.resources.table_name)
        from chalice.cli.factory import CLIFactory

        self._chalice_config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name="dev")
        self._log = (self.state_dir / "lambda.log").open("a", encoding="utf-8")
        import app
        from chalicelib.observability import logger

        # The Logger is created once per process; point it at this stack's log file.
        logger.registered_handler.setStream(self._log)
        self.app = app.app
        if serve_api:
            self._serve_api()
        return self

    def stop(self) -> None:
        """Stop whatever was started (also after a failed start) and restore the environment."""
        if self.persist and self.resources is not None:
            save_table(self.state_file, self.resources.table_name)
        if self._api is not None:
            self._api.shutdown()
        self.sandbox.stop()
        self.feeds.stop()
        if self._moto is not None:
            self._moto.stop()
        if self._log is not None:
            from chalicelib.observability import logger

            logger.registered_handler.setStream(sys.stdout)
            self._log.close()
        os.environ.clear()
        os.environ.update(self._saved_env)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "table.json"

    # -- configuration ----------------------------------------------------------------------
    def _write_local_config(self) -> None:
        """Point sample feeds at the local feed server and every channel whose token does not
        resolve locally at the sandbox; everything else is the operator's config as written."""
        raw = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        user_secrets = _user_secrets()
        secrets = dict(user_secrets)
        self.sandboxed = []
        for tenant in raw.get("tenants", []):
            for source in tenant.get("sources", []):
                parts = urlsplit(str(source.get("url", "")))
                if parts.hostname == SAMPLE_FEEDS_HOST:
                    source["url"] = self.feeds.url + parts.path
            for channel in tenant.get("channels", []):
                refs = _channel_secret_refs(channel)
                if all(_resolves(ref, user_secrets) for ref in refs.values()):
                    continue
                self.sandboxed.append(f"{tenant['id']}/{channel['id']}")
                secrets.update(self._sandbox_channel(tenant["id"], channel, refs))
        config_file = self.state_dir / "config.local.yaml"
        config_file.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
        secrets_file = self.state_dir / "secrets.local.yaml"
        secrets_file.unlink(missing_ok=True)
        # Created readable by its owner only: it may hold the operator's real tokens.
        with os.fdopen(os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(yaml.safe_dump(secrets))
        os.environ["BANDITORE_CONFIG"] = str(config_file)
        os.environ["BANDITORE_SECRETS_FILE"] = str(secrets_file)
        # Only these channels may show Test and Exercise alerts (a tenant's include_tests_in_sandbox).
        os.environ[settings.SANDBOX_CHANNELS_ENV] = ",".join(self.sandboxed)

    def _sandbox_channel(self, tenant: str, channel: dict[str, Any], refs: dict[str, str]) -> dict[str, str]:
        """Point a channel at its platform's fake and make up its secrets (one per reference, stable,
        so the fakes show each channel as its own account)."""
        platform = str(channel.get("platform"))
        base = self.sandbox.base_for(platform)
        refs = {**refs, **_inbox_secret_refs(tenant, channel)}
        # X's fake checks OAuth 1.0a signatures for real, so its four credentials must belong together.
        paired = sandbox_credentials(f"{tenant}-{channel['id']}") if platform == "x" else {}
        values = {}
        for field_name, ref in refs.items():
            suffix = "" if field_name == "token" else "-" + field_name.replace("_", "-")
            secret = paired.get(field_name, f"sandbox-{tenant}-{channel['id']}{suffix}")
            if platform in _WEBHOOK_PATHS and field_name == "webhook_url":
                number = sum(secret.encode())  # Discord's webhook ids are numbers
                path = _WEBHOOK_PATHS[platform].format(channel=channel["id"], secret=secret, number=number)
                secret = base + path
            values[ref] = secret
        if platform not in _WEBHOOK_PATHS:
            channel[_API_FIELD.get(platform, "api_base")] = base
        return values

    # -- running the handlers ---------------------------------------------------------------
    def invoke(self, function: str, payload: dict[str, Any]) -> Any:
        """Run a handler as Lambda would, with the function's configured timeout and environment
        (Chalice's test client would give every function a 3 s context). Its JSON logs and EMF
        metrics go to the state folder's lambda.log, keeping the console for people."""
        scoped = self._chalice_config.scope("dev", function)
        context = LambdaContext(
            function, memory_size=scoped.lambda_memory_size, max_runtime_ms=scoped.lambda_timeout * 1000
        )
        saved = dict(os.environ)
        os.environ.update(scoped.environment_variables)
        self.invocations += 1
        try:
            with redirect_stdout(self._log):
                result = self.app.handler_map[function](payload, context)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            self._log.flush()
        return result

    def poll(self) -> dict[str, Any]:
        return self.invoke("poll_sources", _schedule_event())  # type: ignore[no-any-return]

    def poll_alerts(self) -> dict[str, Any]:
        """One pass over the alert feeds (in AWS the function loops for its whole minute)."""
        event = _schedule_event()
        event["detail"] = {"single_pass": True}
        return self.invoke("poll_alerts", event)  # type: ignore[no-any-return]

    def renew_websub(self) -> dict[str, Any]:
        return self.invoke("renew_websub", _schedule_event())  # type: ignore[no-any-return]

    def housekeeping(self) -> dict[str, Any]:
        return self.invoke("housekeeping", _schedule_event())  # type: ignore[no-any-return]

    def poll_mentions(self) -> dict[str, Any]:
        return self.invoke("poll_mentions", _schedule_event())  # type: ignore[no-any-return]

    def check_channels(self) -> dict[str, Any]:
        return self.invoke("check_channels", _schedule_event())  # type: ignore[no-any-return]

    def check_inbox_sla(self) -> dict[str, Any]:
        return self.invoke("check_inbox_sla", _schedule_event())  # type: ignore[no-any-return]

    def pump_once(self) -> int:
        """Receive one batch per lane (urgent first), run the consumer, delete what succeeded."""
        sqs = boto3.client("sqs")
        handled = 0
        for lane, function in LANES.items():
            url = self.resources.queue_urls[lane]
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                continue
            response = self.invoke(function, sqs_event(messages, self.resources.queue_arns[lane]))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
            handled += len(messages)
        return handled

    def drain(self, timeout: float = 30.0) -> int:
        """Pump until both lanes are empty (messages waiting on a retry delay are not waited for)."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            handled = self.pump_once()
            total += handled
            if not handled:
                return total
        return total

    # -- serving -----------------------------------------------------------------------------
    def _serve_api(self) -> None:
        from chalice.config import Config
        from chalice.local import ChaliceRequestHandler, LocalDevServer

        class NoDelayHandler(ChaliceRequestHandler):
            # The handler writes headers and body apart; with Nagle's algorithm on, the body waits
            # for the client's delayed ACK of the headers: 40 ms more on every kept-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the functions' own JSON log (state/lambda.log) says what each request did, and
                a line per request on stderr would bury `make run`'s console and `make bench`'s table."""

        server = LocalDevServer(
            self.app,
            Config.create(project_dir=str(ROOT), chalice_stage="dev"),
            "127.0.0.1",
            self.api_port,
            handler_cls=NoDelayHandler,
        )
        self._api = server
        host, port = server.server.server_address[:2]
        self.api_url = f"http://{host!s}:{port}"
        # Where a WebSub hub pushes alerts: this local API (reachable from this machine only).
        os.environ["BANDITORE_WEBSUB_CALLBACK_URL"] = self.api_url
        threading.Thread(target=server.server.serve_forever, name="local-api", daemon=True).start()
        self._issue_dev_tokens()
        self.register_webhooks()

    def register_webhooks(self) -> None:
        """Tell the platform fakes where this API takes each sandboxed inbox channel's webhook, as
        the channel check does in AWS (chalicelib/inbox/webhook_setup.py). Channels with the
        operator's real tokens are never given a loopback URL (webhook_setup refuses it too)."""
        from chalicelib.clock import utcnow
        from chalicelib.config.loader import current_config
        from chalicelib.inbox.webhook_setup import sync_webhooks

        sync_webhooks(current_config(), utcnow(), only=self.sandboxed)  # failures are logged there

    def _issue_dev_tokens(self) -> None:
        """One dev token for every tenant and one per tenant. The staff API accepts dev tokens only
        where no Cognito user pool is configured, as here (chalicelib/inbox/auth.py)."""
        from chalicelib.config.loader import current_config

        tenants = [tenant.id for tenant in current_config().tenants]
        self.dev_tokens = {"*": self.mint_dev_token("staff", tenants)}
        self.dev_tokens |= {tenant: self.mint_dev_token(f"staff-{tenant}", [tenant]) for tenant in tenants}

    def mint_dev_token(self, user: str, tenants: list[str]) -> str:
        """A new random dev token for `user` on `tenants`, valid until the stack stops (tokens the
        operator put in BANDITORE_DEV_TOKENS before starting stay valid too)."""
        token = token_urlsafe(32)
        known = json.loads(os.environ.get(DEV_TOKENS_ENV) or "{}")
        os.environ[DEV_TOKENS_ENV] = json.dumps(known | {token: {"user": user, "tenants": tenants}})
        return token


# What an inbox channel's webhook needs, by platform. A sandboxed channel with `inbox: true` that names
# none of them gets references made up (and values, like every sandbox secret), so citizens can
# write to it at once (devtools/sandbox/citizens.py signs as its platform would).
_INBOX_SECRETS = {"telegram": ("webhook_secret",), "facebook": ("app_secret", "verify_token")}


def _inbox_secret_refs(tenant: str, channel: dict[str, Any]) -> dict[str, str]:
    """Add the missing webhook secrets of a sandboxed inbox channel to its config, by field name;
    a Telegram one also gets a discussion group, where its comments arrive."""
    if not channel.get("inbox"):
        return {}
    made = {}
    for name in _INBOX_SECRETS.get(str(channel.get("platform")), ()):
        if not channel.get(name):
            channel[name] = made[name] = f"ssm:/banditore-sandbox/{tenant}/{channel['id']}/{name}"
    if channel.get("platform") == "telegram" and not channel.get("discussion_chat"):
        group = zlib.crc32(f"{tenant}/{channel['id']}".encode())
        channel["discussion_chat"] = f"-100{group:010d}"
    return made


@contextmanager
def local_stack(config_path: Path, **options: Any) -> Iterator[LocalStack]:
    stack = LocalStack(config_path, **options)
    try:
        yield stack.start()
    finally:
        stack.stop()


def _forget_process_state() -> None:
    """A Lambda container serves one deployment for its whole life, so the runtime caches clients,
    the config and secrets per process. The local stack may start several deployments in one
    process (tests, benchmarks), each with its own moto endpoint and config: start each clean."""
    from chalicelib import aws, status
    from chalicelib.config import loader

    for cached in (aws.client, loader._cached, secrets._read_local_file):
        cached.cache_clear()
    status._cache.clear()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one record per received message (unique ids)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": os.environ.get("AWS_DEFAULT_REGION", "eu-south-1"),
            }
            for m in messages
        ]
    }


def _schedule_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "schedule.json").read_text(encoding="utf-8"))
    event["id"] = str(uuid.uuid4())
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return event


def _user_secrets() -> dict[str, str]:
    """The operator's own git-ignored secrets file (real tokens), if any."""
    path = Path(os.environ.get("BANDITORE_SECRETS_FILE", ROOT / ".secrets.local.yaml"))
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}


def _channel_secret_refs(channel: dict[str, Any]) -> dict[str, str]:
    """The secret references of a channel as written in the YAML, by field name (the model says
    which fields hold secrets; an invalid channel has none here and fails validation later)."""
    from pydantic import TypeAdapter, ValidationError

    from chalicelib.config.models import Channel

    try:
        return TypeAdapter(Channel).validate_python(channel).secret_refs()
    except ValidationError:
        return {}


def _resolves(ref: str, secrets: dict[str, str]) -> bool:
    if ref in secrets:
        return True
    scheme, _, name = ref.partition(":")
    return scheme == "env" and bool(os.environ.get(name))


def save_table(path: Path, table: str) -> None:
    """Dev-only snapshot of the whole table (a Scan is fine here; it never runs in Lambda)."""
    client = boto3.client("dynamodb")
    items = [
        item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]
    ]
    path.write_text(json.dumps(items), encoding="utf-8")


def restore_table(path: Path, table: str) -> None:
    if not path.is_file():
        return
    client = boto3.client("dynamodb")
    items = json.loads(path.read_text(encoding="utf-8"))
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
