"""Mastodon API fake: instance limits, statuses with Bearer auth, grapheme counting with URLs at a fixed
weight, Idempotency-Key replays within 1 h and X-RateLimit-* headers, as written down in platforms.md;
media uploads (multipart, processed at once or after polls, as `media_async` and `media_pending_polls`
say), statuses naming media or a parent checked as Mastodon checks them. `citizen_status` makes a
status of another account (a citizen mentioning the comune, publicly or in a direct message), which
our statuses can then answer. PUT /api/v1/statuses/:id edits a status of the token's account (text,
language, media; recorded in the post's `edits`), 404 "Record not found" for any other or a deleted
one, the same validation as a new status (422), and no new edit when nothing changed, as Mastodon.
`delete_status` deletes a status as its author would: replies to it are then refused (404)."""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from devtools.sandbox.counting import graphemes
from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

IDEMPOTENCY_SECONDS = 3600
# "300 requests / 5 min per account": always announced in the headers, enforced only on request.
RATE_LIMIT = 300
RATE_WINDOW_SECONDS = 300
VISIBILITIES = {"public", "unlisted", "private", "direct"}
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
MAX_DESCRIPTION = 1500
MAX_MEDIA_ATTACHMENTS = 4
MAX_NOTIFICATIONS = 80
# What a stock instance lists (images first); only the image types are recognised below.
SUPPORTED_MIME_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
    "video/webm",
    "video/mp4",
    "video/quicktime",
    "audio/mpeg",
)
# Magic bytes of the image types the fake recognises, told apart on its own (not media.py's sniffing).
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_URL = re.compile(r'https?://[^\s\x00-\x1f\x7f-\x9f<>"]+', re.IGNORECASE)
_HOST_WITH_DOT = re.compile(r"https?://[^/?#.]+(\.[^/?#.]+)+([/?#]|$)", re.IGNORECASE)


def status_length(text: str, url_weight: int) -> int:
    """Mastodon's count: URLs become `url_weight` placeholder characters, then graphemes are counted."""

    def placeholder(match: re.Match[str]) -> str:
        url = match.group().rstrip(".,;:!?'\")]}…")
        if not _HOST_WITH_DOT.match(url):
            return match.group()
        return "x" * url_weight + match.group()[len(url) :]

    return graphemes(_URL.sub(placeholder, text))


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": message}, headers)


@dataclass(frozen=True)
class _Remembered:
    expires: float
    status: dict[str, Any]


@dataclass
class _Media:
    id: str
    token: str
    mime_type: str
    content: bytes
    description: str | None
    url: str
    pending_polls: int  # GETs still to answer 206; processed once below zero
    attached: bool = False

    @property
    def ready(self) -> bool:
        return self.pending_polls < 0


def image_type(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if content.startswith(magic)), None)


def multipart_form(request: Request) -> dict[str, tuple[str | None, str, bytes]] | None:
    """A multipart/form-data body as {field: (filename, content type, bytes)}; None if it is not one."""
    content_type = request.header("content-type") or ""
    if not content_type.startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    if not message.is_multipart():
        return None
    fields = {}
    for part in message.iter_parts():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), part.get_content_type(), payload)
    return fields


_STATUS_PAGE = re.compile(r"/@[^/]+/(\d+)")
_STATUS = re.compile(r"/api/v1/statuses/(\d+)")
_MEDIA = re.compile(r"/api/v1/media/(\d+)")
_MEDIA_FILE = re.compile(r"/system/media/(\d+)")


