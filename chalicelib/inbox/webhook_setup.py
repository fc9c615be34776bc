"""Registering each inbox channel's webhook with its platform, and noticing when a registration is lost.

A citizen's message reaches the inbox only while the platform knows where to send it. Nothing on our
side fails when that registration goes (a developer calls setWebhook with the production bot token,
someone removes the app from the Page): messages just stop arriving. So the channel check (every 15
minutes, chalicelib/channel_checks.py) and `banditore webhooks` look at each channel with `inbox: true`:

- Telegram: getWebhookInfo. The registration is right when its URL is
  `{public base}/webhooks/telegram/{tenant}/{channel}` and its allowed_updates are ours. Otherwise,
  and also after a recent delivery error (Telegram cannot say which secret it sends, and a rotated
  `webhook_secret` shows up only as our 401s in last_error_message), setWebhook puts it right: the
  channel's `webhook_secret` as secret_token (resolved at call time, never logged), drop_pending_updates
  false so nothing queued is lost.
- Facebook: the Page must have our app subscribed with the fields feed and messages
  (GET, then if needed POST /{page}/subscribed_apps with the Page token; the fields an app already has
  are kept). Which app is ours is known from the app token ("app-id|app-secret") when one is
  configured; without it, any app with both fields counts. The app's own subscription (callback URL
  `{public base}/webhooks/meta` and verify token, object "page") is an app setting needing the app
  token: ensured the same way when `app_token` is configured, else a one-time manual step in Meta's
  dashboard.

The public base is the API's public URL the deployment gives the WebSub renewal too
(BANDITORE_WEBSUB_CALLBACK_URL, chalicelib/alerts/websub.py); without it there is nothing to register
against and every channel says so. One channel's failure never stops the others': each is classified
(a refused token is reported with reason "auth", for the channel health machinery) and its message
carries neither a token nor a secret.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from chalicelib import settings
from chalicelib.alerts.websub import CALLBACK_URL_ENV
from chalicelib.channels.base import AuthError, PublishError
from chalicelib.channels.graph import GraphClient
from chalicelib.channels.telegram import TOKEN_IN_PATH, error_for
from chalicelib.channels.transport import (
    detail,
    json_object,
    malformed,
    read_token,
    redact_urllib3_logs,
    send,
)
from chalicelib.config.models import Config, FacebookChannel, TelegramChannel
from chalicelib.http import TIMEOUT, new_session
from chalicelib.inbox.ingest.normalised import objects
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PUBLIC_URL_ENV = CALLBACK_URL_ENV
# What chalicelib/inbox/ingest/telegram.py reads: it takes `message` only (edits and channel posts are
# ignored there), so asking for more would only make Telegram call us for nothing.
TELEGRAM_UPDATES = ("message",)
PAGE_FIELDS = ("feed", "messages")  # ingest/meta.py: feed comments and Messenger messages
# A delivery error this recent means citizens' messages are not arriving now (two check periods).
RECENT_ERROR = timedelta(minutes=30)
PARALLEL = 8
TELEGRAM = "Telegram"
FACEBOOK = "Facebook"

# ok: registered as it should be; registered: it was not (or was failing) and this run registered it;
# unregistered: it is not, and this run was told not to fix it; error: the platform could not be asked
# or refused (`reason` says why: "auth" for a refused token); off: no public URL to register.
Outcome = Literal["ok", "registered", "unregistered", "error", "off"]


@dataclass(frozen=True)
class WebhookStatus:
    tenant: str
    channel: str
    platform: str
    outcome: Outcome
    registration: str = ""  # Telegram: the URL it calls; Facebook: the Page's fields for our app
    pending: int | None = None  # updates Telegram holds for us
    last_error_at: datetime | None = None
    last_error: str = ""  # the platform's words about its last failed delivery
    reason: str = "ok"
    detail: str = ""  # our words (English), never a secret

    def delivery_failing(self, now: datetime) -> bool:
        return self.last_error_at is not None and now - self.last_error_at <= RECENT_ERROR

    def broken(self, now: datetime) -> bool:
        """Citizens' messages on this channel may not be arriving."""
        return self.outcome in {"unregistered", "error"} or self.delivery_failing(now)


