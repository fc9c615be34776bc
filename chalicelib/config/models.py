"""Typed configuration. Secrets appear only as references (ssm:, secretsmanager:, env:), never values."""

from __future__ import annotations

import re
import typing
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainValidator,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from chalicelib.alerts.model import Level

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
# A reference to a secret, resolved at run time by chalicelib.secrets. The value itself never lives
# in the config file, so the pattern refuses anything that is not a reference.
SecretRef = Annotated[
    str,
    Field(
        pattern=r"^(ssm:/[A-Za-z0-9_./-]+|secretsmanager:[A-Za-z0-9/_+=.@-]+|env:[A-Z_][A-Z0-9_]*)$",
        description="ssm:/path, secretsmanager:name or env:VAR",
    ),
]


# Fields declared as SecretRef carry exactly this metadata (the reference pattern); matching on the
# declared type, not on what a value looks like, keeps a tenant's name out of the secrets.
_SECRET_REF_METADATA = typing.get_args(SecretRef)[1].metadata


def is_secret_ref(field: FieldInfo) -> bool:
    """Whether a model field holds secret references. `token: SecretRef` keeps the pattern as
    metadata; `SecretRef | None` and `list[SecretRef]` keep SecretRef among the annotation's arguments."""
    return field.metadata == _SECRET_REF_METADATA or SecretRef in typing.get_args(field.annotation)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CmsSource(_Model):
    """A CMS news feed (RSS 0.9x/1.0/2.0 or Atom)."""

    id: Slug
    kind: Literal["cms"] = "cms"
    url: HttpUrl
    # Do not poll more often than this, whatever the schedule says (sites block aggressive polling).
    # 0 polls on every schedule tick.
    min_interval_seconds: int = Field(default=60, ge=0, le=86_400)
    # On the first successful poll: mark what is in the feed as seen (no history flood) or post
    # the items younger than max_age_hours.
    first_run: Literal["mark_seen", "post_recent"] = "mark_seen"
    max_age_hours: int = Field(default=48, ge=1, le=24 * 3650)
    # Items posted per poll at most; the rest stay unseen and go out on the next polls.
    max_items_per_poll: int = Field(default=5, ge=1, le=50)
    max_body_bytes: int = Field(default=5_000_000, ge=10_000, le=20_000_000)
    # Feeds that are not well-formed XML are refused unless the operator accepts the loose parser.
    tolerate_malformed: bool = False
    priority: Literal["normal", "urgent"] = "normal"


class CapSource(_Model):
    """An alert feed: a CAP 1.2 document (the DPC bulletin too), the MeteoAlarm JSON warnings API or a
    MeteoAlarm Atom feed."""

    id: Slug
    kind: Literal["cap"]
    url: HttpUrl
    format: Literal["cap", "meteoalarm_json", "meteoalarm_atom"] = "cap"
    # Alerts cannot wait for EventBridge's one-minute tick: the alert poller loops inside an invocation
    # with conditional GETs, so a few seconds is a valid period.
    poll_every_seconds: int = Field(default=15, ge=5, le=3600)
    priority: Literal["normal", "urgent"] = "urgent"


# The news poller's source: the CMS-only code (polling, announce) keeps its name and its fields.
Source = CmsSource
_SOURCE_KINDS: dict[str, type[CmsSource] | type[CapSource]] = {"cms": CmsSource, "cap": CapSource}


def _source_of_its_kind(value: Any) -> CmsSource | CapSource:
    """Validate a source as the model its `kind` names (cms when absent). Dispatching here rather than
    with a tagged union keeps the tag out of error paths: "sources[0](notizie).url", not "...cms.url"."""
    # A dict from the YAML, or a model already built (a config assembled in code).
    kind = value.get("kind", "cms") if isinstance(value, dict) else getattr(value, "kind", "cms")
    model = _SOURCE_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"kind: unknown source kind {kind!r} (cms or cap)")
    return model.model_validate(value)


AnySource = Annotated[CmsSource | CapSource, PlainValidator(_source_of_its_kind)]

