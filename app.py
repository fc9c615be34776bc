"""Banditore's Chalice app: routes, schedules and queue consumers, each a thin wrapper.

Nothing runs at import (CDK synth imports this file, and every cold start pays for each import):
handlers import their module on first call, so a publisher never loads the feed parser.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, CloudWatchEvent, ConvertToMiddleware, Rate, Request, Response, SQSEvent

from chalicelib import settings
from chalicelib.observability import logger, metrics

app = Chalice(app_name="banditore")
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


def _current_request() -> Request:
    """The request a route is answering (Chalice sets it before it calls the view)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request: only a route may ask for it")
    return request
