"""Banditore's Chalice app: routes, schedules and queue consumers, each a thin wrapper.

Nothing runs at import (CDK synth imports this file, and every cold start pays for each import):
handlers import their module on first call, so a publisher never loads the feed parser.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, CloudWatchEvent, ConvertToMiddleware, Rate, Request, Response, SQSEvent

from chalicelib import settings
from chalicelib.inbox.auth import staff_authorizer
from chalicelib.inbox.cors import staff_cors
from chalicelib.observability import logger, metrics

# Powertools owns logging: Chalice would otherwise take over the logger named like the app (and the
# Powertools service), "banditore", making it errors-only without propagation.
app = Chalice(app_name="banditore", configure_logs=False)
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
# What a WebSub hub pushes: the alert feed's own media type. Binary to API Gateway, so the body reaches
# the handler byte for byte: its HMAC signature is over the raw bytes, whatever their encoding.
FEED_MEDIA_TYPES = ["application/atom+xml", "application/xml", "text/xml"]
app.api.binary_types.extend(FEED_MEDIA_TYPES)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="poll_sources")
def poll_sources(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.clock import seconds_left
    from chalicelib.sources.polling import poll_all_sources

    return poll_all_sources(seconds_left=seconds_left(event.context))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="poll_alerts")
def poll_alerts(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.alerts.polling import poll_alert_sources, poll_alerts_until
    from chalicelib.clock import seconds_left

    if event.to_dict().get("detail", {}).get("single_pass"):  # the local runner's own cadence
        return poll_alert_sources()
    return poll_alerts_until(lambda: seconds_left(event.context))


@app.schedule(Rate(1, unit=Rate.HOURS), name="renew_websub")
def renew_websub(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.alerts.websub import renew_subscriptions

    return renew_subscriptions()


@app.schedule(Rate(2, unit=Rate.MINUTES), name="poll_mentions")
def poll_mentions(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.clock import seconds_left
    from chalicelib.inbox.ingest.mentions import poll_all_mentions

    return poll_all_mentions(seconds_left=seconds_left(event.context))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="housekeeping")
def housekeeping(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.publishing.housekeeping import run_housekeeping

    return run_housekeeping()


@app.schedule(Rate(15, unit=Rate.MINUTES), name="check_channels")
def check_channels(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.channel_checks import check_channels as run_checks
    from chalicelib.clock import utcnow
    from chalicelib.config.loader import current_config

    return run_checks(current_config(), utcnow())


@app.schedule(Rate(5, unit=Rate.MINUTES), name="check_inbox_sla")
def check_inbox_sla(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib.clock import utcnow
    from chalicelib.config.loader import current_config
    from chalicelib.inbox.sla import check_sla

    return check_sla(current_config(), utcnow())


@app.on_sqs_message(queue_arn=settings.queue_arn("normal"), batch_size=10, name="publish")
def publish(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.publishing.publisher import handle_batch

    return handle_batch(event)


# One delivery per invocation on the urgent lane: an alert's posts go out in parallel, not in turn.
@app.on_sqs_message(queue_arn=settings.queue_arn("urgent"), batch_size=1, name="publish_urgent")
def publish_urgent(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.publishing.publisher import handle_batch

    return handle_batch(event)


@app.route("/health", methods=["GET"])
def health() -> dict[str, Any]:
    from chalicelib.status import service_health

    return service_health()


@app.route("/websub/{subscription_id}", methods=["GET"])
def websub_verify(subscription_id: str) -> Response:
    from chalicelib.alerts.websub import answer_verification

    return answer_verification(subscription_id, _current_request().query_params or {})


@app.route("/websub/{subscription_id}", methods=["POST"], content_types=FEED_MEDIA_TYPES)
def websub_content(subscription_id: str) -> Response:
    from chalicelib.alerts.websub import receive_content

    return receive_content(subscription_id, _current_request())


# Citizens' messages: each webhook checks the call and stores the raw event on the inbox lane before
# it answers; process_inbound does the rest (chalicelib/inbox/ingest).
@app.route("/webhooks/telegram/{tenant}/{channel}", methods=["POST"])
def telegram_webhook(tenant: str, channel: str) -> Response:
    from chalicelib.inbox.ingest.telegram import receive_update

    return receive_update(tenant, channel, _current_request())


@app.route("/webhooks/meta", methods=["GET"])
def meta_webhook_verify() -> Response:
    from chalicelib.inbox.ingest.meta import answer_verification

    return answer_verification(_current_request().query_params or {})


@app.route("/webhooks/meta", methods=["POST"])
def meta_webhook() -> Response:
    from chalicelib.inbox.ingest.meta import receive_event

    return receive_event(_current_request())


@app.on_sqs_message(queue_arn=settings.queue_arn("inbox"), batch_size=10, name="process_inbound")
def process_inbound(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.inbox.ingest.process import handle_batch

    return handle_batch(event)


# The staff API (chalicelib/inbox/api.py; the contract is openapi/inbox.yaml). In AWS API Gateway checks
# the staff's Cognito token before any of these runs; locally there is no authorizer and the handler
# checks dev tokens itself (chalicelib/inbox/auth.py says why that is safe).
STAFF_AUTHORIZER = staff_authorizer()
# The staff web app's origin, when the deployment names one (chalicelib/inbox/cors.py); every /inbox
# route must carry the same configuration, as Chalice requires of the methods of one path.
STAFF_CORS = staff_cors()
# Any media type reaches the handler, which answers a non-JSON body with 415 in the API's own error shape.
ANY_BODY = ["*/*"]


@app.route("/inbox/{tenant}/conversations", methods=["GET"], authorizer=STAFF_AUTHORIZER, cors=STAFF_CORS)
def inbox_conversations(tenant: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.list_conversations)


@app.route(
    "/inbox/{tenant}/conversations/{conversation_id}",
    methods=["GET"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
)
def inbox_conversation(tenant: str, conversation_id: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.get_conversation, conversation_id)


@app.route(
    "/inbox/{tenant}/conversations/{conversation_id}",
    methods=["PATCH"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
    content_types=ANY_BODY,
)
def inbox_change_conversation(tenant: str, conversation_id: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.change_conversation, conversation_id)


@app.route(
    "/inbox/{tenant}/conversations/{conversation_id}/notes",
    methods=["POST"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
    content_types=ANY_BODY,
)
def inbox_note(tenant: str, conversation_id: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.add_note, conversation_id)


@app.route(
    "/inbox/{tenant}/conversations/{conversation_id}/reply",
    methods=["POST"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
    content_types=ANY_BODY,
)
def inbox_reply(tenant: str, conversation_id: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.reply, conversation_id)


@app.route("/inbox/{tenant}/figures", methods=["GET"], authorizer=STAFF_AUTHORIZER, cors=STAFF_CORS)
def inbox_figures(tenant: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.response_figures)


@app.route(
    "/inbox/{tenant}/consultations/{announcement_id}/observations",
    methods=["GET"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
)
def inbox_observations(tenant: str, announcement_id: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.observations, announcement_id)


@app.route(
    "/inbox/{tenant}/citizens/{citizen_key}/export",
    methods=["GET"],
    authorizer=STAFF_AUTHORIZER,
    cors=STAFF_CORS,
)
def inbox_export_citizen(tenant: str, citizen_key: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.export_citizen, citizen_key)


@app.route(
    "/inbox/{tenant}/citizens/{citizen_key}", methods=["DELETE"], authorizer=STAFF_AUTHORIZER, cors=STAFF_CORS
)
def inbox_erase_citizen(tenant: str, citizen_key: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.erase_citizen, citizen_key)


@app.route("/inbox/{tenant}/audit", methods=["GET"], authorizer=STAFF_AUTHORIZER, cors=STAFF_CORS)
def inbox_audit(tenant: str) -> Response:
    from chalicelib.inbox import api

    return api.serve(_current_request(), tenant, api.audit_trail)


def _current_request() -> Request:
    """The request a route is answering (Chalice sets it before it calls the view)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request: only a route may ask for it")
    return request
