"""Slack incoming-webhook fake: POST /services/{team}/{bot}/{secret} answered "ok" or with Slack's short
error codes in plain text; section text within 3000 characters, image accessories with alt text (an
image whose host ends in .invalid cannot be downloaded, as Slack fails on an unreachable image), texts
over 40,000 characters truncated, mentions spotted and recorded, 429 with Retry-After, as written
down in platforms.md."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.webhooks.common import SlidingWindow, text_reply
from devtools.sandbox.wire import Reply, Request, malformed_reply, timeout_reply

SECTION_TEXT_LIMIT = 3000
MESSAGE_TEXT_LIMIT = 40_000  # beyond it Slack truncates the text instead of refusing it
ALT_TEXT_LIMIT = 2000
IMAGE_URL_LIMIT = 3000
MAX_BLOCKS = 50
# "1 message per second per webhook, short bursts allowed": enforced only on request.
WEBHOOK_MESSAGES, WEBHOOK_SECONDS = 10, 10.0
# What a broken webhook answers, by code (Slack's incoming-webhook errors): dead ones and refusals.
ERROR_STATUSES = {
    "invalid_token": 403,
    "action_prohibited": 403,
    "posting_to_general_channel_denied": 403,
    "no_service": 404,
    "no_team": 404,
    "team_disabled": 404,
    "channel_not_found": 404,
    "channel_is_archived": 410,
}
_WEBHOOK_PATH = re.compile(r"/services/([^/]+)/([^/]+)/([^/]+)")
_CONTROL = re.compile(r"<([^<>]*)>")
# Words Slack may turn into broadcasts when it parses plain text; the fake always assumes it does.
_BROADCAST_WORD = re.compile(r"(?<![\w@])@(channel|here|everyone)\b", re.IGNORECASE)


def mentions(mrkdwn: str) -> list[str]:
    """Who a message would notify: <!here>, <!channel>, <!everyone>, <!subteam^…>, <@user> control
    sequences, and the broadcast words written plainly."""
    found = [f"<{inner}>" for inner in _CONTROL.findall(mrkdwn) if inner.startswith(("!", "@"))]
    outside = _CONTROL.sub(" ", mrkdwn)  # a word inside a link is part of the link
    return found + [f"@{word.lower()}" for word in _BROADCAST_WORD.findall(outside)]


def shown_text(mrkdwn: str) -> str:
    """The text Slack shows: control sequences resolved (a link shows its label, or its URL), then
    the only three entities Slack decodes."""

    def resolve(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        return label or target

    shown = _CONTROL.sub(resolve, mrkdwn)
    return shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class _Refusal(ValueError):
    """A payload Slack answers with 400 and the code in the message."""


class SlackFake:
    platform = "slack"
    title = "Slack"
    target_label = "Webhook"
    posting_endpoint = "post"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._window = SlidingWindow(WEBHOOK_MESSAGES, WEBHOOK_SECONDS)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._posted = 0
            self._broken: dict[str, str] = {}
        self._window.reset()

    def break_webhook(self, secret: str, code: str) -> None:
        """From now on the webhook with this secret answers `code` (a key of ERROR_STATUSES)."""
        if code not in ERROR_STATUSES:
            raise ValueError(f"code must be one of {', '.join(ERROR_STATUSES)}")
        with self._lock:
            self._broken[secret] = code

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "rate_limit":
            return text_reply(429, "rate_limited", {"Retry-After": str(fault.retry_after)})
        if fault.kind == "timeout":
            return timeout_reply(fault.delay)
        if fault.kind == "malformed":
            return malformed_reply()
        code = {"expired_token": "invalid_token", "forbidden": "action_prohibited"}.get(fault.kind)
        # server_error, and kinds of other platforms (Meta's "blocked", "duplicate"): Slack's trouble.
        return text_reply(ERROR_STATUSES[code], code) if code else text_reply(500, "rollup_error")

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        match = _WEBHOOK_PATH.fullmatch(path)
        if request.method != "POST" or match is None:
            return None
        team, secret = unquote(match.group(1)), unquote(match.group(3))
        return "post", lambda: self.post(request, team=team, secret=secret)

    def post(self, request: Request, *, team: str, secret: str) -> Reply:
        with self._lock:
            broken = self._broken.get(secret)
        if broken is None and self._state.is_revoked("slack", secret):
            broken = "invalid_token"
        if broken is not None:
            return text_reply(ERROR_STATUSES[broken], broken)
        payload = request.payload()
        if payload is None:
            return text_reply(400, "invalid_payload")
        try:
            options = _checked(payload)
        except _Refusal as refusal:
            return text_reply(400, str(refusal))
        if self._state.enforce_rate_limits:
            wait = self._window.wait(secret)
            if wait:
                return text_reply(429, "rate_limited", {"Retry-After": str(max(1, round(wait)))})
        self._record(team, options.pop("shown"), options)
        return text_reply(200, "ok")

    def _record(self, team: str, text: str, options: dict[str, Any]) -> None:
        with self._lock:
            self._posted += 1
            number = self._posted
        if len(text) > MESSAGE_TEXT_LIMIT:
            text, options = text[:MESSAGE_TEXT_LIMIT], {**options, "truncated": True}
        self._state.add_post(
            Post(
                platform="slack",
                target=team,
                id=str(number),  # Slack returns no id: this one is the sandbox page's
                text=text,
                url=None,
                time=datetime.now(UTC),
                options=options,
            )
        )


def _checked(payload: dict[str, Any]) -> dict[str, Any]:
    """What the post carries, for the record, or _Refusal as Slack refuses it."""
    text, blocks = payload.get("text"), payload.get("blocks")
    if blocks is None and (not isinstance(text, str) or not text.strip()):
        raise _Refusal("no_text")
    if text is not None and not isinstance(text, str):
        raise _Refusal("invalid_payload")
    options: dict[str, Any] = {}
    texts = [text or ""]
    if blocks is not None:
        section_texts, image = _checked_blocks(blocks)
        texts += section_texts
        options.update({"blocks": len(blocks), **image})
    options["mentions"] = [found for shown in texts for found in mentions(shown)]
    options["shown"] = next(shown for shown in texts if shown)  # the text, or the first section's
    return options


def _checked_blocks(blocks: Any) -> tuple[list[str], dict[str, str]]:
    if not isinstance(blocks, list) or not 0 < len(blocks) <= MAX_BLOCKS:
        raise _Refusal("invalid_blocks")
    texts, image = [], {}
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "section":
            raise _Refusal("invalid_blocks")  # the only block this fake knows
        texts.append(_section_text(block.get("text")))
        accessory = block.get("accessory")
        if accessory is not None:
            image = _checked_image(accessory)
    return texts, image


def _section_text(text: Any) -> str:
    if not isinstance(text, dict) or text.get("type") not in ("mrkdwn", "plain_text"):
        raise _Refusal("invalid_blocks")
    content = text.get("text")
    if not isinstance(content, str) or not 0 < len(content) <= SECTION_TEXT_LIMIT:
        raise _Refusal("invalid_blocks")
    return content


def _checked_image(accessory: Any) -> dict[str, str]:
    if not isinstance(accessory, dict) or accessory.get("type") != "image":
        raise _Refusal("invalid_blocks")
    url, alt = accessory.get("image_url"), accessory.get("alt_text")
    if not isinstance(alt, str) or not 0 < len(alt) <= ALT_TEXT_LIMIT:
        raise _Refusal("invalid_blocks")
    if not isinstance(url, str) or len(url) > IMAGE_URL_LIMIT:
        raise _Refusal("invalid_blocks")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or host.endswith(".invalid"):
        raise _Refusal("invalid_blocks")  # Slack could not download it
    return {"image": url, "alt_text": alt}
