"""Citizens on the local stack: write to a comune as a citizen would, through the webhook routes the
platforms call, with the secret header (Telegram) or the app-secret signature (Meta) they would send.
Channel settings and secrets come from the running stack's config (a sandboxed inbox channel gets
them made up by devtools/stack.py).

    citizens = Citizens(stack.api_url)
    sent = citizens.telegram_message("comune-a", "telegram", "Le scuole sono aperte domani?")
    citizens.telegram_comment("comune-a", "telegram", "Albero caduto!", post="-1001234:5")
    citizens.facebook_comment("comune-a", "facebook", "Grazie", post="1234_5678")
    citizens.messenger_message("comune-a", "facebook", "Orari dell'anagrafe?")
    citizens.replay(sent)     # the same request again, byte for byte (a platform's redelivery)
    stack.drain()             # process_inbound takes them from the inbox lane

Those calls play the platform themselves. `telegram_via_platform` goes the way a real message goes
instead: the Telegram fake makes the message and delivers it to the webhook the stack registered with
it (devtools/sandbox/inbox_webhooks.py), with the secret it was given; the command line sends private
Telegram messages that way whenever the fake knows the channel's bot.

`post` is the remote id of one of our posts, as the publisher recorded it. While `banditore run` is
up, from another shell (processing happens on the stack's next pump):

    python -m devtools.sandbox.citizens posts comune-a telegram
    python -m devtools.sandbox.citizens telegram comune-a telegram "Le scuole sono aperte?"
    python -m devtools.sandbox.citizens telegram comune-a telegram "Strada allagata" --post=-1001234:5
    python -m devtools.sandbox.citizens facebook comune-a facebook "Grazie!" --post=1234_5678
    python -m devtools.sandbox.citizens messenger comune-a facebook "Quando apre l'anagrafe?"
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import requests

from chalicelib.config.loader import current_config
from chalicelib.config.models import AnyChannel, FacebookChannel, TelegramChannel
from chalicelib.secrets import resolve_secret
from devtools.sandbox.inbox_webhooks import CITIZEN_PATH, bot_key

TIMEOUT = 10.0
C = TypeVar("C", bound=AnyChannel)
FORGED_SECRET = "not-the-secret"  # noqa: S105 (what a forger signs with)


@dataclass(frozen=True)
class Person:
    user_id: int = 1001
    first_name: str = "Maria"
    last_name: str = "Rossi"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Sent:
    """One webhook call as made, and the API's answer."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int
    message_id: int | str  # the platform id of the citizen's message