def public_base() -> str:
    return os.environ.get(PUBLIC_URL_ENV, "").rstrip("/")


def telegram_url(base: str, tenant: str, channel: str) -> str:
    return f"{base}/webhooks/telegram/{tenant}/{channel}"


def meta_url(base: str) -> str:
    return f"{base}/webhooks/meta"


@dataclass(frozen=True)
class InboxChannel:
    tenant: str
    channel: TelegramChannel | FacebookChannel


def inbox_channels(config: Config) -> list[InboxChannel]:
    """Every enabled inbox channel whose platform calls us (the others are polled)."""
    return [
        InboxChannel(tenant.id, channel)
        for tenant in config.tenants
        for channel in tenant.channels
        if isinstance(channel, TelegramChannel | FacebookChannel) and channel.inbox and channel.enabled
    ]


def sync_webhooks(
    config: Config,
    now: datetime,
    *,
    register: bool = True,
    session: requests.Session | None = None,
    only: Collection[str] | None = None,
) -> list[WebhookStatus]:
    """Each inbox channel's registration (of the "tenant/channel" names in `only`, if given), put
    right where it is wrong when `register`."""
    channels = [c for c in inbox_channels(config) if only is None or f"{c.tenant}/{c.channel.id}" in only]
    base = public_base()
    if not base:
        problem = f"{PUBLIC_URL_ENV} is not set: no public URL to register"
        return [_status(item, "off", reason="no_public_url", detail=problem) for item in channels]
    if _is_loopback(base):
        # The local stack: only the channels it points at the platform fakes may learn a loopback
        # URL. A channel with the operator's real token would have its real bot or app re-pointed.
        local = settings.sandbox_channels()
        channels = [item for item in channels if f"{item.tenant}/{item.channel.id}" in local]
    http = session or new_session()
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            return list(pool.map(lambda item: _sync(item, base, now, register, http), channels))
    finally:
        if session is None:
            http.close()


def _is_loopback(base: str) -> bool:
    host = urlsplit(base).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _sync(
    item: InboxChannel, base: str, now: datetime, register: bool, http: requests.Session
) -> WebhookStatus:
    try:
        if isinstance(item.channel, TelegramChannel):
            return _TelegramBot(item, item.channel, http).sync(base, now, register)
        return _FacebookPage(item, item.channel, http).sync(base, register)
    except PublishError as error:
        logger.warning(
            "Webhook registration failed",
            extra={"tenant": item.tenant, "channel": item.channel.id, "reason": error.reason},
        )
        return _status(item, "error", reason=error.reason, detail=str(error))
    except Exception:  # one broken channel must not stop the others'
        logger.exception("Webhook registration crashed", extra={"channel": item.channel.id})
        return _status(
            item, "error", reason="setup_error", detail="the registration itself failed (see logs)"
        )


def _status(item: InboxChannel, outcome: Outcome, **fields: Any) -> WebhookStatus:
    return WebhookStatus(item.tenant, item.channel.id, item.channel.platform, outcome, **fields)


