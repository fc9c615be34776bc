"""Alert configuration: the per-tenant `alerts` section (regions, zones, location, boundary, minimum level)
and the `cap` source kind beside the CMS one, with `config check` messages that name the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import HttpUrl

from chalicelib.alerts.model import Level
from chalicelib.config.loader import ConfigError, parse_config
from chalicelib.config.models import CapSource, CmsSource, Tenant

PREFIX = "tenants[0](comune-a)"
NOT_A_REGION = "is not a MeteoAlarm region of Italy (EMMA_ID IT001 to IT020)"
NOT_A_ZONE = "is not a DPC alert zone code (like Tosc-B, Lomb-01, VDAo-A)"


def _tenant(alerts: dict[str, Any] | None, *sources: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "comune-a",
        "name": "Comune A",
        "sources": list(sources)
        or [{"id": "allerte", "kind": "cap", "url": "https://dpc.example.it/cap.xml"}],
        "channels": [{"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": "env:TG"}],
    }
    if alerts is not None:
        data["alerts"] = alerts
    return {"version": 1, "tenants": [data]}


def _parse(data: dict[str, Any]) -> Tenant:
    return parse_config(yaml.safe_dump(data, allow_unicode=True), "banditore.yaml").tenants[0]


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _parse(data)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_an_alert_tenant_with_every_field() -> None:
    tenant = _parse(
        _tenant(
            {
                "emma_ids": ["IT009"],
                "zones": ["Tosc-B", "Lomb-01", "VDAo-A", "Basi-E2"],
                "location": {"lat": 43.7696, "lon": 11.2558},
                "boundary": [[43.8, 11.1], [43.8, 11.4], [43.7, 11.4], [43.7, 11.1]],
                "min_level": "orange",
                "include_tests_in_sandbox": True,
            },
            {"id": "notizie", "url": "https://www.comune-a.it/feed"},
            {
                "id": "meteoalarm",
                "kind": "cap",
                "url": "https://feeds.meteoalarm.org/api/v1/warnings/feeds-italy",
                "format": "meteoalarm_json",
                "poll_every_seconds": 5,
            },
        )
    )
    assert tenant.alerts is not None
    assert tenant.alerts.minimum_level == Level.ORANGE
    assert tenant.alerts.boundary == [(43.8, 11.1), (43.8, 11.4), (43.7, 11.4), (43.7, 11.1)]
    assert [s.id for s in tenant.news_sources] == ["notizie"]
    assert [s.id for s in tenant.alert_sources] == ["meteoalarm"]
    assert isinstance(tenant.source("notizie"), CmsSource)
    assert tenant.alert_sources[0].format == "meteoalarm_json"


def test_defaults_yellow_no_tests_urgent_cap_every_15_seconds() -> None:
    tenant = _parse(_tenant({"zones": ["Tren-A"]}))
    assert tenant.alerts is not None
    assert (tenant.alerts.minimum_level, tenant.alerts.include_tests_in_sandbox) == (Level.YELLOW, False)
    source = tenant.source("allerte")
    assert isinstance(source, CapSource)
    assert (source.format, source.poll_every_seconds, source.priority) == ("cap", 15, "urgent")


def test_a_source_without_kind_is_still_a_cms_feed() -> None:
    tenant = _parse(_tenant(None, {"id": "notizie", "url": "https://www.comune-a.it/feed"}))
    assert tenant.alerts is None
    assert isinstance(tenant.source("notizie"), CmsSource)
    assert tenant.alert_sources == []


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        (
            {"emma_ids": ["IT009", "IT021"]},
            f"{PREFIX}.alerts.emma_ids[1]: 'IT021' {NOT_A_REGION}",
        ),
        (
            {"emma_ids": ["it009"]},
            f"{PREFIX}.alerts.emma_ids[0]: 'it009' {NOT_A_REGION}",
        ),
        (
            {"zones": ["Tosc_B"]},
            f"{PREFIX}.alerts.zones[0]: 'Tosc_B' {NOT_A_ZONE}",
        ),
        (
            {"zones": ["Toscana-B"]},
            f"{PREFIX}.alerts.zones[0]: 'Toscana-B' {NOT_A_ZONE}",
        ),
        (
            {"zones": ["Tosc-B"], "min_level": "green"},
            f"{PREFIX}.alerts.min_level: green alerts are never posted: use yellow, orange or red",
        ),
        (
            {"location": {"lat": 43.7, "lon": 11.2}, "boundary": [[43.8, 11.1], [43.8, 11.4], [43.8, 11.1]]},
            f"{PREFIX}.alerts.boundary: a boundary needs at least 3 distinct [lat, lon] points",
        ),
        (
            {"min_level": "orange"},
            f"{PREFIX}.alerts: give at least one of emma_ids, zones, location or boundary: "
            "otherwise no alert can concern this comune",
        ),
        ({"zones": ["Tosc-B"], "zone": "Tosc-C"}, f"{PREFIX}.alerts.zone: unknown field (typo?)"),
        ({"location": {"lat": 43.7}}, f"{PREFIX}.alerts.location.lon: required field is missing"),
    ],
)
def test_alerts_section_errors_name_the_field(alerts: dict[str, Any], expected: str) -> None:
    assert _problems(_tenant(alerts)) == [expected]


def test_coordinates_out_of_range_are_refused_where_they_are() -> None:
    problems = _problems(
        _tenant(
            {"location": {"lat": 143.7, "lon": 11.2}, "boundary": [[43.8, 11.1], [43.8, 211.4], [43.7, 11.4]]}
        )
    )
    assert [p.split(":")[0] for p in problems] == [
        f"{PREFIX}.alerts.location.lat",
        f"{PREFIX}.alerts.boundary[1][1]",
    ]


def test_a_min_level_that_is_not_a_colour_lists_the_choices() -> None:
    (problem,) = _problems(_tenant({"zones": ["Tosc-B"], "min_level": "viola"}))
    assert problem.startswith(f"{PREFIX}.alerts.min_level: ")
    assert all(colour in problem for colour in ("yellow", "orange", "red"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"id": "allerte", "kind": "cap", "url": "https://x.it/cap.xml", "poll_every_seconds": 4},
            f"{PREFIX}.sources[0](allerte).poll_every_seconds: Input should be greater than or equal to 5",
        ),
        (
            {"id": "allerte", "kind": "cap", "url": "https://x.it/cap.xml", "min_interval_seconds": 60},
            f"{PREFIX}.sources[0](allerte).min_interval_seconds: unknown field (typo?)",
        ),
        (
            {"id": "allerte", "kind": "cap"},
            f"{PREFIX}.sources[0](allerte).url: required field is missing",
        ),
        (
            {"id": "allerte", "kind": "rss", "url": "https://x.it/feed"},
            f"{PREFIX}.sources[0](allerte): kind: unknown source kind 'rss' (cms or cap)",
        ),
        (
            {"id": "notizie", "url": "https://x.it/feed", "format": "cap"},
            f"{PREFIX}.sources[0](notizie).format: unknown field (typo?)",
        ),
    ],
)
def test_source_errors_name_the_field_without_the_kind_tag(source: dict[str, Any], expected: str) -> None:
    assert _problems(_tenant({"zones": ["Tosc-B"]}, source)) == [expected]


def test_an_unknown_feed_format_lists_the_formats() -> None:
    source = {"id": "allerte", "kind": "cap", "url": "https://x.it/cap.xml", "format": "rss"}
    (problem,) = _problems(_tenant({"zones": ["Tosc-B"]}, source))
    assert problem.startswith(f"{PREFIX}.sources[0](allerte).format: ")
    assert all(name in problem for name in ("'cap'", "'meteoalarm_json'", "'meteoalarm_atom'"))


def test_an_alert_source_needs_an_alerts_section() -> None:
    assert _problems(_tenant(None)) == [
        f"{PREFIX}: sources: 'allerte' is an alert source, but there is no 'alerts' section saying which "
        "alerts concern this comune"
    ]


def test_sources_built_in_code_keep_their_kind() -> None:
    cap = CapSource(id="allerte", kind="cap", url=HttpUrl("https://x.it/cap.xml"))
    cms = CmsSource(id="notizie", url=HttpUrl("https://x.it/feed"))
    tenant = Tenant.model_validate(
        {"id": "comune-a", "name": "Comune A", "sources": [cms, cap], "alerts": {"zones": ["Tosc-B"]}}
    )
    assert tenant.sources == [cms, cap]


def test_routes_reach_alert_sources_too() -> None:
    data = _tenant({"zones": ["Tosc-B"]})
    data["tenants"][0]["routes"] = [{"source": "allerte", "channels": ["telegram"]}]
    assert [c.id for c in _parse(data).channels_for("allerte")] == ["telegram"]