# MeteoAlarm's Italian regions, IT001 Calabria to IT020 Friuli-Venezia Giulia (see shared/alerts.md).
EMMA_IDS = frozenset(f"IT{number:03d}" for number in range(1, 21))
# DPC alert zones: a four-letter region prefix and a zone ("Tosc-B", "Lomb-01", "Basi-E2", and
# Valle d'Aosta's "VDAo-A", hence capitals inside the prefix).
ZONE_PATTERN = r"^[A-Z][A-Za-z]{3}-[A-Za-z0-9]{1,3}$"
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
MIN_BOUNDARY_POINTS = 3
MAX_BOUNDARY_POINTS = 20_000


def _emma_id(value: str) -> str:
    if value not in EMMA_IDS:
        raise ValueError(f"{value!r} is not a MeteoAlarm region of Italy (EMMA_ID IT001 to IT020)")
    return value


def _zone(value: str) -> str:
    if not re.fullmatch(ZONE_PATTERN, value):
        raise ValueError(f"{value!r} is not a DPC alert zone code (like Tosc-B, Lomb-01, VDAo-A)")
    return value


EmmaId = Annotated[str, AfterValidator(_emma_id)]
AlertZone = Annotated[str, AfterValidator(_zone)]


class Location(_Model):
    lat: Latitude
    lon: Longitude


class AlertsConfig(_Model):
    """Which alerts concern this comune: its MeteoAlarm region, its DPC alert zones, and where it is
    (a point and/or its boundary) for alerts drawn as polygons or circles."""

    emma_ids: list[EmmaId] = Field(default_factory=list)
    zones: list[AlertZone] = Field(default_factory=list)
    location: Location | None = None
    # [lat, lon] points, as CAP writes coordinates; the ring closes by itself.
    boundary: list[tuple[Latitude, Longitude]] | None = Field(default=None, max_length=MAX_BOUNDARY_POINTS)
    # Green means "no particular awareness required": never posted, so it cannot be the minimum.
    min_level: Literal["yellow", "orange", "red"] = "yellow"
    # Test and Exercise alerts reach the platform sandbox (marked as such), never a public channel:
    # only when run by the local stack, and only on the channels it points at the platform fakes
    # (settings.SANDBOX_CHANNELS_ENV), in threads of their own that never count as alerts in force.
    include_tests_in_sandbox: bool = False
    # Crisis mode: while an alert of this level or above is active for the comune, routine news
    # waits (it is not dropped) so the alert stays on top of every channel. None: news never waits.
    pause_news_from: Literal["orange", "red"] | None = None

    @field_validator("min_level", mode="before")
    @classmethod
    def _never_green(cls, value: object) -> object:
        if value == "green":
            raise ValueError("green alerts are never posted: use yellow, orange or red")
        return value

    @field_validator("boundary")
    @classmethod
    def _a_real_polygon(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is not None and len(set(value)) < MIN_BOUNDARY_POINTS:
            raise ValueError("a boundary needs at least 3 distinct [lat, lon] points")
        return value

    @model_validator(mode="after")
    def _says_where(self) -> AlertsConfig:
        if not (self.emma_ids or self.zones or self.location or self.boundary):
            raise ValueError(
                "give at least one of emma_ids, zones, location or boundary: "
                "otherwise no alert can concern this comune"
            )
        return self

    @property
    def minimum_level(self) -> Level:
        return Level[self.min_level.upper()]

    @property
    def news_pause_level(self) -> Level | None:
        return Level[self.pause_news_from.upper()] if self.pause_news_from else None


class Utm(_Model):
    """UTM parameters added to the announcement's link on this channel, so the comune's web analytics
    can tell which channel brought a reader."""

    source: str = Field(default="", max_length=100, description="default: the platform's name")
    medium: str = Field(default="social", max_length=100)
    campaign: str = Field(default="banditore", max_length=100)


_HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
OfficeInterval = Annotated[str, Field(pattern=_HOURS, description="HH:MM-HH:MM, Europe/Rome")]


class OfficeHours(_Model):
    """When the office answers, in Europe/Rome time: response times and SLAs count these hours only.
    Italian national holidays (Easter Monday included) are closed days without being listed."""

    monday: list[OfficeInterval] = Field(default_factory=lambda: ["09:00-13:00", "14:00-17:00"])
    tuesday: list[OfficeInterval] = Field(default_factory=lambda: ["09:00-13:00", "14:00-17:00"])
    wednesday: list[OfficeInterval] = Field(default_factory=lambda: ["09:00-13:00", "14:00-17:00"])
    thursday: list[OfficeInterval] = Field(default_factory=lambda: ["09:00-13:00", "14:00-17:00"])
    friday: list[OfficeInterval] = Field(default_factory=lambda: ["09:00-13:00"])
    saturday: list[OfficeInterval] = Field(default_factory=list)
    sunday: list[OfficeInterval] = Field(default_factory=list)
    # The comune's own closed days: the patron saint's day ("MM-DD", every year) and single dates.
    patron_saint_day: str | None = Field(default=None, pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    closed_on: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _intervals_in_order(self) -> OfficeHours:
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
            previous_end = ""
            for interval in getattr(self, day):
                start, end = interval.split("-")
                if end <= start or start < previous_end:
                    raise ValueError(f"{day}: intervals must be increasing and not overlap ({interval})")
                previous_end = end
        return self


class FaqEntry(_Model):
    """An automatic answer: when a citizen's message contains any of the phrases (case, accents and
    punctuation ignored; plain words, never patterns), the answer goes back, marked as automatic."""

    phrases: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]] = (
        Field(min_length=1, max_length=50)
    )
    answer: str = Field(min_length=1, max_length=1000)


