"""Which alerts concern a tenant: geocodes (MeteoAlarm region, DPC alert zone) and geometry (the comune's
point or boundary against the alert's polygons and circles), then status, level and validity.

Geometry lives in geometry.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from chalicelib.alerts.cap import alert_level, preferred_info
from chalicelib.alerts.geometry import (
    circle_contains,
    circle_meets_polygon,
    polygon_contains,
    polygons_intersect,
)
from chalicelib.alerts.model import Alert, Area, Info, Level
from chalicelib.config.models import AlertsConfig, Tenant

EMMA_ID = "EMMA_ID"
DPC_ZONE = "Zona di Allerta"
# Test and Exercise are real messages about drills; Draft and System never concern the public at all.
PUBLIC_STATUSES = frozenset({"Actual"})
SANDBOX_STATUSES = frozenset({"Actual", "Test", "Exercise"})
# Ack and Error are messages between systems, not alerts or their changes.
POSTED_MESSAGE_TYPES = frozenset({"Alert", "Update", "Cancel"})


def config_digest(config: AlertsConfig) -> str:
    """A short fingerprint of what decides whether an alert concerns a tenant (areas, level, tests):
    an alert handled under another fingerprint is decided again (a zone fixed mid-crisis)."""
    return hashlib.sha256(config.model_dump_json(exclude={"pause_news_from"}).encode()).hexdigest()[:16]


def matching_areas(info: Info, alerts: AlertsConfig) -> tuple[Area, ...]:
    """The areas of `info` that cover the comune, in document order."""
    return tuple(area for area in info.areas if _covers(area, alerts))


@dataclass(frozen=True)
class Concern:
    """Whether an alert is for a tenant's channels now, and if not, why (`banditore preview` says it)."""

    areas: tuple[Area, ...]  # the alert's areas that cover the comune, whatever else holds
    reason: str | None = None  # None: it concerns the tenant

    @property
    def concerned(self) -> bool:
        return self.reason is None


def concerns(
    alert: Alert, info: Info, tenant: Tenant, *, level: Level | None, now: datetime, sandbox: bool = False
) -> Concern:
    """Whether this alert (one `info` of it, at `level` as the parser read it) is for this tenant's
    channels now. Each tenant of an association is asked on its own. `sandbox` admits Test and
    Exercise alerts when the tenant asks for them there; a public channel only ever gets Actual ones.

    As for a new alert's first post (what `banditore preview` shows): the pipeline also follows the
    threads of what was posted, and an end-of-alert reply goes out whatever this says about the
    closing message."""
    config = tenant.alerts
    if config is None:
        return Concern((), "no alerts configured")
    areas = matching_areas(info, config)
    # The first that fails, the most basic first. The minimum is yellow at least (the config refuses
    # green), so green never passes.
    failed = [
        reason
        for reason, fails in (
            ("not a public alert", not admits(alert, config, sandbox=sandbox)),
            ("not for these areas", not areas),
            ("no readable level", level is None),
            ("below minimum level", level is not None and level < config.minimum_level),
            ("expired", info.expires is not None and info.expires <= now),
        )
        if fails
    ]
    return Concern(areas, failed[0] if failed else None)


def best_info(alert: Alert, config: AlertsConfig) -> tuple[Info | None, tuple[Area, ...], Level | None]:
    """The info block that concerns the tenant most: among the blocks in the preferred language
    (the DPC bulletin writes one per level and day, all Italian), the most severe one whose areas
    match; the preferred block when none matches (an end of alert may still need its texts)."""
    preferred = preferred_info(alert)
    if preferred is None:
        return None, (), None
    best: tuple[Info | None, tuple[Area, ...], Level | None] = (preferred, (), alert_level(preferred))
    for info in alert.infos:
        if info.language != preferred.language:
            continue
        areas = matching_areas(info, config)
        level = alert_level(info)
        if areas and (not best[1] or (level or 0) > (best[2] or 0)):
            best = (info, areas, level)
    return best


def admits(alert: Alert, config: AlertsConfig, *, sandbox: bool = False) -> bool:
    """Whether the message may be shown at all: Actual (or Test/Exercise in a sandbox that asks for
    them), an alert or a change of one, for the public."""
    allowed = SANDBOX_STATUSES if sandbox and config.include_tests_in_sandbox else PUBLIC_STATUSES
    return alert.status in allowed and alert.msg_type in POSTED_MESSAGE_TYPES and alert.scope == "Public"


def _covers(area: Area, alerts: AlertsConfig) -> bool:
    return _geocode_matches(area, alerts) or _geometry_matches(area, alerts)


def geocodes_named(area: Area, name: str) -> tuple[str, ...]:
    """The values of the area's geocodes called `name`, in any case and spacing ("Zona di Allerta")."""
    wanted = _folded(name)
    return tuple(value.strip() for kind, value in area.geocodes if _folded(kind) == wanted)


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def _geocode_matches(area: Area, alerts: AlertsConfig) -> bool:
    regions = set(alerts.emma_ids)
    zones = {zone.casefold() for zone in alerts.zones}
    return any(code.upper() in regions for code in geocodes_named(area, EMMA_ID)) or any(
        code.casefold() in zones for code in geocodes_named(area, DPC_ZONE)
    )


def _geometry_matches(area: Area, alerts: AlertsConfig) -> bool:
    point = (alerts.location.lat, alerts.location.lon) if alerts.location else None
    boundary = tuple(alerts.boundary) if alerts.boundary else None
    for polygon in area.polygons:
        if point and polygon_contains(polygon, point):
            return True
        if boundary and polygons_intersect(polygon, boundary):
            return True
    for circle in area.circles:
        if point and circle_contains(circle, point):
            return True
        if boundary and circle_meets_polygon(circle, boundary):
            return True
    return False
