"""Telegram Bot API fake: sendMessage with HTML-mode entity parsing, the 4096 limit on the visible
text (UTF-16 code units) and the Bot API's answer shapes, as written down in platforms.md; sendPhoto by
URL with its 1024 caption limit. The fake downloads nothing: a photo URL ending in ".unreachable", or
listed in `unreachable_photos`, is refused the way Telegram refuses a URL it cannot fetch.

Citizens: `citizen_message` makes a message a citizen wrote (in their private chat with the bot, or in
a discussion group), so a reply to it finds it; a reply names the message it answered in its record's
options ("replied_to") only when that message exists. A bot cannot write first: a private chat no
citizen opened is refused (403), as Telegram refuses it.

Edits: editMessageText and editMessageCaption change a message the bot sent (a text message's text, a
photo's caption), recorded in the post's `edits`; refused as Telegram refuses them: the method for the
other kind of message ("there is no text/caption in the message to edit"), someone else's message
("message can't be edited"), a deleted one ("message to edit not found"), the same content again
("message is not modified: ..."). `delete_message` deletes a message as a person would in the app:
replies to it are then refused unless allow_sending_without_reply, and edits find nothing."""

from __future__ import annotations

import html
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.sandbox.counting import utf16_units
from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.inbox_webhooks import CITIZEN_PATH, TelegramWebhooks
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
# "≤20 msg/min to one channel": enforced only when the sandbox is asked for real limits.
CHAT_WINDOW_SECONDS = 60
CHAT_MESSAGES_PER_WINDOW = 20
TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
TAGS |= {"blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9A-Fa-f]+);")
_PLAIN_MODES = {"", "markdown", "markdownv2"}  # not parsed here: counted as written


class EntityParseError(ValueError):
    """Markup Telegram refuses; the message mimics Telegram's "can't parse entities" details."""


def visible_text(markup: str) -> str:
    """The text Telegram shows for an HTML-mode message. Telegram requires every <, > and & that
    is not part of a tag or entity to be escaped, and tags to be known and balanced."""
    shown: list[str] = []
    open_tags: list[str] = []
    position = 0
    while position < len(markup):
        char = markup[position]
        if char == "<":
            position = _read_tag(markup, position, open_tags)
        elif char == "&":
            entity = _ENTITY.match(markup, position)
            if entity is None:
                raise EntityParseError(
                    f"Character entity expected at byte offset {_offset(markup, position)}"
                )
            shown.append(html.unescape(entity.group()))
            position = entity.end()
        elif char == ">":
            raise EntityParseError(f"Unexpected end of tag at byte offset {_offset(markup, position)}")
        else:
            shown.append(char)
            position += 1
    if open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(shown)


def _read_tag(markup: str, position: int, open_tags: list[str]) -> int:
    tag = _TAG.match(markup, position)
    if tag is None:
        raise EntityParseError(f"Unclosed start tag at byte offset {_offset(markup, position)}")
    closing, name = tag.group(1) == "/", tag.group(2).lower()
    if name not in TAGS:
        kind = "end" if closing else "start"
        raise EntityParseError(f'Unsupported {kind} tag "{name}" at byte offset {_offset(markup, position)}')
    if not closing:
        open_tags.append(name)
    elif open_tags and open_tags[-1] == name:
        open_tags.pop()
    else:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {_offset(markup, position)}, found "</{name}>"'
        )
    return tag.end()


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def error(status: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_reply(status, body)


def rate_limited(retry_after: int) -> Reply:
    return error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


_METHOD_PATH = re.compile(r"/bot([^/]+)/([A-Za-z]+)")
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)


@dataclass
class _Sent:
    """A message the bot sent, as edits need it: the chat as addressed (the Post's target) and as
    Telegram shows it, what it is (a text message or a photo) and its text or caption as last sent."""

    target: str
    chat: dict[str, Any]
    kind: str  # "text" or "caption"
    text: str
    parse_mode: str | None


_WEBHOOK_METHODS = {"setWebhook", "getWebhookInfo", "deleteWebhook"}