DEFAULT_DANGER_WORDS = [
    "allagamento",
    "allagata",
    "allagato",
    "frana",
    "smottamento",
    "albero caduto",
    "alberi caduti",
    "crollo",
    "incendio",
    "fuga di gas",
    "voragine",
    "esondazione",
    "strada interrotta",
    "ferito",
    "pericolo",
]


class InboxConfig(_Model):
    """The citizens' inbox of a tenant: office hours, the first-response target, retention,
    automatic answers and the words that flag a message as a danger report."""

    office_hours: OfficeHours = Field(default_factory=OfficeHours)
    # Minutes of office time within which a citizen should get a first answer (SLA).
    first_response_target_minutes: int = Field(default=180, ge=1, le=7 * 24 * 60)
    # Messages and citizen identifiers are deleted after this many days; anonymous figures stay.
    retention_days: int = Field(default=365, ge=1, le=3650)
    faq: list[FaqEntry] = Field(default_factory=list, max_length=200)
    danger_words: list[str] = Field(default_factory=lambda: list(DEFAULT_DANGER_WORDS), max_length=200)


class PostBudget(_Model):
    """How many posts this channel may take per window, and how many of them only alerts may use.
    Each platform has a default below its published limit (chalicelib.publishing.budget)."""

    posts: int = Field(ge=1, le=100_000)
    per_seconds: int = Field(ge=1, le=86_400)
    urgent_reserve: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _reserve_leaves_room(self) -> PostBudget:
        if self.urgent_reserve >= self.posts:
            raise ValueError("urgent_reserve must leave at least one post for news")
        return self


class _Channel(_Model):
    id: Slug
    enabled: bool = True
    budget: PostBudget | None = None
    utm: Utm | None = None
    # Alt text for an image whose feed gave none; without either the announcement's title is used.
    default_alt_text: str | None = Field(default=None, min_length=1, max_length=1000)
    # Hashtags from the feed's categories; some offices prefer posts without them.
    hashtags: bool = True
    # Citizens' replies and messages on this channel reach the inbox; FAQ answers go out by themselves
    # only where `auto_replies` is on.
    inbox: bool = False
    auto_replies: bool = False
    # An alert's update: a reply in the thread of the alert's first post, or an edit of that post
    # where the platform can edit one (`can_edit`). An edit notifies nobody and keeps one post per
    # alert; the end of an alert and a level increase are always posts of their own.
    alert_updates: Literal["reply", "edit"] = "reply"
    can_edit: ClassVar[bool] = False

    @model_validator(mode="after")
    def _edit_only_where_possible(self) -> _Channel:
        if self.alert_updates == "edit" and not self.can_edit:
            raise ValueError(
                f"alert_updates: edit is not possible on {getattr(self, 'platform', 'this platform')}, "
                f"which cannot edit a published post: use reply (editable: {', '.join(_editable())})"
            )
        return self

    def secret_refs(self) -> dict[str, str]:
        """Each secret reference this channel holds, by field name."""
        return {
            name: value
            for name, field in type(self).model_fields.items()
            if is_secret_ref(field) and isinstance(value := getattr(self, name), str)
        }


