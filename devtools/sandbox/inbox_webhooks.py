"""Webhook registrations as the platform fakes keep them: Telegram's per bot (setWebhook, getWebhookInfo,
deleteWebhook) and Meta's per Page and per app (/{page}/subscribed_apps, /{app}/subscriptions), in the
shapes platforms.md and the platforms' references give.

Telegram, per bot token: the URL, secret_token, allowed_updates, pending updates and the last delivery
error. setWebhook refuses a URL that is not https ("bad webhook: An HTTPS URL must be provided for
webhook") or on a port other than 443, 80, 88, 8443, except on loopback, where the local stack's API
lives (the real Telegram would refuse it: it could not reach it anyway); a secret_token outside
1-256 of [A-Za-z0-9_-] is refused too. `deliver` is what Telegram does with an update: POST it to the
registered URL with the secret in X-Telegram-Bot-Api-Secret-Token; a failed delivery is recorded as
getWebhookInfo reports one (last_error_date, last_error_message "Wrong response from the webhook: 401
Unauthorized", pending_update_count). `citizen_page` answers the sandbox's own
/telegram/sandbox/citizen (not a Bot API method). POST: a citizen's private message to a bot, named by
`bot_key` (never by its token, which the form would otherwise show), made and delivered as Telegram
would; JSON in, JSON out (devtools/sandbox/citizens.py), or the form's fields, answered with a redirect
back to the form, which says how the webhook answered. GET: the form "Scrivi come cittadino" (its own
page: the sandbox's home page reloads every few seconds, which would lose what is being typed).

Meta: GET /{page}/subscribed_apps lists the apps subscribed to the Page with their subscribed_fields;
POST subscribes the token's app (every sandbox Page token belongs to app 1000000000, as debug_token
says) with `subscribed_fields`, replacing its list; DELETE unsubscribes it. /{app}/subscriptions takes an
app token ("app-id|secret") only: else error 15, as Graph answers a Page token there.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from devtools.sandbox.page import render_citizen_form
from devtools.sandbox.wire import Reply, Request, html_reply, json_reply

SANDBOX_APP_ID = "1000000000"  # the app every sandbox Page token belongs to (meta.py's debug_token)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
TELEGRAM_PORTS = {80, 88, 443, 8443}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DELIVERY_TIMEOUT = 10.0
CITIZEN_PATH = "/sandbox/citizen"  # under the Telegram fake: /telegram/sandbox/citizen
CITIZEN_TEXT_LIMIT = 4096
DEFAULT_CITIZEN = 1001
# (chat id, text, user_id=, message_id=) -> the message as an update carries it (TelegramFake.citizen_message)
MessageMaker = Callable[..., dict[str, Any]]
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Page webhook fields the fake knows; Graph refuses a name it does not know with error 100.
PAGE_FIELDS = frozenset(
    {"feed", "messages", "mention", "message_echoes", "messaging_postbacks", "message_reactions"}
    | {"message_deliveries", "message_reads", "messaging_optins", "ratings", "name", "picture"}
)


def _telegram_error(status: int, description: str) -> Reply:
    return json_reply(status, {"ok": False, "error_code": status, "description": description})


def _telegram_ok(description: str) -> Reply:
    return json_reply(200, {"ok": True, "result": True, "description": description})


def bot_key(token: str) -> str:
    """How the sandbox names a bot outside the Bot API: its token's digest, not the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass
class BotWebhook:
    url: str = ""
    secret: str | None = None
    allowed_updates: list[str] | None = None
    pending: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None


