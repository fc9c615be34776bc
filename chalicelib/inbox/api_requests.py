"""What the staff API accepts: query parameters and JSON bodies as pydantic models, read from a
Chalice request within the size and media-type limits, with field-level messages for what is wrong.

The rules here are the ones openapi/inbox.yaml states (tests hold the two together) and at least as
strict as the store's own, so a request that passes never makes the store refuse it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.clock import ROME, utcnow
from chalicelib.config.models import SLUG_PATTERN
from chalicelib.inbox import store
from chalicelib.inbox.cursors import MAX_CURSOR_CHARS
from chalicelib.inbox.figures import Period
from chalicelib.inbox.model import Status
from chalicelib.inbox.threading import CITIZEN_KEY, CONVERSATION_ID

# A reply of 4000 characters sent with every character escaped as a JSON surrogate pair
# ("\ud83d\ude00", 12 bytes) takes 48,000 bytes: the limit leaves room for that, and no more.
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 4000
MAX_PAGE = store.MAX_PAGE
MAX_FIGURES_DAYS = 366
# Dates a report can cover: what a deployment can have measured, with room on both sides (and far
# from the ends of the calendar, where a day's bounds in Europe/Rome would not exist).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
DEFAULT_FIGURES_DAYS = 30
TAG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
USER_PATTERN = store.USER.pattern  # an id that can be part of a list's key
# Text a platform can show: no control characters but tab and line breaks.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ID_PATTERN = store.MESSAGE_ID.pattern  # an idempotency key becomes the message's id
CONVERSATION_PATTERN = CONVERSATION_ID.pattern
CITIZEN_KEY_PATTERN = CITIZEN_KEY.pattern
ANNOUNCEMENT_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
MONTH_PATTERN = store.MONTH.pattern
_PATTERN_MESSAGES = {
    SLUG_PATTERN: "must be an identifier: lowercase letters, digits and '-', at most 63",
    TAG_PATTERN: "must be a tag: lowercase letters, digits and '-' inside, at most 40",
    USER_PATTERN: "must be a user id: 1-128 characters, no spaces, '#' or control characters",
    TEXT_PATTERN: "must not contain control characters (tab and line breaks are fine)",
    ID_PATTERN: "must be 1-64 letters, digits, '-' or '_'",
    CONVERSATION_PATTERN: "must be a conversation id: 20 hexadecimal characters",
    CITIZEN_KEY_PATTERN: "must be a citizen key: 32 hexadecimal characters",
    ANNOUNCEMENT_PATTERN: "must be an announcement id: 1-128 letters, digits, '-' or '_'",
    MONTH_PATTERN: "must be a month: YYYY-MM",
}
_KIND_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}

Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
User = Annotated[str, Field(pattern=USER_PATTERN)]
Cursor = Annotated[str, Field(min_length=1, max_length=MAX_CURSOR_CHARS)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=TEXT_PATTERN)]
M = TypeVar("M", bound=BaseModel)


class BadRequest(Exception):
    """400: `fields` says what is wrong with which field ("request" for the request as a whole)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class PayloadTooLarge(Exception):
    """413"""


class UnsupportedMediaType(Exception):
    """415"""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- query parameters -----------------------------------------------------------------------


class ListQuery(_Input):
    status: Status = "open"
    channel: Slug | None = None
    tag: Tag | None = None
    assignee: User | None = None
    limit: int = Field(default=25, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _one_filter(self) -> ListQuery:
        # Each filter is a list of its own (one Query per page): they do not combine.
        if sum(value is not None for value in (self.channel, self.tag, self.assignee)) > 1:
            raise ValueError("use one of channel, tag or assignee at a time")
        return self


class NoQuery(_Input):
    """The routes that take no query parameters: any given is a mistake worth telling."""


class PageQuery(_Input):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None


class FiguresQuery(_Input):
    """Calendar days in Europe/Rome, both included; by default up to today, 30 days long."""

    start: date | None = Field(default=None, alias="from", ge=FIRST_DAY, le=LAST_DAY)
    end: date | None = Field(default=None, alias="to", ge=FIRST_DAY, le=LAST_DAY)
    channel: Slug | None = None
    period: Period = "week"

    @model_validator(mode="after")
    def _ordered(self) -> FiguresQuery:
        first, last = self.days()
        if last < first:
            raise ValueError("'to' (by default today) must not be before 'from'")
        if (last - first).days >= MAX_FIGURES_DAYS:
            raise ValueError(f"at most {MAX_FIGURES_DAYS} days from 'from' to 'to'")
        return self

    def days(self) -> tuple[date, date]:
        """(first day, last day), defaults applied."""
        last = self.end or utcnow().astimezone(ROME).date()
        return self.start or last - timedelta(days=DEFAULT_FIGURES_DAYS - 1), last


class ObservationsQuery(_Input):
    format: Literal["json", "csv"] = "json"
    cursor: Cursor | None = None


class AuditQuery(_Input):
    month: str | None = Field(default=None, pattern=MONTH_PATTERN)

    def chosen_month(self) -> str:
        """The month asked for, or the current one (the trail's months are UTC months)."""
        return self.month or utcnow().strftime("%Y-%m")


# ---- bodies ---------------------------------------------------------------------------------


class NoteBody(_Input):
    text: Text

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be blank")
        return text


class ReplyBody(NoteBody):
    # A private reply to a public comment (Messenger's private replies); the conversation must be one.
    private: bool = False


class ConversationChange(_Input):
    """PATCH: the fields given change, the others stay. `assignee: null` unassigns; `version`, when
    given, must be the conversation's current version (409 otherwise: someone changed it since)."""

    status: Status | None = None
    assignee: User | None = None
    tags: list[Tag] | None = Field(default=None, max_length=store.MAX_TAGS)
    version: int | None = Field(default=None, ge=0)

    @field_validator("status", "tags", "version", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value

    @model_validator(mode="after")
    def _something(self) -> ConversationChange:
        if not self.model_fields_set & {"status", "assignee", "tags"}:
            raise ValueError("nothing to change: give status, assignee or tags")
        return self

    @property
    def assignee_given(self) -> bool:
        return "assignee" in self.model_fields_set


# ---- reading --------------------------------------------------------------------------------


def read_query(request: Request, model: type[M]) -> M:
    params = request.query_params
    names = list(params.keys()) if params else []
    repeated = {name: "must be given once" for name in names if params and len(params.getlist(name)) > 1}
    if repeated:
        raise BadRequest(repeated)
    return validate(model, {name: params[name] for name in names} if params else {})


def read_body(request: Request, model: type[M]) -> M:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(media_type)
    raw = request.raw_body
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(len(raw))
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise BadRequest(field_messages(error)) from None


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(field_messages(error)) from None


def check_format(name: str, value: str, pattern: str) -> str:
    """A path parameter (or header) in a form that could never name anything is bad input (400),
    not a missing resource (404)."""
    if not re.match(pattern, value):
        raise BadRequest({name: _PATTERN_MESSAGES[pattern]})
    return value


def field_messages(error: ValidationError) -> dict[str, str]:
    messages: dict[str, str] = {}
    for problem in error.errors(include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "request"
        messages.setdefault(field, _message(problem))
    return messages


def _message(problem: Any) -> str:
    kind = problem["type"]
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(problem.get("ctx", {}).get("pattern"), "has the wrong format")
    if kind in _KIND_MESSAGES:
        return _KIND_MESSAGES[kind]
    text = str(problem["msg"]).removeprefix("Value error, ")
    for subject in ("Input should", "String should", "List should", "Date should"):
        if text.startswith(subject):
            return "must" + text.removeprefix(subject)
    return text