def _editable() -> list[str]:
    """The platforms whose channels can edit a post, for the refusal's message."""
    return [
        name
        for kind in _Channel.__subclasses__()
        if kind.can_edit
        for name in typing.get_args(kind.model_fields["platform"].annotation)
    ]


class TelegramChannel(_Channel):
    platform: Literal["telegram"]
    can_edit: ClassVar[bool] = True
    chat: str = Field(
        pattern=r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d{1,20})$", description="@channel or chat id"
    )
    token: SecretRef
    disable_notification: bool = False
    # Checked in constant time against X-Telegram-Bot-Api-Secret-Token on every webhook call.
    webhook_secret: SecretRef | None = None
    # The channel's linked discussion group, where citizens' comments to channel posts arrive.
    discussion_chat: str | None = Field(default=None, pattern=r"^-?\d{1,20}$")
    # Bot API base URL; the real one by default. The local stack points it at the sandbox.
    api_base: HttpUrl = HttpUrl("https://api.telegram.org")


class MastodonChannel(_Channel):
    platform: Literal["mastodon"]
    can_edit: ClassVar[bool] = True
    instance: HttpUrl
    token: SecretRef
    visibility: Literal["public", "unlisted", "private"] = "public"
    language: str = Field(default="it", pattern=r"^[a-z]{2}$")
    # Long texts go out as a thread of at most this many posts; 1 means cut at a word instead.
    max_thread_posts: int = Field(default=3, ge=1, le=10)


class FacebookChannel(_Channel):
    platform: Literal["facebook"]
    can_edit: ClassVar[bool] = True
    page_id: str = Field(pattern=r"^\d{1,30}$")
    token: SecretRef  # the Page access token
    # An app token ("app-id|app-secret") lets the health check read the Page token's expiry.
    app_token: SecretRef | None = None
    # The Meta app's secret signs every webhook delivery (X-Hub-Signature-256); the verify token
    # answers the subscription challenge. Both needed for the inbox.
    app_secret: SecretRef | None = None
    verify_token: SecretRef | None = None
    # When the Page token expires, if known from elsewhere; debug_token's answer wins when available.
    token_expires_on: date | None = None
    api_base: HttpUrl = HttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v24.0", pattern=r"^v\d{1,3}\.\d$")


class InstagramChannel(_Channel):
    platform: Literal["instagram"]
    user_id: str = Field(pattern=r"^\d{1,30}$", description="the Instagram professional account id")
    token: SecretRef
    token_expires_on: date | None = None
    api_base: HttpUrl = HttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v24.0", pattern=r"^v\d{1,3}\.\d$")


class ThreadsChannel(_Channel):
    platform: Literal["threads"]
    user_id: str = Field(pattern=r"^(me|\d{1,30})$")
    token: SecretRef
    token_expires_on: date | None = None
    api_base: HttpUrl = HttpUrl("https://graph.threads.net")
    api_version: str = Field(default="v1.0", pattern=r"^v\d{1,3}\.\d$")
    max_thread_posts: int = Field(default=3, ge=1, le=10)


class BlueskyChannel(_Channel):
    platform: Literal["bluesky"]
    handle: str = Field(
        pattern=r"^(did:[a-z]+:[A-Za-z0-9._:%-]{1,200}|[A-Za-z0-9.-]{3,253})$",
        description="the account's handle or DID",
    )
    app_password: SecretRef
    service: HttpUrl = HttpUrl("https://bsky.social")
    language: str = Field(default="it", pattern=r"^[a-z]{2}$")
    max_thread_posts: int = Field(default=3, ge=1, le=10)


