"""The one Logger and Metrics every handler uses, and the names of the metrics we emit.

Metric and dimension names are part of the contract with infra/ (alarms must match them exactly),
so they are constants here and imported there.
"""

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "banditore"
NAMESPACE = "Banditore"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Feed sources
ITEMS_SEEN = "ItemsSeen"
ITEMS_NEW = "ItemsNew"
ITEMS_SKIPPED = "ItemsSkipped"
FEED_ERRORS = "FeedErrors"
FEED_LAG = "FeedLagSeconds"
FEED_STALE = "StaleSources"
# Publishing
POSTS_PUBLISHED = "PostsPublished"
PUBLISH_FAILURES = "PublishFailures"
PUBLISH_RETRIES = "PublishRetries"
PUBLISH_LATENCY = "PublishLatencySeconds"
UNCERTAIN_RETRIES = "UncertainRetries"
DUPLICATE_POSTS = "DuplicatePosts"
# Thread pieces a platform refused as already on the account (X): left out, the thread goes on.
THREAD_PIECES_LEFT_OUT = "ThreadPiecesLeftOut"
DELIVERIES_REQUEUED = "DeliveriesRequeued"
POSTS_SKIPPED = "PostsSkipped"
# Updates of an alert thread skipped as superseded by a post that then did not go out, which could not
# be put back on their lane (the thread's first post may show neither), by platform.
THREAD_UPDATES_LOST = "ThreadUpdatesLost"
BUDGET_WAITS = "BudgetWaits"
# Channel health
CHANNELS_TURNED_UNHEALTHY = "ChannelsTurnedUnhealthy"
UNHEALTHY_CHANNELS = "UnhealthyChannels"
TOKEN_DAYS_LEFT = "TokenDaysLeftMin"  # noqa: S105 (a metric name)
# Alerts
ALERTS_POSTED = "AlertsAnnounced"
ANNOUNCE_JOBS = "AlertAnnounceJobs"  # jobs queued to announce a large feed's alerts slice by slice
ANNOUNCE_JOBS_WITHOUT_SNAPSHOT = "AlertAnnounceJobsWithoutSnapshot"  # no-ops: the feed is re-read
ALERT_SNAPSHOTS_TOO_LARGE = "AlertSnapshotsTooLarge"  # parsed alerts no item would hold (small feeds: inline)
# Citizens' inbox
SLA_BREACHES = "SlaBreaches"  # conversations that went past the first-response target (once each)
CONVERSATIONS_OVER_SLA = "ConversationsOverSla"  # level: open, unanswered, past the target now
INBOUND_MESSAGES = "InboundMessages"  # citizens' messages recorded (once each), by platform and kind
INBOUND_IGNORED = "InboundIgnored"  # items of platform events that are not citizens' messages, by reason
DANGER_REPORTS = "DangerReports"  # messages flagged urgent: danger words or a location (alarmed)
AUTOMATIC_ANSWERS = "AutomaticAnswers"  # FAQ and alert-status answers recorded, by source
WEBHOOKS_REFUSED = "WebhooksRefused"  # inbox webhook calls refused (bad secret, signature, size...)
INBOUND_FAILURES = "InboundFailures"  # inbox lane records that failed and go back to the queue (alarmed)
MENTION_POLL_FAILURES = "MentionPollFailures"  # channels whose mention poll failed, by platform and error
MENTION_BACKLOGS = "MentionBacklogs"  # polls that left older mentions for the next runs, by platform
REPLIES_SENT = "RepliesSent"  # staff replies and automatic answers a platform confirmed, by platform
REPLY_FAILURES = "ReplyFailures"  # replies that will never reach the citizen, by platform and reason
WEBHOOKS_BROKEN = "WebhooksBroken"  # level: inbox channels whose messages may not be arriving (alarmed)
WEBHOOKS_REGISTERED = "WebhooksRegistered"  # registrations the channel check made or put right, by platform
WEBHOOK_ERRORS = "WebhookErrors"  # registrations that could not be checked or made, by platform and reason


def count(name: str, value: float = 1, **breakdown: str) -> None:
    """Emit a count with only the `service` dimension (what alarms watch) and, when a breakdown
    is given (platform, reason, tenant...), the same count again under those dimensions for the
    dashboard. CloudWatch treats each dimension set as its own metric, so nothing is double counted."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if breakdown:
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE, **breakdown},
        ):
            pass


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


def gauge(name: str, value: float) -> None:
    """A level rather than an event (channels unhealthy now, days to the nearest token expiry):
    alarms read its Maximum or Minimum over the period."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# Invocations with nothing to count (a poll where no source was due, a health check) are normal
# here; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")
