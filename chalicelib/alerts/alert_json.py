"""Alerts as JSON, for the parsed-alerts snapshot an announce job reads instead of the feed
(chalicelib/storage/alert_feeds.py). Exact: `alerts_from_json(alerts_to_json(a)) == a` for every
alert the parsers can build (times keep their offset, floats their repr, tuples their order).
Field names are spelt out rather than derived, so a field added to the model without a line here
fails the round-trip tests instead of vanishing from snapshots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from chalicelib.alerts.model import Alert, Area, Circle, Info, Point, Reference

FORMAT_VERSION = 1


def alerts_to_json(alerts: Sequence[Alert]) -> str:
    return json.dumps(
        {"v": FORMAT_VERSION, "alerts": [asdict(alert) for alert in alerts]},
        default=_time,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def alerts_from_json(text: str | bytes) -> tuple[Alert, ...]:
    """The alerts of a snapshot. Raises ValueError on anything that alerts_to_json did not write."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise ValueError("not an alert snapshot of this version")
    try:
        return tuple(_alert(item) for item in data["alerts"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"not an alert snapshot: {error!r}") from None


def _time(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of an alert")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _pairs(values: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in values)


def _point(value: list[float]) -> Point:
    latitude, longitude = value
    return (latitude, longitude)


def _alert(data: dict[str, Any]) -> Alert:
    return Alert(
        identifier=data["identifier"],
        sender=data["sender"],
        sent=datetime.fromisoformat(data["sent"]),
        status=data["status"],
        msg_type=data["msg_type"],
        scope=data["scope"],
        references=tuple(Reference(r["sender"], r["identifier"], r["sent"]) for r in data["references"]),
        note=data["note"],
        infos=tuple(_info(info) for info in data["infos"]),
        source_url=data["source_url"],
        extra=dict(data["extra"]),
    )


def _info(data: dict[str, Any]) -> Info:
    return Info(
        language=data["language"],
        event=data["event"],
        category=tuple(data["category"]),
        response_type=tuple(data["response_type"]),
        urgency=data["urgency"],
        severity=data["severity"],
        certainty=data["certainty"],
        effective=_when(data["effective"]),
        onset=_when(data["onset"]),
        expires=_when(data["expires"]),
        sender_name=data["sender_name"],
        headline=data["headline"],
        description=data["description"],
        instruction=data["instruction"],
        web=data["web"],
        parameters=_pairs(data["parameters"]),
        areas=tuple(_area(area) for area in data["areas"]),
    )


def _area(data: dict[str, Any]) -> Area:
    return Area(
        description=data["description"],
        polygons=tuple(tuple(_point(p) for p in polygon) for polygon in data["polygons"]),
        circles=tuple(Circle(_point(c["center"]), c["radius_km"]) for c in data["circles"]),
        geocodes=_pairs(data["geocodes"]),
    )