class TelegramFake:
    platform = "telegram"
    title = "Telegram"
    target_label = "Chat"
    posting_endpoint = "sendMessage"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        del base_url  # Telegram's links are t.me's, whatever the API's address
        self._state = state
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_message_id: defaultdict[int, int] = defaultdict(int)
            self._private_chats: set[int] = set()  # the private chats citizens opened
            self._sent_at: defaultdict[int, deque[float]] = defaultdict(deque)
            self.unreachable_photos: set[str] = set()
            self._sent: dict[tuple[int, int], _Sent] = {}  # (chat id, message id) of the bot's messages
            self._deleted: set[tuple[int, int]] = set()
            self.webhooks = TelegramWebhooks()  # per bot: setWebhook, getWebhookInfo, deleteWebhook

    def citizen_message(
        self, chat_id: int, text: str, *, user_id: int | None = None, message_id: int | None = None
    ) -> dict[str, Any]:
        """A message a citizen wrote in `chat_id` (their own id for the private chat with the bot,
        else a group's), as an update carries it; `message_id` as the test chose it, else the chat's
        next. Later messages in the chat get higher ids, as on Telegram."""
        sender = user_id if user_id is not None else chat_id
        with self._lock:
            number = message_id if message_id is not None else self._last_message_id[chat_id] + 1
            self._last_message_id[chat_id] = max(self._last_message_id[chat_id], number)
            if chat_id > 0:
                self._private_chats.add(chat_id)
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        person = {"id": sender, "is_bot": False, "first_name": "Cittadino"}
        return {"message_id": number, "date": int(time.time()), "chat": chat, "from": person, "text": text}

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """A message deleted in the app (by the channel's staff, or its author)."""
        with self._lock:
            self._deleted.add((chat_id, message_id))

    def fault_reply(self, fault: Fault) -> Reply:
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: rate_limited(fault.retry_after),
            "server_error": lambda: error(500, "Internal Server Error"),
            "expired_token": lambda: error(401, "Unauthorized"),
            "forbidden": lambda: error(403, "Forbidden: bot is not a member of the channel chat"),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        return replies[fault.kind]()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        if path == CITIZEN_PATH:  # the sandbox's own, see inbox_webhooks
            return "sandboxCitizen", lambda: self.webhooks.citizen_page(request, self.citizen_message)
        match = _METHOD_PATH.fullmatch(path)
        if match is None:
            return None
        token, method = match.groups()
        if method in _WEBHOOK_METHODS:
            return method, lambda: self.webhook_call(request, token, method)
        answers: dict[str, Answer] = {
            "getMe": lambda: self.get_me(token),
            "sendMessage": lambda: self.send(request, token, _shown_text),
            "sendPhoto": lambda: self.send(request, token, _shown_caption),
            "editMessageText": lambda: self.edit(request, token, "text"),
            "editMessageCaption": lambda: self.edit(request, token, "caption"),
        }
        return method, answers.get(method, lambda: error(404, "Not Found"))

    def webhook_call(self, request: Request, token: str, method: str) -> Reply:
        if self._state.is_revoked("telegram", token):
            return error(401, "Unauthorized")
        payload = request.payload()
        if payload is None:
            return error(400, "Bad Request: can't parse request body")
        return self.webhooks.answer(method, token, payload)

    def get_me(self, token: str) -> Reply:
        if self._state.is_revoked("telegram", token):
            return error(401, "Unauthorized")
        bot_id = int(token.partition(":")[0]) if token.partition(":")[0].isdigit() else 1
        user = {"id": bot_id, "is_bot": True, "first_name": "Banditore", "username": "banditore_sandbox_bot"}
        return json_reply(200, {"ok": True, "result": user})

    def send(self, request: Request, token: str, shown_for: Callable[[dict[str, Any]], str]) -> Reply:
        """sendMessage or sendPhoto: `shown_for` checks the text or caption and the photo."""
        if self._state.is_revoked("telegram", token):
            return error(401, "Unauthorized")
        payload = request.payload()
        if payload is None:
            return error(400, "Bad Request: can't parse request body")
        try:
            shown = shown_for(payload)
            chat = self._target(payload)
            self._check_photo(payload.get("photo"))
        except _Forbidden as refusal:
            return error(403, f"Forbidden: {refusal}")
        except _Refusal as refusal:
            return error(400, f"Bad Request: {refusal}")
        wait = self._wait_for_chat(chat["id"])
        if wait:
            return rate_limited(wait)
        return self._post(payload, chat, shown)

    def _check_photo(self, photo: Any) -> None:
        """A photo by URL, refused as Telegram refuses one it cannot download. Telegram checks the
        chat before it downloads anything, hence after `_target`."""
        if photo is None:
            return
        if not isinstance(photo, str) or not re.match(r"https?://", photo):
            raise _Refusal("wrong file identifier/HTTP URL specified")
        if photo.endswith(".unreachable") or photo in self.unreachable_photos:
            raise _Refusal("failed to get HTTP URL content")

    def _target(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The chat addressed, checking a reply's target as Telegram does: a reply to a message
        that does not exist is refused unless the sender allows sending without it."""
        chat = _chat(str(payload["chat_id"]))
        if chat is None:
            raise _Refusal("chat not found")
        with self._lock:
            unopened = chat["type"] == "private" and chat["id"] not in self._private_chats
        if unopened:
            raise _Forbidden("bot can't initiate conversation with a user")
        reply = payload.get("reply_parameters")
        if reply is None:
            return chat
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise _Refusal('field "reply_parameters" must be an object with a message_id')
        if not self._exists(chat["id"], reply["message_id"]) and not reply.get("allow_sending_without_reply"):
            raise _Refusal("message to be replied not found")
        return chat

    def _exists(self, chat_id: int, message_id: int) -> bool:
        with self._lock:
            return (
                0 < message_id <= self._last_message_id[chat_id]
                and (chat_id, message_id) not in self._deleted
            )

    def edit(self, request: Request, token: str, kind: str) -> Reply:
        """editMessageText (`kind` "text") or editMessageCaption ("caption")."""
        if self._state.is_revoked("telegram", token):
            return error(401, "Unauthorized")
        payload = request.payload()
        if payload is None:
            return error(400, "Bad Request: can't parse request body")
        try:
            sent = self._editable(payload, kind)
            shown = _shown_text(payload) if kind == "text" else _shown_caption({**payload, "photo": "sent"})
            text = payload.get(kind) or ""
            self._change(sent, text, payload.get("parse_mode"))
        except _Refusal as refusal:
            return error(400, f"Bad Request: {refusal}")
        message_id = payload["message_id"]
        self._state.edit_post("telegram", str(message_id), text, target=sent.target)
        chat = sent.chat
        message = {"message_id": message_id, "sender_chat": chat, "chat": chat, "date": int(time.time())}
        return json_reply(
            200, {"ok": True, "result": {**message, kind: shown, "edit_date": int(time.time())}}
        )

    def _editable(self, payload: dict[str, Any], kind: str) -> _Sent:
        """The bot's message an edit names, or _Refusal as Telegram refuses the edit."""
        chat, message_id = _chat(str(payload.get("chat_id", ""))), payload.get("message_id")
        if chat is None:
            raise _Refusal("chat not found")
        if not isinstance(message_id, int):
            raise _Refusal("message identifier is not specified")
        with self._lock:
            sent = self._sent.get((chat["id"], message_id))
        if not self._exists(chat["id"], message_id):
            raise _Refusal("message to edit not found")
        if sent is None:
            raise _Refusal("message can't be edited")  # not the bot's
        if sent.kind != kind:
            raise _Refusal(f"there is no {kind} in the message to edit")
        return sent

    def _change(self, sent: _Sent, text: str, mode: str | None) -> None:
        """The message's new content; _Refusal when it is the same as before."""
        with self._lock:
            if (sent.text, sent.parse_mode) == (text, mode):
                raise _Refusal(NOT_MODIFIED)
            sent.text, sent.parse_mode = text, mode

    def _post(self, payload: dict[str, Any], chat: dict[str, Any], shown: str) -> Reply:
        reply = payload.get("reply_parameters")
        # Sent without its reply when that message is gone (allow_sending_without_reply).
        replied_to = reply["message_id"] if reply and self._exists(chat["id"], reply["message_id"]) else None
        photo = payload.get("photo")
        kind = "caption" if photo else "text"
        with self._lock:
            self._last_message_id[chat["id"]] += 1
            message_id = self._last_message_id[chat["id"]]
            self._sent[chat["id"], message_id] = _Sent(
                str(payload["chat_id"]), chat, kind, payload.get(kind) or "", payload.get("parse_mode")
            )
        username = chat.get("username")
        options = {
            name: payload.get(name)
            for name in ("parse_mode", "link_preview_options", "disable_notification", "reply_parameters")
        }
        options["replied_to"] = replied_to
        options["photo"] = photo
        self._state.add_post(
            Post(
                platform="telegram",
                target=str(payload["chat_id"]),
                id=str(message_id),  # unique per chat only, as on Telegram
                text=payload["caption" if photo else "text"] or "",
                url=f"https://t.me/{username}/{message_id}" if username else None,
                time=datetime.now(UTC),
                options={name: value for name, value in options.items() if value is not None},
            )
        )
        message: dict[str, Any] = {
            "message_id": message_id,
            "sender_chat": chat,
            "chat": chat,
            "date": int(time.time()),
        }
        if replied_to is not None:
            message["reply_to_message"] = {"message_id": replied_to, "chat": chat}
        if photo:
            unique = f"AQAD{zlib.crc32(photo.encode()):08x}"
            message["photo"] = [
                {"file_id": f"AgACAg{unique}", "file_unique_id": unique, "width": 1280, "height": 720}
            ]
            if shown:
                message["caption"] = shown
        else:
            message["text"] = shown
        return json_reply(200, {"ok": True, "result": message})

    def _wait_for_chat(self, chat_id: int) -> int:
        """Seconds to wait before this chat takes another message (0: go), with real limits on."""
        if not self._state.enforce_rate_limits:
            return 0
        now = time.monotonic()
        with self._lock:
            sent = self._sent_at[chat_id]
            while sent and sent[0] <= now - CHAT_WINDOW_SECONDS:
                sent.popleft()
            if len(sent) >= CHAT_MESSAGES_PER_WINDOW:
                return max(1, round(sent[0] + CHAT_WINDOW_SECONDS - now))
            sent.append(now)
        return 0


class _Refusal(ValueError):
    """A sendMessage Telegram answers with 400; the message is the description after "Bad Request: "."""


class _Forbidden(ValueError):
    """A sendMessage Telegram answers with 403; the message is the description after "Forbidden: "."""


def _shown_text(payload: dict[str, Any]) -> str:
    """The message as Telegram would show it, or _Refusal as Telegram would refuse it."""
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _Refusal("message text is empty")
    return _shown(payload, text, MESSAGE_LIMIT, "message is too long")


def _shown_caption(payload: dict[str, Any]) -> str:
    """A photo's caption as Telegram would show it (it may be empty), or _Refusal."""
    caption = payload.get("caption") or ""
    if payload.get("photo") in (None, ""):
        raise _Refusal("there is no photo in the request")
    if not isinstance(caption, str):
        raise _Refusal('field "caption" must be of type String')
    return _shown(payload, caption, CAPTION_LIMIT, "message caption is too long")


def _shown(payload: dict[str, Any], text: str, limit: int, too_long: str) -> str:
    mode = payload.get("parse_mode")
    if payload.get("chat_id") in (None, ""):
        raise _Refusal("chat_id is empty")
    if (mode or "").lower() not in _PLAIN_MODES | {"html"}:
        raise _Refusal(f"unsupported parse_mode {mode!r}")
    try:
        shown = _visible(text, mode)
    except EntityParseError as exc:
        raise _Refusal(f"can't parse entities: {exc}") from None
    # Telegram trims the text before it measures it.
    if utf16_units(shown.strip()) > limit:
        raise _Refusal(too_long)
    return shown


def _visible(text: str, mode: str | None) -> str:
    return visible_text(text) if (mode or "").lower() == "html" else text


def _chat(chat_id: str) -> dict[str, Any] | None:
    """The chat a chat_id names: any @channel exists here, with a stable id; numeric ids are taken as
    given (a private chat has no username, so no public link)."""
    if chat_id.startswith("@"):
        name = chat_id[1:]
        return {
            "id": -1_000_000_000_000 - zlib.crc32(name.lower().encode()),
            "type": "channel",
            "title": name,
            "username": name,
        }
    if re.fullmatch(r"-?\d{1,20}", chat_id):
        number = int(chat_id)
        kind = "channel" if chat_id.startswith("-100") else "group" if number < 0 else "private"
        return {"id": number, "type": kind, "title": f"Chat {number}"}
    return None
