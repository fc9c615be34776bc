"""Key design of the single table (pk/sk, sparse GSI gsi1, TTL attribute `expires_at`).

Access patterns (none scans):
  source state           get      pk=T#{tenant}            sk=SOURCE#{source}
  seen item keys         batchget pk=T#{tenant}#SEEN       sk={dedupe key}        (conditional put = dedupe)
  announcement           get      pk=T#{tenant}            sk=ANN#{announcement}
  deliveries of an ann.  query    pk=T#{tenant}            sk begins_with DLV#{announcement}#
  one delivery           get/upd  pk=T#{tenant}            sk=DLV#{announcement}#{channel}
  deliveries by status   query    gsi1pk=T#{tenant}#DLV#{status}  gsi1sk={iso time}  (sparse: posted
                                   deliveries leave the index, so it only holds work and failures)
  alert thread of an id  batchget pk=T#{tenant}#ALERT      sk={hash of sender and identifier}
                                   (every identifier of a thread, original and updates, has a row)
  active alert threads   query    pk=T#{tenant}#ACTIVE     sk={anchor announcement}  (crisis mode)
  channel health         get      pk=T#{tenant}            sk=HEALTH#{channel}
  health of a tenant     query    pk=T#{tenant}            sk begins_with HEALTH#
  channel post budget    upd      pk=T#{tenant}#BUDGET     sk={channel}#{window start}  (TTL'd counter)
  WebSub subscription    get/upd  pk=WEBSUB                sk=SUB#{subscription id}  (each push)
  all subscriptions      query    pk=WEBSUB                sk begins_with SUB#   (the renewal schedule)
                                   (not keyed by tenant: one subscription per alert feed serves every
                                   tenant listing it, as one poll does; a deployment has a handful)
"""

from __future__ import annotations


def tenant_pk(tenant: str) -> str:
    return f"T#{tenant}"


def seen_pk(tenant: str) -> str:
    return f"T#{tenant}#SEEN"


def source_sk(source: str) -> str:
    return f"SOURCE#{source}"


def announcement_sk(announcement_id: str) -> str:
    return f"ANN#{announcement_id}"


def delivery_sk(announcement_id: str, channel: str) -> str:
    return f"DLV#{announcement_id}#{channel}"


def delivery_status_pk(tenant: str, status: str) -> str:
    return f"T#{tenant}#DLV#{status}"


def alert_pk(tenant: str) -> str:
    return f"T#{tenant}#ALERT"


def active_alert_pk(tenant: str) -> str:
    return f"T#{tenant}#ACTIVE"


HEALTH_PREFIX = "HEALTH#"


def health_sk(channel: str) -> str:
    return f"{HEALTH_PREFIX}{channel}"


def budget_pk(tenant: str) -> str:
    return f"T#{tenant}#BUDGET"


WEBSUB_PK = "WEBSUB"
SUBSCRIPTION_PREFIX = "SUB#"


def subscription_sk(subscription_id: str) -> str:
    return f"{SUBSCRIPTION_PREFIX}{subscription_id}"
