"""Typed configuration. Secrets appear only as references (ssm:, secretsmanager:, env:), never values."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

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


Source = CmsSource


class _Channel(_Model):
    id: Slug
    enabled: bool = True


class TelegramChannel(_Channel):
    platform: Literal["telegram"]
    chat: str = Field(
        pattern=r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d{1,20})$", description="@channel or chat id"
    )
    token: SecretRef
    disable_notification: bool = False
    # Bot API base URL; the real one by default. The local stack points it at the sandbox.
    api_base: HttpUrl = HttpUrl("https://api.telegram.org")


class MastodonChannel(_Channel):
    platform: Literal["mastodon"]
    instance: HttpUrl
    token: SecretRef
    visibility: Literal["public", "unlisted", "private"] = "public"
    language: str = Field(default="it", pattern=r"^[a-z]{2}$")


Channel = Annotated[TelegramChannel | MastodonChannel, Field(discriminator="platform")]


class Route(_Model):
    source: Slug
    channels: list[Slug] = Field(min_length=1)


class Tenant(_Model):
    """A comune, or one comune of an association; everything is keyed by tenant id first."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    timezone: Literal["Europe/Rome"] = "Europe/Rome"
    sources: list[Source] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

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
        return self

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def channel(self, channel_id: str) -> TelegramChannel | MastodonChannel:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise KeyError(channel_id)

    def channels_for(self, source_id: str) -> list[TelegramChannel | MastodonChannel]:
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