class TelegramWebhooks:
    """Every bot's webhook (by token)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bots: dict[str, BotWebhook] = {}

    def answer(self, method: str, token: str, payload: dict[str, Any]) -> Reply:
        if method == "getWebhookInfo":
            return self._info(token)
        if method == "deleteWebhook":
            return self._delete(token, drop=payload.get("drop_pending_updates") is True)
        return self._set(token, payload)

    def bot(self, token: str) -> BotWebhook:
        """A copy of the bot's registration, for tests."""
        with self._lock:
            found = self._bots.get(token, BotWebhook())
            return BotWebhook(**vars(found))

    def _set(self, token: str, payload: dict[str, Any]) -> Reply:
        url = str(payload.get("url") or "")
        if not url:
            return self._delete(token, drop=payload.get("drop_pending_updates") is True)
        problem = _url_problem(url)
        if problem is not None:
            return _telegram_error(400, f"Bad Request: bad webhook: {problem}")
        secret = payload.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_TOKEN.fullmatch(secret)):
            return _telegram_error(400, "Bad Request: secret token contains unallowed characters")
        allowed = payload.get("allowed_updates")
        if isinstance(allowed, str):  # form bodies carry it JSON-serialised
            allowed = json.loads(allowed)
        with self._lock:
            bot = self._bots.setdefault(token, BotWebhook())
            same = (bot.url, bot.secret, bot.allowed_updates) == (url, secret, allowed)
            bot.url, bot.secret = url, secret
            if allowed is not None:
                bot.allowed_updates = [str(kind) for kind in allowed]
            if payload.get("drop_pending_updates") is True:
                bot.pending = 0
        return _telegram_ok("Webhook is already set" if same else "Webhook was set")

    def _delete(self, token: str, *, drop: bool) -> Reply:
        with self._lock:
            bot = self._bots.setdefault(token, BotWebhook())
            had = bool(bot.url)
            bot.url, bot.secret = "", None
            if drop:
                bot.pending = 0
        return _telegram_ok("Webhook was deleted" if had else "Webhook is already deleted")

    def _info(self, token: str) -> Reply:
        with self._lock:
            bot = self._bots.get(token, BotWebhook())
            result: dict[str, Any] = {
                "url": bot.url,
                "has_custom_certificate": False,
                "pending_update_count": bot.pending,
            }
            if bot.url:
                result["max_connections"] = 40
            if bot.allowed_updates is not None:
                result["allowed_updates"] = list(bot.allowed_updates)
            if bot.last_error_date is not None:
                result["last_error_date"] = bot.last_error_date
                result["last_error_message"] = bot.last_error_message
        return json_reply(200, {"ok": True, "result": result})

    def deliver(self, token: str, update: dict[str, Any]) -> int | None:
        """POST the update to the bot's webhook as Telegram does; the HTTP status it got, or None
        when no webhook is registered or it does not take this kind of update (nothing is sent)."""
        with self._lock:
            bot = self._bots.get(token)
            if bot is None or not bot.url:
                return None
            kinds = [name for name in update if name != "update_id"]
            if bot.allowed_updates and not set(kinds) & set(bot.allowed_updates):
                return None
            url, secret = bot.url, bot.secret
        headers = {"Content-Type": "application/json", **({SECRET_HEADER: secret} if secret else {})}
        try:
            response = requests.post(url, data=json.dumps(update), headers=headers, timeout=DELIVERY_TIMEOUT)
        except requests.RequestException:
            self._failed(token, "Connection refused")
            return 0
        if not response.ok:
            self._failed(token, f"Wrong response from the webhook: {response.status_code} {response.reason}")
        return response.status_code

    def registered(self) -> list[tuple[str, str]]:
        """(bot_key, webhook URL) of every bot with a webhook, for the sandbox page's form."""
        with self._lock:
            return sorted((bot_key(token), bot.url) for token, bot in self._bots.items() if bot.url)

    def citizen_page(self, request: Request, make_message: MessageMaker) -> Reply:
        if request.method == "POST":
            return self._citizen_writes(request, make_message)
        outcome = request.query_value("esito")
        return html_reply(200, render_citizen_form(self.registered(), outcome))

    def _citizen_writes(self, request: Request, make_message: MessageMaker) -> Reply:
        """A citizen's private message to a bot, delivered to its webhook (module docstring)."""
        form = "application/x-www-form-urlencoded" in (request.header("content-type") or "")
        payload = request.payload() or {}
        text = str(payload.get("text") or "").strip()
        user = payload.get("user_id", DEFAULT_CITIZEN)
        token = self._token_for(str(payload.get("bot") or ""))
        if token is None:
            return json_reply(404, {"ok": False, "description": "no bot with a webhook has that key"})
        if not text or len(text) > CITIZEN_TEXT_LIMIT or not str(user).isdigit() or int(user) <= 0:
            return json_reply(
                400, {"ok": False, "description": f"give text (1-{CITIZEN_TEXT_LIMIT}) and user_id"}
            )
        # Ids unique across runs, as the stack keeps its table (whose dedupe would drop a repeated one).
        unique = time.time_ns() // 1_000
        message = make_message(int(user), text, user_id=int(user), message_id=unique)
        status = self.deliver(token, {"update_id": unique, "message": message})
        if form:
            where = f"/telegram{CITIZEN_PATH}?esito={status if status is not None else 'nessun-webhook'}"
            return Reply(303, b"", content_type="text/plain", headers={"Location": where})
        result = {"update_id": unique, "message_id": message["message_id"], "webhook_status": status}
        return json_reply(200, {"ok": True, "result": result})

    def _token_for(self, key: str) -> str | None:
        with self._lock:
            return next((token for token in self._bots if bot_key(token) == key), None)

    def _failed(self, token: str, message: str) -> None:
        with self._lock:
            bot = self._bots.setdefault(token, BotWebhook())
            bot.pending += 1
            bot.last_error_date, bot.last_error_message = int(time.time()), message


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    loopback = parts.hostname in LOOPBACK and parts.scheme in {"http", "https"}
    if loopback:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return "An HTTPS URL must be provided for webhook"
    if (parts.port or 443) not in TELEGRAM_PORTS:
        return "Webhook can be set up only on ports 80, 88, 443 or 8443"
    return None