class XChannel(_Channel):
    """X with OAuth 1.0a user context: the app's consumer key/secret and the account's access token."""

    platform: Literal["x"]
    consumer_key: SecretRef
    consumer_secret: SecretRef
    access_token: SecretRef
    access_token_secret: SecretRef
    api_base: HttpUrl = HttpUrl("https://api.x.com")
    max_thread_posts: int = Field(default=3, ge=1, le=10)


class SlackChannel(_Channel):
    platform: Literal["slack"]
    webhook_url: SecretRef  # the incoming-webhook URL is itself the credential


class DiscordChannel(_Channel):
    platform: Literal["discord"]
    webhook_url: SecretRef


class MatrixChannel(_Channel):
    platform: Literal["matrix"]
    homeserver: HttpUrl
    room_id: str = Field(pattern=r"^![A-Za-z0-9._=/+-]{1,200}:[A-Za-z0-9.-]{1,253}(:\d{1,5})?$")
    token: SecretRef


AnyChannel = (
    TelegramChannel
    | MastodonChannel
    | FacebookChannel
    | InstagramChannel
    | ThreadsChannel
    | BlueskyChannel
    | XChannel
    | SlackChannel
    | DiscordChannel
    | MatrixChannel
)
Channel = Annotated[AnyChannel, Field(discriminator="platform")]


class Route(_Model):
    source: Slug
    channels: list[Slug] = Field(min_length=1)


class Tenant(_Model):
    """A comune, or one comune of an association; everything is keyed by tenant id first."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    timezone: Literal["Europe/Rome"] = "Europe/Rome"
    sources: list[AnySource] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    alerts: AlertsConfig | None = None
    inbox: InboxConfig | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Tenant:
        _unique("sources", [s.id for s in self.sources])
        _unique("channels", [c.id for c in self.channels])
        sources = {s.id for s in self.sources}
        channels = {c.id for c in self.channels}
        for index, route in enumerate(self.routes):
            if route.source not in sources:
                raise ValueError(f"routes[{index}].source: unknown source '{route.source}'")
            for name in route.channels:
                if name not in channels:
                    raise ValueError(f"routes[{index}].channels: unknown channel '{name}'")
        if self.alert_sources and self.alerts is None:
            raise ValueError(
                f"sources: '{self.alert_sources[0].id}' is an alert source, but there is no 'alerts' "
                "section saying which alerts concern this comune"
            )
        return self

    @property
    def news_sources(self) -> list[CmsSource]:
        return [source for source in self.sources if isinstance(source, CmsSource)]

    @property
    def alert_sources(self) -> list[CapSource]:
        return [source for source in self.sources if isinstance(source, CapSource)]

    def source(self, source_id: str) -> CmsSource | CapSource:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def channel(self, channel_id: str) -> AnyChannel:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise KeyError(channel_id)

    def channels_for(self, source_id: str) -> list[AnyChannel]:
        """Enabled channels routed from a source, each once, in config order."""
        wanted = {name for route in self.routes if route.source == source_id for name in route.channels}
        return [c for c in self.channels if c.id in wanted and c.enabled]


class Config(_Model):
    version: Literal[1] = 1
    tenants: list[Tenant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tenants(self) -> Config:
        _unique("tenants", [t.id for t in self.tenants])
        return self

    @model_validator(mode="after")
    def _one_inbox_per_bot(self) -> Config:
        """A Telegram bot has one webhook URL: two inbox channels on one bot would take it from each
        other at every channel check, and citizens' messages would land in either inbox."""
        owners: dict[str, str] = {}
        for tenant in self.tenants:
            for channel in tenant.channels:
                if isinstance(channel, TelegramChannel) and channel.inbox:
                    owner = owners.setdefault(channel.token, f"{tenant.id}/{channel.id}")
                    if owner != f"{tenant.id}/{channel.id}":
                        raise ValueError(
                            f"tenants: the inbox channels {owner} and {tenant.id}/{channel.id} use the same "
                            "Telegram bot (token); a bot delivers its messages to one webhook: give each "
                            "inbox channel its own bot, or set inbox: false on one of them"
                        )
        return self

    def tenant(self, tenant_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise KeyError(tenant_id)


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what}: duplicate id '{item}'")
        seen.add(item)
