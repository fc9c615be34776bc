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
  drill alert thread     batchget pk=T#{tenant}#ALERTDRILL  sk=(as above)  (Test/Exercise alerts shown
                                   in the local sandbox: apart, so a drill never touches a real thread)
  active alert threads   query    pk=T#{tenant}#ACTIVE     sk={anchor announcement}  (crisis mode)
  channel health         get      pk=T#{tenant}            sk=HEALTH#{channel}
  health of a tenant     query    pk=T#{tenant}            sk begins_with HEALTH#
  channel post budget    upd      pk=T#{tenant}#BUDGET     sk={channel}#{window start}  (TTL'd counter)
  WebSub subscription    get/upd  pk=WEBSUB                sk=SUB#{subscription id}  (each push)
  all subscriptions      query    pk=WEBSUB                sk begins_with SUB#   (the renewal schedule)
                                   (not keyed by tenant: one subscription per alert feed serves every
                                   tenant listing it, as one poll does; a deployment has a handful)
  alert feed state       get/put  pk=T#~alert-feeds        sk=SOURCE#{feed key}  (a SourceState whose
                                   tenant is ALERT_FEEDS: one row per distinct alert feed, read once a
                                   pass however many tenants list the feed; `~` is never in a tenant id)
  parsed alerts snapshot get/put  pk=FEED#{feed key}       sk=SNAP#{content hash}  (gzip'd JSON, TTL)
  pushed WebSub body     get/put  pk=FEED#{feed key}       sk=PUSH#{body hash}  (gzip'd, TTL)
Citizens' inbox (chalicelib/inbox; personal rows carry expires_at = last activity + retention):
  conversation           get/put  pk=T#{tenant}            sk=CONV#{conversation}  (version attribute)
  conversations of a post query   gsi1pk=T#{tenant}#POSTCONV#{announcement}  gsi1sk={opened iso}#{conv}
                                   (consultations: every conversation under one announcement)
  messages of a conv.    query    pk=T#{tenant}#CONV#{conversation}  sk begins_with MSG# ({iso}#{id})
  message by id          get      pk=T#{tenant}#CONV#{conversation}  sk=ID#{message}  (conditional
                                   put = each message recorded once; holds the MSG# key)
  staff reply delivery   get/put  pk=T#{tenant}#CONV#{conversation}  sk=REPLY#{message}  (its state:
                                   queued, sent, failed; erased with the conversation's messages)
  inbox list page        query    pk=T#{tenant}#INBOX#{list}  sk={1 urgent|0}#{last activity iso}#{conv}
                                   lists: status={s}, status={s}#channel={c}, status={s}#assignee={u},
                                   status={s}#tag={t}; newest first, urgent before all (one Query a page)
  SLA waiting/overdue    query    pk=T#{tenant}#INBOX#sla-waiting|sla-overdue  sk={opened iso}#{conv}
                                   (open, no first response yet; oldest first)
  inbound dedupe         put-if-absent pk=T#{tenant}#INBOUND  sk={platform}#{channel}#{platform msg id}
  citizen's conversations query   pk=T#{tenant}#CITIZEN#{citizen key}  sk=CONV#{conversation}  (GDPR)
  our post's announcement get     pk=T#{tenant}#POST  sk={channel}#{remote id}  (written on posting)
  response-time figures  query    pk=T#{tenant}#FIG#{yyyy-mm UTC}  sk={opened iso}#{random id}
                                   (anonymous: no conversation id, survives erasure and retention)
  audit trail            query    pk=T#{tenant}#AUDIT#{yyyy-mm UTC}  sk={iso}#{uuid}
  mention poll cursor    get/put  pk=T#{tenant}            sk=CURSOR#{channel}
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


def drill_alert_pk(tenant: str) -> str:
    return f"T#{tenant}#ALERTDRILL"


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


ALERT_FEEDS = "~alert-feeds"  # the pseudo-tenant of alert feed state rows


def feed_pk(feed_key: str) -> str:
    return f"FEED#{feed_key}"


def snapshot_sk(content_hash: str) -> str:
    return f"SNAP#{content_hash}"


def pushed_body_sk(body_hash: str) -> str:
    return f"PUSH#{body_hash}"


# Citizens' inbox

CONVERSATION_PREFIX = "CONV#"
MESSAGE_PREFIX = "MSG#"


def conversation_sk(conversation_id: str) -> str:
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def post_conversations_pk(tenant: str, announcement_id: str) -> str:
    return f"T#{tenant}#POSTCONV#{announcement_id}"


def messages_pk(tenant: str, conversation_id: str) -> str:
    return f"T#{tenant}#CONV#{conversation_id}"


def message_sk(at_iso: str, message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{at_iso}#{message_id}"


def message_id_sk(message_id: str) -> str:
    return f"ID#{message_id}"


def reply_sk(message_id: str) -> str:
    return f"REPLY#{message_id}"


def inbox_list_pk(tenant: str, list_name: str) -> str:
    return f"T#{tenant}#INBOX#{list_name}"


def inbox_row_sk(urgent: bool, last_activity_iso: str, conversation_id: str) -> str:
    return f"{1 if urgent else 0}#{last_activity_iso}#{conversation_id}"


def inbound_pk(tenant: str) -> str:
    return f"T#{tenant}#INBOUND"


def inbound_sk(platform: str, channel: str, platform_message_id: str) -> str:
    return f"{platform}#{channel}#{platform_message_id}"


def citizen_pk(tenant: str, citizen_key: str) -> str:
    return f"T#{tenant}#CITIZEN#{citizen_key}"


def post_pk(tenant: str) -> str:
    return f"T#{tenant}#POST"


def post_sk(channel: str, remote_id: str) -> str:
    return f"{channel}#{remote_id}"


def figures_pk(tenant: str, month: str) -> str:
    return f"T#{tenant}#FIG#{month}"


def audit_pk(tenant: str, month: str) -> str:
    return f"T#{tenant}#AUDIT#{month}"


def mention_cursor_sk(channel: str) -> str:
    return f"CURSOR#{channel}"