@dataclass
class AppSubscription:
    callback_url: str
    fields: list[str]
    active: bool = True


@dataclass
class MetaSubscriptions:
    """Which apps each Page has subscribed (and with which fields), and each app's "page" webhook."""

    pages: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # page -> app -> fields
    apps: dict[str, AppSubscription] = field(default_factory=dict)  # app id -> its page subscription
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page_apps(self, page: str, method: str, params: dict[str, str]) -> Reply:
        """GET, POST or DELETE /{page}/subscribed_apps with a Page token."""
        with self.lock:
            apps = self.pages.setdefault(page, {})
            if method == "GET":
                data = [
                    {
                        "category": "Business",
                        "link": "https://banditore.invalid/",
                        "name": "Banditore",
                        "id": app,
                    }
                    | {"subscribed_fields": list(fields)}
                    for app, fields in apps.items()
                ]
                return json_reply(200, {"data": data})
            if method == "DELETE":
                apps.pop(SANDBOX_APP_ID, None)
                return json_reply(200, {"success": True})
            wanted = [name.strip() for name in params.get("subscribed_fields", "").split(",") if name.strip()]
            if not wanted:
                return _graph_invalid("The parameter subscribed_fields is required")
            unknown = [name for name in wanted if name not in PAGE_FIELDS]
            if unknown:
                return _graph_invalid(
                    f"Param subscribed_fields[{wanted.index(unknown[0])}] is not a valid field"
                )
            apps[SANDBOX_APP_ID] = wanted
        return json_reply(200, {"success": True})

    def app_subscriptions(self, app: str, method: str, params: dict[str, str], token: str) -> Reply:
        """GET or POST /{app}/subscriptions with the app's token."""
        if token.partition("|")[0] != app:
            return _graph_error(400, "(#15) This method must be called with an app access_token.", code=15)
        with self.lock:
            if method == "GET":
                found = self.apps.get(app)
                data = (
                    [
                        {
                            "object": "page",
                            "callback_url": found.callback_url,
                            "active": found.active,
                            "fields": [{"name": name, "version": "v24.0"} for name in found.fields],
                        }
                    ]
                    if found
                    else []
                )
                return json_reply(200, {"data": data})
            if params.get("object") != "page" or not params.get("callback_url"):
                return _graph_invalid("object and callback_url are required")
            if not params.get("verify_token"):
                return _graph_invalid("The parameter verify_token is required")
            fields = [name for name in params.get("fields", "").split(",") if name]
            self.apps[app] = AppSubscription(params["callback_url"], fields)
        return json_reply(200, {"success": True})


def _graph_error(status: int, message: str, *, code: int) -> Reply:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AsandboxTrace"}
    return json_reply(status, {"error": error})


def _graph_invalid(message: str) -> Reply:
    return _graph_error(400, f"(#100) {message}", code=100)