class _TelegramBot:
    def __init__(self, item: InboxChannel, channel: TelegramChannel, session: requests.Session) -> None:
        self.item, self.channel, self.session = item, channel, session
        self.api = str(item.channel.api_base).rstrip("/")
        self.token = read_token(functools.partial(resolve_secret, item.channel.token), platform=TELEGRAM)
        redact_urllib3_logs(TOKEN_IN_PATH)

    def sync(self, base: str, now: datetime, register: bool) -> WebhookStatus:
        if self.channel.webhook_secret is None:
            return _status(
                self.item, "error", reason="no_webhook_secret", detail="the channel has no webhook_secret"
            )
        expected = telegram_url(base, self.item.tenant, self.channel.id)
        info = self._call("getWebhookInfo", {})
        found = _webhook_info(info)
        wrong = found.url != expected or (
            found.allowed_updates is not None and set(found.allowed_updates) != set(TELEGRAM_UPDATES)
        )
        failing = found.last_error_at is not None and now - found.last_error_at <= RECENT_ERROR
        outcome: Outcome = "ok"
        if (wrong or failing) and register:
            self._set_webhook(expected)
            outcome = "registered"
            logger.warning(
                "Telegram webhook registered",
                extra={
                    "tenant": self.item.tenant,
                    "channel": self.channel.id,
                    "was": (_host(found.url) if found.url else "none") if wrong else "failing",
                },
            )
        elif wrong:
            outcome = "unregistered"
        return _status(
            self.item,
            outcome,
            registration=expected if outcome == "registered" else found.url,
            pending=found.pending,
            last_error_at=found.last_error_at,
            last_error=found.last_error,
            reason="delivery_error" if failing else "lost" if wrong else "ok",
            detail=_telegram_detail(found, expected, wrong),
        )

    def _set_webhook(self, url: str) -> None:
        secret = read_token(
            functools.partial(resolve_secret, self.channel.webhook_secret or ""), platform=TELEGRAM
        )
        payload = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": list(TELEGRAM_UPDATES),
            "drop_pending_updates": False,
        }
        self._call("setWebhook", payload, secrets=(secret,))

    def _call(self, method: str, payload: dict[str, Any], secrets: tuple[str, ...] = ()) -> dict[str, Any]:
        response = send(
            self.session,
            "POST",
            f"{self.api}/bot{self.token}/{method}",
            platform=TELEGRAM,
            endpoint=method,
            timeout=TIMEOUT,
            json=payload,
        )
        body = json_object(response)
        if not response.ok:
            raise error_for(response.status_code, body or {}, self.token, *secrets)
        if body is None or body.get("ok") is not True:
            raise malformed(TELEGRAM, method, "the answer is not a Bot API success")
        return body


@dataclass(frozen=True)
class _Info:
    url: str
    pending: int | None
    last_error_at: datetime | None
    last_error: str
    allowed_updates: list[str] | None


def _webhook_info(body: dict[str, Any]) -> _Info:
    result = body.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("url"), str):
        raise malformed(TELEGRAM, "getWebhookInfo", "the answer has no WebhookInfo")
    pending, when = result.get("pending_update_count"), result.get("last_error_date")
    allowed = result.get("allowed_updates")
    return _Info(
        url=result["url"],
        pending=pending if isinstance(pending, int) else None,
        last_error_at=datetime.fromtimestamp(when, UTC) if isinstance(when, int) and when > 0 else None,
        last_error=detail(result.get("last_error_message")) if result.get("last_error_message") else "",
        allowed_updates=[str(kind) for kind in allowed] if isinstance(allowed, list) else None,
    )


def _telegram_detail(found: _Info, expected: str, wrong: bool) -> str:
    if not wrong:
        return "registered as expected" + (
            f"; last delivery error: {found.last_error}" if found.last_error else ""
        )
    if not found.url:
        return "no webhook was registered"
    if found.url != expected:
        return f"the webhook pointed elsewhere ({_host(found.url)})"
    return "the webhook asked for other update types"


def _host(url: str) -> str:
    """Where a URL points, without its path: another bot's webhook path may hold its secret."""
    return urlsplit(url).netloc or "?"