class MastodonFake:
    platform = "mastodon"
    title = "Mastodon"
    target_label = "Account"
    posting_endpoint = "statuses"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._base_url = base_url
        self._lock = threading.Lock()
        self.max_characters = 500
        self.characters_reserved_per_url = 23
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_id = 110_000_000_000_000_000
            self._idempotent: dict[tuple[str, str], _Remembered] = {}
            self._windows: dict[str, tuple[int, int]] = {}  # token -> (window number, requests in it)
            self._statuses: set[str] = set()
            self._authors: dict[str, str] = {}  # status id -> account, to tell replies to an account
            self._own: dict[str, dict[str, Any]] = {}  # statuses posted through the API, as last edited
            self._citizen_statuses: list[dict[str, Any]] = []  # what notifications are made of
            self._media: dict[str, _Media] = {}
            self._last_media_id = 113_000_000_000_000_000
            # Media settings tests change: 202 on upload, then this many 206 polls before ready.
            self.media_async = False
            self.media_pending_polls = 0
            self.image_size_limit = IMAGE_SIZE_LIMIT

    def citizen_status(
        self, acct: str, text: str, *, visibility: str = "public", in_reply_to_id: str | None = None
    ) -> dict[str, Any]:
        """A status the account `acct` ("maria" or "maria@altra.istanza") posted, as Mastodon shows it."""
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {', '.join(sorted(VISIBILITIES))}")
        payload = {"status": text, "visibility": visibility, "in_reply_to_id": in_reply_to_id}
        with self._lock:
            self._last_id += 1
            status = self._status_json(str(self._last_id), acct, payload, [])
            self._statuses.add(status["id"])
            self._authors[status["id"]] = acct
            self._citizen_statuses.append(status)
        return status

    def delete_status(self, status_id: str) -> None:
        """A status deleted by its author: gone for replies and edits."""
        with self._lock:
            self._statuses.discard(status_id)
            self._own.pop(status_id, None)

    def fault_reply(self, fault: Fault) -> Reply:
        reset_at = datetime.now(UTC) + timedelta(seconds=fault.retry_after)
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: error(429, "Too many requests", _rate_headers(0, reset_at)),
            "server_error": lambda: Reply(
                503, b"<html><body>503 Service Unavailable</body></html>", "text/html"
            ),
            "expired_token": lambda: error(401, "The access token is invalid"),
            "forbidden": lambda: error(403, "This action is not allowed"),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        return replies[fault.kind]()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        fixed: dict[tuple[str, str], tuple[str, Answer]] = {
            ("GET", "/api/v2/instance"): ("instance", self.instance),
            ("GET", "/api/v1/accounts/verify_credentials"): (
                "verify_credentials",
                lambda: self.verify_credentials(request),
            ),
            ("POST", "/api/v1/statuses"): ("statuses", lambda: self.post_status(request)),
            ("POST", "/api/v2/media"): ("media", lambda: self.upload_media(request)),
            ("GET", "/api/v1/notifications"): ("notifications", lambda: self.notifications(request)),
        }
        if (request.method, path) in fixed:
            return fixed[request.method, path]
        if request.method == "PUT" and (status := _STATUS.fullmatch(path)):
            return "edit_status", lambda: self.edit_status(request, status.group(1))
        return self._route_by_id(request, path) if request.method == "GET" else None

    def _route_by_id(self, request: Request, path: str) -> tuple[str, Answer] | None:
        if media := _MEDIA.fullmatch(path):
            return "media_status", lambda: self.media_status(request, media.group(1))
        if media_file := _MEDIA_FILE.fullmatch(path):
            return "media_file", lambda: self.media_file(media_file.group(1))
        if status_page := _STATUS_PAGE.fullmatch(path):
            # A status URL opens the sandbox page at that status.
            location = f"/#mastodon-{status_page.group(1)}"
            return "status_page", lambda: Reply(
                302, content_type="text/plain", headers={"Location": location}
            )
        return None

    def instance(self) -> Reply:
        return json_reply(
            200,
            {
                "domain": self._base_url().split("://", 1)[-1],
                "title": "Mastodon di prova (sandbox di Banditore)",
                "version": "4.3.0",
                "languages": ["it"],
                "configuration": {
                    "statuses": {
                        "max_characters": self.max_characters,
                        "max_media_attachments": MAX_MEDIA_ATTACHMENTS,
                        "characters_reserved_per_url": self.characters_reserved_per_url,
                    },
                    "media_attachments": {
                        "supported_mime_types": list(SUPPORTED_MIME_TYPES),
                        "image_size_limit": self.image_size_limit,
                        "image_matrix_limit": 33_177_600,
                        "video_size_limit": 103_809_024,
                        "video_frame_rate_limit": 120,
                        "video_matrix_limit": 8_294_400,
                    },
                },
            },
        )

    def verify_credentials(self, request: Request) -> Reply:
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        account = _account(token)
        return json_reply(200, {"id": "1", "username": account, "acct": account})

    def post_status(self, request: Request) -> Reply:
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(
                401, "The access token is invalid" if token is None else "The access token was revoked"
            )
        headers, limited = self._count_for_rate_limit(token)
        if limited:
            return error(429, "Too many requests", headers)
        payload = request.payload()
        if payload is None:
            return error(400, "Error while parsing request body", headers)
        return self._answer_status(token, request.header("Idempotency-Key"), payload, headers)

    def _answer_status(
        self, token: str, key: str | None, payload: dict[str, Any], headers: dict[str, str]
    ) -> Reply:
        # Mastodon's order: the parent is looked up by the controller, then the service answers a
        # known idempotency key, then checks the media and the text.
        parent = payload.get("in_reply_to_id")
        with self._lock:
            parent_missing = parent is not None and parent not in self._statuses
        if parent_missing:
            return error(404, "The post you are trying to reply to does not appear to exist.", headers)
        replay = self._replay(token, key)
        if replay is not None:
            self._state.count_replay("mastodon")
            return json_reply(200, replay, headers)
        problem = self._media_problem(token, payload.get("media_ids")) or self._validation_problem(payload)
        if problem:
            return error(422, problem, headers)
        return json_reply(200, self._create(token, key, payload), headers)

    def edit_status(self, request: Request, status_id: str) -> Reply:
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        headers, limited = self._count_for_rate_limit(token)
        if limited:
            return error(429, "Too many requests", headers)
        payload = request.payload()
        if payload is None:
            return error(400, "Error while parsing request body", headers)
        with self._lock:
            status = self._own.get(status_id)
        if status is None or status["account"]["acct"] != _account(token):
            return error(404, "Record not found", headers)
        media_ids = payload.get("media_ids") or []
        kept = [m["id"] for m in status["media_attachments"]]
        problem = (
            self._media_problem(token, [i for i in media_ids if i not in kept]) if media_ids else None
        ) or self._validation_problem(payload)
        if problem:
            return error(422, problem, headers)
        return json_reply(200, self._edit(status, payload, media_ids), headers)

    def _edit(self, status: dict[str, Any], payload: dict[str, Any], media_ids: list[str]) -> dict[str, Any]:
        """The status after the edit; unchanged (no new edit) when nothing in it changes. An edit
        names all of the status's media: those it leaves out are removed."""
        text = str(payload["status"])
        with self._lock:
            attachments = [self._media[i] for i in media_ids]
            media = [_media_json(attachment) for attachment in attachments]
            edited = {
                **status,
                "content": _content(text),
                "language": payload.get("language", status["language"]),
                "media_attachments": media,
            }
            if edited == status:
                return status
            for attachment in attachments:
                attachment.attached = True
            edited["edited_at"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self._own[status["id"]] = edited
        self._state.edit_post("mastodon", status["id"], text)
        return edited

    def _media_problem(self, token: str, media_ids: Any) -> str | None:
        """Mastodon's answers for media a status names: unknown, someone else's, already attached,
        too many or not processed yet."""
        if media_ids is None:
            return None
        if not isinstance(media_ids, list) or not all(isinstance(i, str) for i in media_ids):
            return "Validation failed: media_ids must be a list of ids"
        if len(media_ids) > MAX_MEDIA_ATTACHMENTS:
            return f"Validation failed: You can't attach more than {MAX_MEDIA_ATTACHMENTS} files"
        with self._lock:
            found = {
                i: m for i in media_ids if (m := self._media.get(i)) and m.token == token and not m.attached
            }
        missing = [i for i in media_ids if i not in found]
        if missing:
            return f"Media {', '.join(missing)} not found or already attached to another post"
        if not all(media.ready for media in found.values()):
            return "Cannot attach files that have not finished processing. Try again in a moment!"
        return None

    def _validation_problem(self, payload: dict[str, Any]) -> str | None:
        text = payload.get("status")
        if not isinstance(text, str) or not (text.strip() or payload.get("media_ids")):
            return "Validation failed: Text can't be blank"
        if status_length(text, self.characters_reserved_per_url) > self.max_characters:
            return f"Validation failed: Text character limit of {self.max_characters} exceeded"
        if payload.get("visibility", "public") not in VISIBILITIES:
            return "Validation failed: Visibility is not included in the list"
        return None

    def _create(self, token: str, key: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._last_id += 1
            status_id = str(self._last_id)
            media = [self._media[media_id] for media_id in payload.get("media_ids") or ()]
            for attachment in media:
                attachment.attached = True
            status = self._status_json(status_id, _account(token), payload, media)
            self._statuses.add(status_id)
            self._authors[status_id] = _account(token)
            self._own[status_id] = status
            if key:
                self._idempotent[token, key] = _Remembered(time.monotonic() + IDEMPOTENCY_SECONDS, status)
        options = {name: payload.get(name) for name in ("visibility", "language", "in_reply_to_id")}
        options["media"] = [
            {"id": m.id, "type": m.mime_type, "url": m.url, "description": m.description} for m in media
        ] or None
        self._state.add_post(
            Post(
                platform="mastodon",
                target=f"@{_account(token)}",
                id=status_id,
                text=payload["status"],
                url=status["url"],
                time=datetime.fromisoformat(status["created_at"]),
                idempotency_key=key,
                options={name: value for name, value in options.items() if value is not None},
            )
        )
        return status

    def _status_json(
        self, status_id: str, account: str, payload: dict[str, Any], media: list[_Media]
    ) -> dict[str, Any]:
        base = f"{self._base_url()}/mastodon"
        text = str(payload["status"])
        return {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "in_reply_to_id": payload.get("in_reply_to_id"),
            "visibility": payload.get("visibility", "public"),
            "language": payload.get("language"),
            "uri": f"{base}/users/{account}/statuses/{status_id}",
            "url": f"{base}/@{account}/{status_id}",
            "content": _content(text),
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "media_attachments": [_media_json(attachment) for attachment in media],
            "account": {"id": "1", "username": account, "acct": account, "url": f"{base}/@{account}"},
        }

    def notifications(self, request: Request) -> Reply:
        """The account's mentions (citizen statuses naming @account, or replying to one of its
        statuses), as Mastodon pages them: newest first, `min_id` for the page right after an id,
        `max_id` for older ones, a Link header to both neighbours. Notification ids are the status ids."""
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        headers, limited = self._count_for_rate_limit(token)
        if limited:
            return error(429, "Too many requests", headers)
        account = _account(token)
        limit = min(int(request.query_value("limit") or 40), MAX_NOTIFICATIONS)
        min_id, max_id = request.query_value("min_id"), request.query_value("max_id")
        with self._lock:
            found = [
                status
                for status in self._citizen_statuses
                if f"@{account}" in html.unescape(status["content"])
                or self._authors.get(status["in_reply_to_id"] or "") == account
            ]
        found = [s for s in found if (not min_id or int(s["id"]) > int(min_id))]
        found = [s for s in found if (not max_id or int(s["id"]) < int(max_id))]
        # min_id: the oldest page after it; otherwise the newest page (before max_id).
        page = found[:limit] if min_id else found[-limit:]
        page.reverse()
        if page:
            url = f"{self._base_url()}/mastodon/api/v1/notifications?types[]=mention&limit={limit}"
            headers["Link"] = (
                f'<{url}&max_id={page[-1]["id"]}>; rel="next", <{url}&min_id={page[0]["id"]}>; rel="prev"'
            )
        notifications = [
            {
                "id": s["id"],
                "type": "mention",
                "created_at": s["created_at"],
                "account": s["account"],
                "status": s,
            }
            for s in page
        ]
        return json_reply(200, notifications, headers)

    def upload_media(self, request: Request) -> Reply:
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        form = multipart_form(request)
        if form is None or "file" not in form:
            return error(422, "Validation failed: File can't be blank")
        _, _, content = form["file"]
        description = form["description"][2].decode("utf-8", "replace") if "description" in form else None
        mime_type = image_type(content)
        if mime_type is None or mime_type not in SUPPORTED_MIME_TYPES:
            return error(422, "Validation failed: File content type is invalid, File is invalid")
        if len(content) > self.image_size_limit:
            megabytes = self.image_size_limit // (1024 * 1024)
            return error(422, f"Validation failed: File file size must be less than {megabytes} MB")
        if description is not None and len(description) > MAX_DESCRIPTION:
            return error(
                422, f"Validation failed: Description is too long (maximum is {MAX_DESCRIPTION} characters)"
            )
        with self._lock:
            self._last_media_id += 1
            media_id = str(self._last_media_id)
            media = _Media(
                id=media_id,
                token=token,
                mime_type=mime_type,
                content=content,
                description=description,
                pending_polls=self.media_pending_polls if self.media_async else -1,
                url=f"{self._base_url()}/mastodon/system/media/{media_id}",
            )
            self._media[media_id] = media
        return json_reply(202 if self.media_async else 200, _media_json(media))

    def media_status(self, request: Request, media_id: str) -> Reply:
        """GET /api/v1/media/:id: 206 while processing, then 200 with the url."""
        token = request.bearer_token()
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        with self._lock:
            media = self._media.get(media_id)
            if media is None or media.token != token:
                return error(404, "Record not found")
            media.pending_polls -= 1
            if not media.ready:
                return Reply(206, b"", content_type="application/json")
            return json_reply(200, _media_json(media))

    def media_file(self, media_id: str) -> Reply:
        with self._lock:
            media = self._media.get(media_id)
        if media is None or not media.ready:
            return error(404, "Record not found")
        return Reply(200, media.content, content_type=media.mime_type)

    def _replay(self, token: str, key: str | None) -> dict[str, Any] | None:
        """The status an earlier request with this key created, if within the hour."""
        if not key:
            return None
        with self._lock:
            remembered = self._idempotent.get((token, key))
        if remembered is None or remembered.expires <= time.monotonic():
            return None
        return remembered.status

    def _count_for_rate_limit(self, token: str) -> tuple[dict[str, str], bool]:
        now = time.time()
        window = int(now // RATE_WINDOW_SECONDS)
        with self._lock:
            seen_window, used = self._windows.get(token, (window, 0))
            used = used + 1 if seen_window == window else 1
            self._windows[token] = (window, used)
        reset_at = datetime.fromtimestamp((window + 1) * RATE_WINDOW_SECONDS, UTC)
        headers = _rate_headers(max(0, RATE_LIMIT - used), reset_at)
        return headers, self._state.enforce_rate_limits and used > RATE_LIMIT


def _content(text: str) -> str:
    """A status's text as Mastodon's HTML content."""
    return "<p>" + html.escape(text).replace("\n", "<br />") + "</p>"


def _rate_headers(remaining: int, reset_at: datetime) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        # Mastodon's format: ISO-8601 with microseconds.
        "X-RateLimit-Reset": reset_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def _media_json(media: _Media) -> dict[str, Any]:
    return {
        "id": media.id,
        "type": "image",
        "url": media.url if media.ready else None,
        "preview_url": media.url,
        "remote_url": None,
        "description": media.description,
        "meta": {},
    }


def _account(token: str) -> str:
    """A stable account per token, so each configured channel shows up as its own account."""
    return "comune_" + hashlib.sha256(token.encode()).hexdigest()[:6]
