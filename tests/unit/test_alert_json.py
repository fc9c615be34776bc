"""The alert snapshot's JSON: every alert the parsers can build comes back equal, the real samples
included; anything else is a ValueError."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.alerts.alert_json import alerts_from_json, alerts_to_json
from chalicelib.alerts.cap import parse_cap
from chalicelib.alerts.meteoalarm import parse_warnings_json
from chalicelib.alerts.model import Alert, Area, Circle, Info, Reference

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "alerts"

# The parsers read times as written, with their fixed offset (datetime.fromisoformat). A named zone
# would not do: PEP 495 makes a time in its DST gap or fold unequal to the same instant elsewhere.
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-4, minutes=-30))])
times = st.datetimes(timezones=zones)
texts = st.text(max_size=20)
pairs = st.tuples(texts, texts)
points = st.tuples(st.floats(allow_nan=False), st.floats(allow_nan=False))
areas = st.builds(
    Area,
    description=texts,
    polygons=st.lists(st.lists(points, max_size=4).map(tuple), max_size=2).map(tuple),
    circles=st.lists(st.builds(Circle, points, st.floats(allow_nan=False)), max_size=2).map(tuple),
    geocodes=st.lists(pairs, max_size=3).map(tuple),
)
infos = st.builds(
    Info,
    language=texts,
    event=texts,
    category=st.lists(texts, max_size=2).map(tuple),
    response_type=st.lists(texts, max_size=2).map(tuple),
    urgency=texts,
    severity=texts,
    certainty=texts,
    effective=st.none() | times,
    onset=st.none() | times,
    expires=st.none() | times,
    sender_name=texts,
    headline=texts,
    description=texts,
    instruction=texts,
    web=texts,
    parameters=st.lists(pairs, max_size=3).map(tuple),
    areas=st.lists(areas, max_size=2).map(tuple),
)
alerts = st.builds(
    Alert,
    identifier=texts,
    sender=texts,
    sent=times,
    status=st.sampled_from(["Actual", "Exercise", "System", "Test", "Draft"]),
    msg_type=st.sampled_from(["Alert", "Update", "Cancel", "Ack", "Error"]),
    scope=texts,
    references=st.lists(st.builds(Reference, texts, texts, texts), max_size=2).map(tuple),
    note=texts,
    infos=st.lists(infos, max_size=2).map(tuple),
    source_url=st.none() | texts,
    extra=st.dictionaries(texts, texts, max_size=2),
)


@given(st.lists(alerts, max_size=3))
def test_any_alert_comes_back_equal(found: list[Alert]) -> None:
    back = alerts_from_json(alerts_to_json(found))

    assert back == tuple(found)
    assert [a.sent.utcoffset() for a in back] == [a.sent.utcoffset() for a in found]  # the offset, too


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*cap*.xml")))
def test_every_real_cap_sample_comes_back_equal(sample: str) -> None:
    parsed = parse_cap((SAMPLES / sample).read_bytes(), source_url=f"https://example.org/{sample}")
    assert parsed
    assert alerts_from_json(alerts_to_json(parsed)) == parsed


def test_the_real_meteoalarm_warnings_come_back_equal() -> None:
    parsed = parse_warnings_json((SAMPLES / "meteoalarm-italy-warnings.json").read_bytes())
    assert parsed
    assert alerts_from_json(alerts_to_json(parsed)) == parsed


@pytest.mark.parametrize(
    "text", ["[]", '{"v": 2, "alerts": []}', '{"v": 1}', '{"v": 1, "alerts": [{"identifier": "x"}]}', "no"]
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        alerts_from_json(text)
