"""What ops watches: alarms on every function, both DLQs and Banditore's own metrics, an SNS topic
they all notify, and a small dashboard.

Banditore's metrics come from Powertools EMF, which always adds the dimension service=banditore:
an alarm on the same metric name with any other dimension set watches a metric that never gets data.
Every count alarm treats missing data as not breaching: no failures reported means no failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from chalice.utils import to_cfn_resource_name
from constructs import Construct

from chalicelib import observability as obs
from infra.constructs.queues import Lane
from infra.resources import ALARM_TOPIC_NAME

PERIOD = Duration.minutes(5)
# Housekeeping reports StaleSources every 5 minutes; three runs per period means a late run never
# leaves a period empty. A source is stale only after hours, so 15 minutes costs nothing.
STALE_PERIOD = Duration.minutes(15)
# The channel check runs every 15 minutes and reports both levels on each run.
HEALTH_PERIOD = Duration.minutes(30)
# Tokens that expire (Facebook, Instagram, Threads) alarm this many days ahead: time to renew.
TOKEN_WARNING_DAYS = 7
# MentionPollFailures alarms when 3 of the last 4 five-minute periods saw a failure (see below).
MENTION_POLL_EVALUATION_PERIODS = 4
MENTION_POLL_DATAPOINTS = 3


def service_metric(name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cloudwatch.Metric:
    """One of Banditore's EMF metrics, with exactly the dimension set Powertools emits."""
    return cloudwatch.Metric(
        namespace=obs.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": obs.SERVICE},
        statistic=statistic,
        period=period,
    )


# Alarm metrics carry no label: a labelled metric becomes a metric math query in the alarm, harder
# to read in the console. The dashboard adds labels.
def lambda_errors(function_name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions_map={"FunctionName": function_name},
        statistic="Sum",
        period=PERIOD,
    )


def dlq_depth(lane: Lane) -> cloudwatch.Metric:
    return lane.dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=PERIOD)