@dataclass
class Citizens:
    api_url: str
    person: Person = field(default_factory=Person)
    # The sandbox to tell about each message first, as the real platform knows it before its webhook
    # fires (our answers reply to it). None: the caller registers messages with the fakes itself.
    sandbox_url: str | None = None

    def __post_init__(self) -> None:
        # Ids unique across runs (a restarted `banditore run` keeps its table, whose dedupe
        # would take a repeated id for a redelivery).
        self._ids = itertools.count(time.time_ns() // 1_000)
        self._copies: dict[str, int] = {}  # our post's remote id -> its copy in the discussion group

    # ---- Telegram ---------------------------------------------------------------------------
    def telegram_message(
        self,
        tenant: str,
        channel: str,
        text: str,
        *,
        location: tuple[float, float] | None = None,
        forged: bool = False,
    ) -> Sent:
        """A message in the citizen's private chat with the channel's bot."""
        chat = {"id": self.person.user_id, "type": "private", "first_name": self.person.first_name}
        message = self._message(chat, text, location)
        self._tell_sandbox(
            platform="telegram",
            chat_id=chat["id"],
            user_id=self.person.user_id,
            message_id=message["message_id"],
        )
        return self._telegram(tenant, channel, message, forged=forged)

    def telegram_via_platform(self, tenant: str, channel: str, text: str) -> Sent | None:
        """A message in the citizen's private chat with the bot, made and delivered by the Telegram
        fake to the webhook registered for the channel's bot; `status` is how the webhook answered
        the fake. None when the fake has no webhook for that bot (a channel with a real token, or no
        sandbox): write with `telegram_message` then."""
        if self.sandbox_url is None:
            return None
        settings = _channel(tenant, channel, TelegramChannel)
        payload = {
            "bot": bot_key(resolve_secret(settings.token)),
            "text": text,
            "user_id": self.person.user_id,
        }
        url = f"{self.sandbox_url}/telegram{CITIZEN_PATH}"
        response = requests.post(url, json=payload, timeout=TIMEOUT)
        if response.status_code == HTTPStatus.NOT_FOUND:  # the fake knows no webhook for this bot
            return None
        response.raise_for_status()
        result = response.json()["result"]
        headers = {"Content-Type": "application/json"}
        body = json.dumps(payload).encode()
        return Sent(url, body, headers, int(result["webhook_status"] or 0), int(result["message_id"]))

    def telegram_comment(
        self,
        tenant: str,
        channel: str,
        text: str,
        *,
        post: str,
        reply_to: int | None = None,
        location: tuple[float, float] | None = None,
        forged: bool = False,
    ) -> Sent:
        """A comment under our post `post` ("{channel chat id}:{message id}") in the channel's
        discussion group: a reply to the post's copy there, or to the group message `reply_to` in
        its thread. The copy itself arrives first, as Telegram sends it when the post goes out."""
        settings = _channel(tenant, channel, TelegramChannel)
        if settings.discussion_chat is None:
            raise ValueError(f"{tenant}/{channel} has no discussion_chat: comments cannot arrive")
        group = {"id": int(settings.discussion_chat), "type": "supergroup", "title": "Discussione"}
        copy = self._copy(tenant, channel, group, post)
        message = self._message(group, text, location)
        message["message_thread_id"] = copy["message_id"]
        message["reply_to_message"] = copy if reply_to is None else {"message_id": reply_to, "chat": group}
        return self._telegram(tenant, channel, message, forged=forged)

    def _copy(self, tenant: str, channel: str, group: dict[str, Any], post: str) -> dict[str, Any]:
        chat_id, _, message_id = post.partition(":")
        origin_chat = {"id": int(chat_id), "type": "channel", "title": "Canale del Comune"}
        known = self._copies.get(post)
        copy_id = known if known is not None else next(self._ids)
        copy = {
            "message_id": copy_id,
            "date": int(time.time()),
            "chat": group,
            "sender_chat": origin_chat,
            "is_automatic_forward": True,
            "forward_origin": {"type": "channel", "chat": origin_chat, "message_id": int(message_id)},
            "forward_from_chat": origin_chat,
            "forward_from_message_id": int(message_id),
            "text": "(il post del canale)",
        }
        if known is None:
            self._copies[post] = copy_id
            self._telegram(tenant, channel, copy, forged=False)
        return copy

    def _message(
        self, chat: dict[str, Any], text: str, location: tuple[float, float] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {
                "id": self.person.user_id,
                "is_bot": False,
                "first_name": self.person.first_name,
                "last_name": self.person.last_name,
                "language_code": "it",
            },
        }
        if text:
            message["text"] = text
        if location is not None:
            message["location"] = {"latitude": location[0], "longitude": location[1]}
        return message

    def _tell_sandbox(self, **message: Any) -> None:
        if self.sandbox_url is not None:
            requests.post(
                f"{self.sandbox_url}/_sandbox/citizen", json=message, timeout=TIMEOUT
            ).raise_for_status()

    def _telegram(self, tenant: str, channel: str, message: dict[str, Any], *, forged: bool) -> Sent:
        settings = _channel(tenant, channel, TelegramChannel)
        secret = (
            FORGED_SECRET
            if forged or settings.webhook_secret is None
            else resolve_secret(settings.webhook_secret)
        )
        body = json.dumps({"update_id": next(self._ids), "message": message}).encode()
        url = f"{self.api_url}/webhooks/telegram/{tenant}/{channel}"
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
        return _post(url, body, headers, message["message_id"])

    # ---- Meta -------------------------------------------------------------------------------
    def facebook_comment(
        self,
        tenant: str,
        channel: str,
        text: str,
        *,
        post: str,
        parent: str | None = None,
        forged: bool = False,
    ) -> Sent:
        """A comment on the Page's post `post` ("{page id}_{post id}"), or a reply to the comment
        `parent` under it."""
        settings = _channel(tenant, channel, FacebookChannel)
        comment_id = f"{post.rpartition('_')[2]}_{next(self._ids)}"
        self._tell_sandbox(platform="facebook", post_id=parent or post, comment_id=comment_id)
        value = {
            "item": "comment",
            "verb": "add",
            "comment_id": comment_id,
            "post_id": post,
            "parent_id": parent or post,
            "from": {"id": str(self.person.user_id), "name": self.person.name},
            "message": text,
            "created_time": int(time.time()),
        }
        return self._meta(
            settings, {"changes": [{"field": "feed", "value": value}]}, comment_id, forged=forged
        )

    def messenger_message(
        self,
        tenant: str,
        channel: str,
        text: str,
        *,
        location: tuple[float, float] | None = None,
        forged: bool = False,
    ) -> Sent:
        settings = _channel(tenant, channel, FacebookChannel)
        mid = f"m_{next(self._ids)}"
        self._tell_sandbox(platform="facebook", page_id=settings.page_id, person=str(self.person.user_id))
        message: dict[str, Any] = {"mid": mid, "text": text}
        if location is not None:
            coordinates = {"lat": location[0], "long": location[1]}
            message["attachments"] = [{"type": "location", "payload": {"coordinates": coordinates}}]
        event = {
            "sender": {"id": str(self.person.user_id)},
            "recipient": {"id": settings.page_id},
            "timestamp": int(time.time() * 1000),
            "message": message,
        }
        return self._meta(settings, {"messaging": [event]}, mid, forged=forged)

    def _meta(
        self, settings: FacebookChannel, items: dict[str, Any], message_id: str, *, forged: bool
    ) -> Sent:
        entry = {"id": settings.page_id, "time": int(time.time() * 1000), **items}
        body = json.dumps({"object": "page", "entry": [entry]}).encode()
        secret = (
            FORGED_SECRET if forged or settings.app_secret is None else resolve_secret(settings.app_secret)
        )
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}
        return _post(f"{self.api_url}/webhooks/meta", body, headers, message_id)

    def verify_meta_subscription(self, tenant: str, channel: str, challenge: str) -> requests.Response:
        """Meta's subscription check, with the channel's verify token."""
        settings = _channel(tenant, channel, FacebookChannel)
        token = resolve_secret(settings.verify_token) if settings.verify_token else ""
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
        return requests.get(f"{self.api_url}/webhooks/meta", params=query, timeout=TIMEOUT)

    # ---- both -------------------------------------------------------------------------------
    def replay(self, sent: Sent) -> Sent:
        """The same call again: a platform redelivering, or an attacker replaying a genuine one."""
        return _post(sent.url, sent.body, sent.headers, sent.message_id)