class _FacebookPage:
    def __init__(self, item: InboxChannel, channel: FacebookChannel, session: requests.Session) -> None:
        self.item, self.channel = item, channel
        self.session = session
        self.graph = self._client(functools.partial(resolve_secret, item.channel.token))

    def _client(self, token: Callable[[], str]) -> GraphClient:
        return GraphClient(
            platform=FACEBOOK,
            api_base=str(self.channel.api_base),
            api_version=self.channel.api_version,
            token=token,
            session=self.session,
            timeout=TIMEOUT,
        )

    def sync(self, base: str, register: bool) -> WebhookStatus:
        app_token = self.channel.app_token
        app_id = self._app_id(app_token) if app_token else None
        app_outcome = self._app_outcome(app_token, app_id, base, register) if app_token and app_id else None
        page = self.channel.page_id
        body = self.graph.get(
            f"{page}/subscribed_apps", endpoint="subscribed_apps", fields="id,subscribed_fields"
        )
        ours = _our_app(body, app_id)
        fields = set(ours["subscribed_fields"]) if ours else set()
        outcome: Outcome = "ok"
        if not fields >= set(PAGE_FIELDS):
            outcome = "unregistered"
            if register:
                wanted = sorted(fields | set(PAGE_FIELDS))
                self.graph.post(
                    f"{page}/subscribed_apps",
                    endpoint="subscribed_apps",
                    fields={"subscribed_fields": ",".join(wanted)},
                )
                fields, outcome = set(wanted), "registered"
                logger.warning(
                    "Facebook Page subscribed to the app",
                    extra={"tenant": self.item.tenant, "channel": self.channel.id},
                )
        if app_outcome == "unregistered":
            outcome = "unregistered"
        elif app_outcome == "registered" and outcome == "ok":
            outcome = "registered"
        lost = outcome != "ok"
        manual = "" if app_id else "; the app's callback URL is a manual setting (no app_token)"
        return _status(
            self.item,
            outcome,
            registration=", ".join(sorted(fields)),
            reason="lost" if lost else "ok",
            detail=("the Page or app subscription was missing" if lost else "subscribed as expected")
            + manual,
        )

    @staticmethod
    def _app_id(app_token_ref: str) -> str | None:
        """The app's id, from its token ("app-id|app-secret"); None for a token of another form."""
        app_token = read_token(functools.partial(resolve_secret, app_token_ref), platform=FACEBOOK)
        app_id, separator, _ = app_token.partition("|")
        return app_id if separator and app_id.isdigit() else None

    def _app_outcome(self, app_token_ref: str, app_id: str, base: str, register: bool) -> Outcome:
        """The app subscription's outcome. A refused APP token is not the Page's: it must not turn
        the channel unhealthy and hold its posts (alerts included), only show the webhook broken."""
        try:
            return self._app_subscription(app_token_ref, app_id, base, register)
        except AuthError as error:
            raise PublishError(
                f"{FACEBOOK}: the app token was refused: {error}", reason="app_token_refused"
            ) from None

    def _app_subscription(self, app_token_ref: str, app_id: str, base: str, register: bool) -> Outcome:
        """The app's "page" subscription: our callback URL with both fields, active. Fields it has
        beyond ours are kept."""
        app = self._client(functools.partial(resolve_secret, app_token_ref))
        callback = meta_url(base)
        body = app.get(
            f"{app_id}/subscriptions",
            endpoint="app_subscriptions",
            fields="object,callback_url,active,fields",
        )
        pages = [entry for entry in objects(body.get("data")) if entry.get("object") == "page"]
        if any(_serves(entry, callback) for entry in pages):
            return "ok"
        if not register:
            return "unregistered"
        if self.channel.verify_token is None:
            raise PublishError(f"{FACEBOOK}: the channel has no verify_token", reason="no_verify_token")
        verify = read_token(functools.partial(resolve_secret, self.channel.verify_token), platform=FACEBOOK)
        kept = {str(field.get("name")) for entry in pages for field in objects(entry.get("fields"))}
        fields = {
            "object": "page",
            "callback_url": callback,
            "fields": ",".join(sorted(kept | set(PAGE_FIELDS))),
            "verify_token": verify,
        }
        # Meta calls the callback with the verify token before it answers (ingest/meta.py answers).
        app.post(f"{app_id}/subscriptions", endpoint="app_subscriptions", fields=fields)
        return "registered"


def _serves(entry: dict[str, Any], callback: str) -> bool:
    names = {str(field.get("name")) for field in objects(entry.get("fields"))}
    return entry.get("callback_url") == callback and entry.get("active") is True and names >= set(PAGE_FIELDS)


def _our_app(body: dict[str, Any], app_id: str | None) -> dict[str, Any] | None:
    """Our app's entry among the Page's subscribed apps (see the module docstring without an app id)."""
    apps = [
        {"id": str(app.get("id")), "subscribed_fields": [str(f) for f in app.get("subscribed_fields") or []]}
        for app in objects(body.get("data"))
    ]
    if app_id is not None:
        return next((app for app in apps if app["id"] == app_id), None)
    return next((app for app in apps if set(app["subscribed_fields"]) >= set(PAGE_FIELDS)), None)
