"""Which alerts concern a tenant: MeteoAlarm regions, DPC zones, polygons and circles against the comune's
point or boundary; and only Actual, posted levels, unexpired alerts reach a public channel."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.alerts.areas import concerns, matching_areas
from chalicelib.alerts.geometry import (
    circle_contains,
    circle_meets_polygon,
    great_circle_km,
    is_degenerate,
    polygon_contains,
    polygons_intersect,
)
from chalicelib.alerts.model import Alert, Area, Circle, Info, Level, Point
from chalicelib.config.models import AlertsConfig, Tenant

NOW = datetime(2026, 7, 31, 10, 0, tzinfo=UTC)
FLORENCE: Point = (43.7696, 11.2558)
# A square of about 22 by 16 km around Florence, and the comune's own rough boundary inside it.
SQUARE = ((43.87, 11.15), (43.87, 11.35), (43.67, 11.35), (43.67, 11.15))
BOUNDARY = [(43.83, 11.15), (43.83, 11.33), (43.72, 11.33), (43.72, 11.15)]


def _alerts(**fields: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(fields)


def _tenant(tenant_id: str = "comune-a", **alerts: Any) -> Tenant:
    return Tenant.model_validate({"id": tenant_id, "name": tenant_id, "alerts": alerts or None})


def _info(*areas: Area, expires: datetime | None = NOW + timedelta(hours=6)) -> Info:
    return Info(language="it-IT", event="Temporali", expires=expires, areas=areas)


def _alert(info: Info, **fields: Any) -> Alert:
    defaults: dict[str, Any] = {
        "identifier": "a1",
        "sender": "s",
        "sent": NOW,
        "status": "Actual",
        "msg_type": "Alert",
    }
    return Alert(**(defaults | fields), infos=(info,))


def _ring(center: Point, radius: float, count: int, *, notch: float = 1.0) -> tuple[Point, ...]:
    """`count` points around `center` (degrees); every other point pulled in by `notch` makes a star."""
    points = []
    for index in range(count):
        angle = 2 * math.pi * index / count
        scale = radius * (notch if index % 2 else 1.0)
        points.append((center[0] + scale * math.sin(angle), center[1] + scale * math.cos(angle)))
    return tuple(points)


# --- geocodes -------------------------------------------------------------------------------------


def test_meteoalarm_region_matches_by_emma_id() -> None:
    tuscany = Area("Toscana", geocodes=(("EMMA_ID", "IT009"),))
    lazio = Area("Lazio", geocodes=(("EMMA_ID", "IT012"),))
    assert matching_areas(_info(lazio, tuscany), _alerts(emma_ids=["IT009"])) == (tuscany,)
    assert matching_areas(_info(lazio), _alerts(emma_ids=["IT009"])) == ()


def test_dpc_zone_matches_by_zona_di_allerta_whatever_the_spacing_and_case() -> None:
    bolzano = Area("Provincia Autonoma di Bolzano", geocodes=(("Zona di Allerta", "Tren-A"),))
    loose = Area("Bolzano", geocodes=(("ZONA DI  ALLERTA", " tren-a "),))
    other = Area("Trento", geocodes=(("Zona di Allerta", "Tren-B"),))
    assert matching_areas(_info(bolzano, loose, other), _alerts(zones=["Tren-A"])) == (bolzano, loose)


def test_a_code_under_another_geocode_name_does_not_match() -> None:
    # The same text as a region or a zone, but the document says it is something else.
    area = Area("x", geocodes=(("NUTS3", "IT009"), ("EMMA_ID", "Tren-A")))
    assert matching_areas(_info(area), _alerts(emma_ids=["IT009"], zones=["Tren-A"])) == ()


# --- polygons -------------------------------------------------------------------------------------


def test_polygon_with_500_points_contains_the_point_or_not() -> None:
    polygon = _ring(FLORENCE, 0.1, 500)
    assert polygon_contains(polygon, FLORENCE)
    assert polygon_contains(polygon, (FLORENCE[0] + 0.099, FLORENCE[1]))
    assert not polygon_contains(polygon, (FLORENCE[0] + 0.101, FLORENCE[1]))
    assert not polygon_contains(polygon, (45.46, 9.19))  # Milan


def test_concave_polygon_with_500_points_leaves_its_notches_out() -> None:
    star = _ring(FLORENCE, 0.1, 500, notch=0.5)
    tip, notch = star[0], star[1]
    # Between two tips, just outside the inner corner, is outside the star.
    beyond_notch = (
        FLORENCE[0] + (notch[0] - FLORENCE[0]) * 1.3,
        FLORENCE[1] + (notch[1] - FLORENCE[1]) * 1.3,
    )
    inside_tip = (FLORENCE[0] + (tip[0] - FLORENCE[0]) * 0.95, FLORENCE[1] + (tip[1] - FLORENCE[1]) * 0.95)
    assert not polygon_contains(star, beyond_notch)
    assert polygon_contains(star, inside_tip)


def test_500_point_polygons_are_matched_quickly() -> None:
    polygon = _ring(FLORENCE, 0.1, 500)
    started = time.perf_counter()
    for _ in range(100):
        polygon_contains(polygon, FLORENCE)
    polygons_intersect(polygon, _ring((FLORENCE[0] + 0.15, FLORENCE[1]), 0.1, 500))
    assert time.perf_counter() - started < 1.0


def test_a_ray_through_a_vertex_counts_once() -> None:
    diamond = ((0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0))
    assert polygon_contains(diamond, (0.0, 0.5))
    assert polygon_contains(diamond, (0.0, -0.5))
    assert not polygon_contains(diamond, (0.0, 2.0))
    assert not polygon_contains(diamond, (0.0, -2.0))


def test_a_point_on_the_border_is_inside() -> None:
    assert polygon_contains(SQUARE, (43.87, 11.25))
    assert polygon_contains(SQUARE, SQUARE[2])


def test_a_closed_ring_and_an_open_one_are_the_same_polygon() -> None:
    closed = (*SQUARE, SQUARE[0])
    for point in (FLORENCE, (44.0, 11.25), (43.77, 11.40)):
        assert polygon_contains(closed, point) == polygon_contains(SQUARE, point)


@pytest.mark.parametrize(
    "polygon",
    [
        (),
        (FLORENCE,),
        (FLORENCE, (43.8, 11.3), FLORENCE, (43.8, 11.3)),  # two distinct points, repeated
        ((43.7, 11.2), (43.8, 11.3), (43.9, 11.4)),  # three points in a line
    ],
)
def test_degenerate_polygons_never_match(polygon: tuple[Point, ...]) -> None:
    assert is_degenerate(polygon)
    on_it = (43.8, 11.3)
    assert not polygon_contains(polygon, on_it)
    assert not polygons_intersect(polygon, BOUNDARY)
    assert (
        matching_areas(_info(Area("x", polygons=(polygon,))), _alerts(location={"lat": 43.8, "lon": 11.3}))
        == ()
    )


def test_polygon_alert_matches_the_comune_point() -> None:
    inside, outside = (
        Area("Firenze", polygons=(SQUARE,)),
        Area("Milano", polygons=(_ring((45.46, 9.19), 0.1, 40),)),
    )
    config = _alerts(location={"lat": FLORENCE[0], "lon": FLORENCE[1]})
    assert matching_areas(_info(outside, inside), config) == (inside,)


def test_one_of_several_polygons_is_enough() -> None:
    degenerate = ((43.7, 11.2), (43.7, 11.2), (43.7, 11.2))
    area = Area("two polygons", polygons=(degenerate, SQUARE))
    assert matching_areas(_info(area), _alerts(location={"lat": FLORENCE[0], "lon": FLORENCE[1]})) == (area,)


# --- boundary -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert_polygon", "meets"),
    [
        (((43.80, 11.30), (43.80, 11.50), (43.60, 11.50), (43.60, 11.30)), True),  # overlaps a corner
        (((44.5, 10.5), (44.5, 12.0), (43.0, 12.0), (43.0, 10.5)), True),  # the whole comune inside
        (((43.78, 11.20), (43.78, 11.25), (43.75, 11.25), (43.75, 11.20)), True),  # inside the comune
        (((43.83, 11.33), (43.90, 11.40), (43.90, 11.33)), True),  # touches at a corner only
        (((44.0, 11.0), (44.0, 11.5), (43.9, 11.5), (43.9, 11.0)), False),  # north of it
    ],
)
def test_polygon_alert_meets_the_comune_boundary(alert_polygon: tuple[Point, ...], meets: bool) -> None:
    assert polygons_intersect(alert_polygon, BOUNDARY) is meets
    assert polygons_intersect(BOUNDARY, alert_polygon) is meets
    # The boundary alone decides here: the alert avoids the comune's point in the partial cases.
    found = matching_areas(_info(Area("x", polygons=(alert_polygon,))), _alerts(boundary=BOUNDARY))
    assert bool(found) is meets


def test_crossing_polygons_with_no_corner_inside_each_other_meet() -> None:
    # A plus sign: each bar's corners are outside the other bar, only the sides cross.
    horizontal = ((43.76, 11.10), (43.76, 11.40), (43.78, 11.40), (43.78, 11.10))
    vertical = ((43.60, 11.24), (43.60, 11.26), (43.90, 11.26), (43.90, 11.24))
    assert polygons_intersect(horizontal, vertical)


def test_a_large_alert_polygon_against_a_detailed_boundary() -> None:
    boundary = [tuple(p) for p in _ring(FLORENCE, 0.05, 300)]
    far = _ring((FLORENCE[0] + 0.2, FLORENCE[1]), 0.1, 500)
    near = _ring((FLORENCE[0] + 0.12, FLORENCE[1]), 0.1, 500)
    assert not polygons_intersect(far, boundary)
    assert polygons_intersect(near, boundary)


# --- circles --------------------------------------------------------------------------------------


def test_great_circle_distance_rome_milan() -> None:
    assert great_circle_km((41.9028, 12.4964), (45.4642, 9.1900)) == pytest.approx(477, abs=3)


def test_circle_contains_by_great_circle_distance() -> None:
    circle = Circle(center=FLORENCE, radius_km=10.0)
    # 0.08° of latitude is about 8.9 km, 0.1° about 11.1 km.
    assert circle_contains(circle, (FLORENCE[0] + 0.08, FLORENCE[1]))
    assert not circle_contains(circle, (FLORENCE[0] + 0.1, FLORENCE[1]))
    # Longitude degrees are shorter at 43.8°N: 0.12° east is about 9.6 km.
    assert circle_contains(circle, (FLORENCE[0], FLORENCE[1] + 0.12))
    area = Area("cerchio", circles=(circle,))
    assert matching_areas(_info(area), _alerts(location={"lat": 43.70, "lon": 11.25})) == (area,)
    assert matching_areas(_info(area), _alerts(location={"lat": 43.60, "lon": 11.25})) == ()


def test_circle_meets_the_boundary_by_a_side_or_around_it() -> None:
    north_side = 43.83
    near = Circle(center=(north_side + 0.04, 11.25), radius_km=5.0)  # about 4.4 km from the side
    far = Circle(center=(north_side + 0.06, 11.25), radius_km=5.0)  # about 6.7 km from it
    assert circle_meets_polygon(near, BOUNDARY)
    assert not circle_meets_polygon(far, BOUNDARY)
    assert circle_meets_polygon(Circle(center=(43.77, 11.24), radius_km=0.1), BOUNDARY)  # centre inside
    assert not circle_meets_polygon(near, ((43.8, 11.2), (43.8, 11.2), (43.8, 11.2)))
    assert matching_areas(_info(Area("c", circles=(near,))), _alerts(boundary=BOUNDARY))


# --- concerns -------------------------------------------------------------------------------------

ZONE_B = Area("Bassa Toscana", geocodes=(("Zona di Allerta", "Tosc-B"),))


@pytest.mark.parametrize("status", ["Test", "Exercise", "Draft", "System"])
def test_only_actual_alerts_reach_a_public_channel(status: str) -> None:
    info = _info(ZONE_B)
    tenant = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=True)
    assert concerns(_alert(info, status="Actual"), info, tenant, level=Level.ORANGE, now=NOW).concerned
    assert not concerns(_alert(info, status=status), info, tenant, level=Level.ORANGE, now=NOW).concerned


def test_the_sandbox_shows_tests_and_exercises_only_when_asked() -> None:
    info = _info(ZONE_B)
    asked = _tenant(zones=["Tosc-B"], include_tests_in_sandbox=True)
    not_asked = _tenant(zones=["Tosc-B"])
    for status in ("Test", "Exercise"):
        alert = _alert(info, status=status)
        assert concerns(alert, info, asked, level=Level.ORANGE, now=NOW, sandbox=True).concerned
        assert not concerns(alert, info, not_asked, level=Level.ORANGE, now=NOW, sandbox=True).concerned
    assert not concerns(
        _alert(info, status="Draft"), info, asked, level=Level.ORANGE, now=NOW, sandbox=True
    ).concerned


@pytest.mark.parametrize(
    ("min_level", "level", "expected"),
    [
        ("yellow", Level.GREEN, False),
        ("yellow", Level.YELLOW, True),
        ("orange", Level.YELLOW, False),
        ("orange", Level.ORANGE, True),
        ("orange", Level.RED, True),
        ("red", Level.ORANGE, False),
        ("red", Level.RED, True),
    ],
)
def test_level_at_least_the_tenant_minimum_and_never_green(
    min_level: str, level: Level, expected: bool
) -> None:
    info = _info(ZONE_B)
    tenant = _tenant(zones=["Tosc-B"], min_level=min_level)
    assert concerns(_alert(info), info, tenant, level=level, now=NOW).concerned is expected


@pytest.mark.parametrize(
    ("expires", "expected"),
    [(NOW - timedelta(minutes=1), False), (NOW, False), (NOW + timedelta(minutes=1), True), (None, True)],
)
def test_an_expired_alert_never_concerns_anyone(expires: datetime | None, expected: bool) -> None:
    info = _info(ZONE_B, expires=expires)
    assert (
        concerns(_alert(info), info, _tenant(zones=["Tosc-B"]), level=Level.RED, now=NOW).concerned
        is expected
    )


@pytest.mark.parametrize(
    ("field", "value"), [("msg_type", "Ack"), ("msg_type", "Error"), ("scope", "Restricted")]
)
def test_system_messages_and_restricted_alerts_are_not_posted(field: str, value: str) -> None:
    info = _info(ZONE_B)
    assert not concerns(
        _alert(info, **{field: value}), info, _tenant(zones=["Tosc-B"]), level=Level.RED, now=NOW
    ).concerned


def test_an_alert_elsewhere_or_a_tenant_without_alerts_is_not_concerned() -> None:
    info = _info(ZONE_B)
    assert not concerns(_alert(info), info, _tenant(zones=["Tosc-C"]), level=Level.RED, now=NOW).concerned
    assert not concerns(_alert(info), info, _tenant(), level=Level.RED, now=NOW).concerned


def test_an_association_one_zone_alert_reaches_every_comune_in_the_zone() -> None:
    zone_c = Area("Toscana centrale", geocodes=(("Zona di Allerta", "Tosc-C"),))
    info = _info(ZONE_B, zone_c)
    alert = _alert(info)
    tenants = [
        _tenant("comune-a", zones=["Tosc-B"]),
        _tenant("comune-b", zones=["Tosc-B"], min_level="orange"),
        _tenant("comune-c", zones=["Tosc-C", "Tosc-B"]),
        _tenant("comune-d", zones=["Tosc-A1"]),
        _tenant("comune-e", zones=["Tosc-C"], min_level="red"),
    ]
    reached = [t.id for t in tenants if concerns(alert, info, t, level=Level.ORANGE, now=NOW).concerned]
    assert reached == ["comune-a", "comune-b", "comune-c"]
    # Each comune's post names its own zones.
    by_tenant = {t.id: matching_areas(info, t.alerts) for t in tenants if t.alerts}
    assert by_tenant["comune-a"] == (ZONE_B,)
    assert by_tenant["comune-c"] == (ZONE_B, zone_c)


@pytest.mark.parametrize(
    ("alert_fields", "tenant_fields", "level", "expires", "reason"),
    [
        (
            {"status": "Exercise"},
            {"zones": ["Tosc-B"]},
            Level.RED,
            NOW + timedelta(hours=1),
            "not a public alert",
        ),
        ({}, {"zones": ["Tosc-C"]}, Level.RED, NOW + timedelta(hours=1), "not for these areas"),
        ({}, {"zones": ["Tosc-B"]}, None, NOW + timedelta(hours=1), "no readable level"),
        (
            {},
            {"zones": ["Tosc-B"], "min_level": "red"},
            Level.ORANGE,
            NOW + timedelta(hours=1),
            "below minimum level",
        ),
        ({}, {"zones": ["Tosc-B"]}, Level.RED, NOW, "expired"),
        ({}, {"zones": ["Tosc-B"]}, Level.RED, NOW + timedelta(hours=1), None),
    ],
)
def test_concerns_says_why_not_and_which_areas_match_anyway(
    alert_fields: dict[str, Any],
    tenant_fields: dict[str, Any],
    level: Level | None,
    expires: datetime,
    reason: str | None,
) -> None:
    info = _info(ZONE_B, expires=expires)
    concern = concerns(_alert(info, **alert_fields), info, _tenant(**tenant_fields), level=level, now=NOW)
    assert (concern.reason, concern.concerned) == (reason, reason is None)
    assert concern.areas == (() if reason == "not for these areas" else (ZONE_B,))


def test_a_tenant_without_alerts_is_never_concerned() -> None:
    info = _info(ZONE_B)
    assert concerns(_alert(info), info, _tenant(), level=Level.RED, now=NOW).reason == "no alerts configured"