def _channel(tenant: str, channel: str, kind: type[C]) -> C:
    found = current_config().tenant(tenant).channel(channel)
    if not isinstance(found, kind):
        raise TypeError(f"{tenant}/{channel} is not a {kind.__name__}")
    return found


def _post(url: str, body: bytes, headers: dict[str, str], message_id: int | str) -> Sent:
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    return Sent(url, body, headers, response.status_code, message_id)


# ---- from a shell -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from devtools.commands import ENV_FILE, STATE_DIR

    parser = argparse.ArgumentParser(description="Scrivi a un comune come un cittadino, sullo stack locale.")
    parser.add_argument("--api", help="l'API locale di `banditore run` (di solito la trova da sé)")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    sub = parser.add_subparsers(dest="what", required=True)
    for name, help_text in (
        ("telegram", "messaggio privato al bot, o commento a un post con --post"),
        ("facebook", "commento a un post della Pagina (--post obbligatorio)"),
        ("messenger", "messaggio alla Pagina su Messenger"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("tenant")
        command.add_argument("channel")
        command.add_argument("text")
        # "--post=ID": a Telegram post's id starts with "-", which on its own would read as an option.
        command.add_argument("--post", help="--post=ID, l'id remoto del post (vedi il comando posts)")
    posts = sub.add_parser("posts", help="i post del canale a cui si può rispondere")
    posts.add_argument("tenant")
    posts.add_argument("channel")
    args = parser.parse_args(argv)

    env_file = args.state_dir / ENV_FILE
    if not env_file.is_file():
        print("Nessuno stack locale in esecuzione (avvialo con `banditore run`).", file=sys.stderr)
        return 1
    os.environ.update(json.loads(env_file.read_text(encoding="utf-8")))
    if args.what == "posts":
        return _print_posts(args.tenant, args.channel)
    citizens = Citizens(
        args.api or os.environ["BANDITORE_API_URL"], sandbox_url=os.environ.get("BANDITORE_SANDBOX_URL")
    )
    if args.what == "facebook" and not args.post:
        parser.error("facebook: --post è obbligatorio")
    if args.what == "telegram" and args.post:
        sent = citizens.telegram_comment(args.tenant, args.channel, args.text, post=args.post)
    elif args.what == "telegram":
        sent = citizens.telegram_via_platform(
            args.tenant, args.channel, args.text
        ) or citizens.telegram_message(args.tenant, args.channel, args.text)
    elif args.what == "facebook":
        sent = citizens.facebook_comment(args.tenant, args.channel, args.text, post=args.post)
    else:
        sent = citizens.messenger_message(args.tenant, args.channel, args.text)
    print(f"Inviato a {sent.url}: risposta {sent.status}.")
    return 0 if sent.status == 200 else 1  # noqa: PLR2004


def _print_posts(tenant: str, channel: str) -> int:
    from chalicelib.inbox import store
    from chalicelib.storage import dynamo, keys

    prefix = keys.post_sk(channel, "")
    for page in store.partition_pages(keys.post_pk(tenant)):
        for item in map(dynamo.from_dynamo, page["Items"]):
            if str(item["sk"]).startswith(prefix):
                print(f"{str(item['sk']).removeprefix(prefix)}  annuncio {item['announcement_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