class Monitoring(Construct):
    """Alarms for `functions` (logical ID -> deployed function name) and `lanes`, and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, str],
        lanes: Iterable[Lane],
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        lanes = list(lanes)
        # No topic_name: CloudFormation names it, so two deployments can share an account.
        # Not encrypted: CloudWatch can only publish to a topic whose key policy lets it, which the
        # AWS managed aws/sns key does not.
        self.topic = sns.Topic(
            self, to_cfn_resource_name(ALARM_TOPIC_NAME), display_name="Banditore allarmi", enforce_ssl=True
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = cloudwatch_actions.SnsAction(self.topic)

        for label, function_name in functions.items():
            self._alarm(
                f"{label}Errors",
                lambda_errors(function_name),
                f"La funzione {label} ha restituito errori (vedi i suoi log).",
            )
        for lane in lanes:
            self._alarm(
                f"{to_cfn_resource_name(lane.spec.dlq_name)}Depth",
                dlq_depth(lane),
                f"Messaggi nella DLQ {lane.spec.dlq_name}: {lane.spec.dlq_contents} dopo "
                f"{lane.spec.max_receive_count} tentativi, da esaminare e rimandare (redrive).",
            )
        # PublishFailures counts permanent failures only (retries are PublishRetries): each one is
        # a post that did not go out, and a comune posts a few dozen times a day, so one is enough.
        self._alarm(
            "PublishFailures",
            service_metric(obs.PUBLISH_FAILURES),
            "Pubblicazioni fallite in modo definitivo (token scaduto, contenuto rifiutato...).",
        )
        self._alarm(
            "StaleSources",
            service_metric(obs.FEED_STALE, statistic="Maximum", period=STALE_PERIOD),
            "Una o più fonti non vengono lette con successo da ore.",
        )
        self._alarm(
            "UnhealthyChannels",
            service_metric(obs.UNHEALTHY_CHANNELS, statistic="Maximum", period=HEALTH_PERIOD),
            "Uno o più canali non accettano le credenziali: le pubblicazioni sono trattenute finché "
            "qualcuno rinnova il token ('banditore channels' dice quali).",
        )
        self._alarm(
            "TokenExpiring",
            service_metric(obs.TOKEN_DAYS_LEFT, statistic="Minimum", period=HEALTH_PERIOD),
            f"Il token di un canale scade entro {TOKEN_WARNING_DAYS} giorni: rinnovarlo ora "
            "('banditore channels' dice quale).",
            threshold=TOKEN_WARNING_DAYS,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        )
        # Reported by the channel check (every 15 minutes) after it registered what it could: a
        # webhook still broken means citizens' messages on that channel are not reaching the inbox.
        self._alarm(
            "WebhooksBroken",
            service_metric(obs.WEBHOOKS_BROKEN, statistic="Maximum", period=HEALTH_PERIOD),
            "Il webhook di uno o più canali con la casella dei cittadini non funziona: i loro messaggi "
            "non arrivano ('banditore webhooks' dice quali e perché).",
        )
        # A citizen reporting a danger (danger words or a location) must reach a person in minutes,
        # whatever the office hours: one report is enough.
        self._alarm(
            "DangerReports",
            service_metric(obs.DANGER_REPORTS),
            "Un cittadino ha segnalato un pericolo (parole di pericolo o una posizione): la "
            "conversazione è in cima alla casella, urgente. Leggerla subito.",
        )
        # The inbox lane's records are citizens' messages: one failing (and retried) is worth a look
        # long before its eighth attempt lands it in the DLQ.
        self._alarm(
            "InboundFailures",
            service_metric(obs.INBOUND_FAILURES),
            "L'elaborazione di messaggi dei cittadini non riesce (vedi i log di process_inbound): "
            "vengono ritentati, ma nessuno li vede finché non riesce.",
        )
        # The SLA check (every 5 minutes) counts each conversation once, when it goes past the
        # tenant's first-response target in office time: one is a citizen waiting too long.
        self._alarm(
            "SlaBreaches",
            service_metric(obs.SLA_BREACHES),
            "Una o più conversazioni hanno superato il tempo di prima risposta dell'ente (in orario "
            "d'ufficio) senza una risposta dello staff.",
        )
        # Counted once per reply that will never reach the citizen (a permanent platform refusal,
        # Messenger's closed 24-hour window): staff believe they answered, so one is enough.
        self._alarm(
            "ReplyFailures",
            service_metric(obs.REPLY_FAILURES),
            "Una o più risposte ai cittadini non sono state consegnate e non verranno ritentate "
            "(il motivo è nei log di publish_urgent): chi ha risposto crede che il cittadino l'abbia letta.",
        )
        # Counted when an alert update skipped for a newer post that then failed could not be queued
        # again: the channel shows an older state of the alert than the comune published.
        self._alarm(
            "ThreadUpdatesLost",
            service_metric(obs.THREAD_UPDATES_LOST),
            "Un aggiornamento di allerta non è stato ripubblicato su un canale dopo il fallimento di "
            "quello più recente (dettagli nei log di publish_urgent): il canale mostra uno stato vecchio.",
        )
        # Every channel's poll runs every 2 minutes and counts a failure (any platform, summed
        # here); a platform's blip fails a run or two and heals by itself, a revoked token fails
        # every run until someone renews it. Three bad 5-minute periods out of four pages for the
        # second, never for the first: mentions wait at their cursor meanwhile, nothing is lost.
        self._alarm(
            "MentionPollFailures",
            service_metric(obs.MENTION_POLL_FAILURES),
            "La lettura delle menzioni di uno o più canali (Mastodon, Bluesky, X) fallisce da "
            "almeno un quarto d'ora (vedi i log di poll_mentions: token revocato, piattaforma "
            "irraggiungibile): i messaggi dei cittadini restano in attesa e nessuno li vede.",
            evaluation_periods=MENTION_POLL_EVALUATION_PERIODS,
            datapoints_to_alarm=MENTION_POLL_DATAPOINTS,
        )
        self._dashboard(functions, lanes)

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        description: str,
        *,
        threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        # OK actions too: whoever was paged learns when it is over.
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)

    def _dashboard(self, functions: Mapping[str, str], lanes: list[Lane]) -> None:
        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            _graph(
                "Pubblicazioni",
                service_metric(obs.POSTS_PUBLISHED),
                service_metric(obs.PUBLISH_FAILURES),
                service_metric(obs.PUBLISH_RETRIES),
            ),
            _graph(
                "Fonti",
                service_metric(obs.FEED_ERRORS),
                service_metric(obs.FEED_STALE, statistic="Maximum"),
            ),
        )
        dashboard.add_widgets(
            _graph(
                "Canali",
                service_metric(obs.UNHEALTHY_CHANNELS, statistic="Maximum"),
                service_metric(obs.POSTS_SKIPPED),
                service_metric(obs.BUDGET_WAITS),
            ),
            _graph("Giorni alla scadenza del primo token", service_metric(obs.TOKEN_DAYS_LEFT, "Minimum")),
        )
        dashboard.add_widgets(
            _graph(
                "Messaggi nelle DLQ", *(dlq_depth(lane).with_(label=lane.spec.dlq_name) for lane in lanes)
            ),
            _graph(
                "Errori delle funzioni",
                *(lambda_errors(name).with_(label=label) for label, name in functions.items()),
            ),
        )
        dashboard.add_widgets(
            _graph(
                "Casella dei cittadini: tempi di prima risposta",
                service_metric(obs.SLA_BREACHES).with_(label="Nuove conversazioni oltre l'obiettivo"),
                service_metric(obs.CONVERSATIONS_OVER_SLA, statistic="Maximum").with_(
                    label="Conversazioni in attesa oltre l'obiettivo"
                ),
            ),
        )
        dashboard.add_widgets(
            _graph(
                "Casella dei cittadini: messaggi in arrivo",
                service_metric(obs.INBOUND_MESSAGES).with_(label="Messaggi registrati"),
                service_metric(obs.DANGER_REPORTS).with_(label="Segnalazioni di pericolo"),
                service_metric(obs.AUTOMATIC_ANSWERS).with_(label="Risposte automatiche"),
                service_metric(obs.WEBHOOKS_REFUSED).with_(label="Chiamate dei webhook rifiutate"),
                service_metric(obs.INBOUND_FAILURES).with_(label="Elaborazioni fallite (ritentate)"),
                service_metric(obs.MENTION_POLL_FAILURES).with_(label="Letture delle menzioni fallite"),
                service_metric(obs.MENTION_BACKLOGS).with_(label="Menzioni arretrate"),
            ),
        )


def _graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(metrics), width=12)
