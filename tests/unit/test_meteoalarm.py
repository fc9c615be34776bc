"""MeteoAlarm's JSON warnings list and Atom feed: the real samples, the shapes they vary in, the
refusals, and fuzz tests (any input gives a result or an AlertError)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.alerts.cap import alert_level, hazard, preferred_info
from chalicelib.alerts.errors import AlertError
from chalicelib.alerts.meteoalarm import MAX_LIST_BYTES, AtomEntry, AtomIndex, parse_atom, parse_warnings_json
from chalicelib.alerts.model import Alert, Level, Reference
from tests.unit.test_cap_parse import SAMPLES, mutations_of, use_as_posts

LIST_URL = "https://feeds.meteoalarm.org/api/v1/warnings/feeds-italy"
ATOM_URL = "https://feeds.meteoalarm.org/feeds/meteoalarm-legacy-atom-france"
JSON_SAMPLE = (SAMPLES / "meteoalarm-italy-warnings.json").read_bytes()
ATOM_SAMPLE = (SAMPLES / "meteoalarm-atom-france.xml").read_bytes()
CEST = timezone(timedelta(hours=2))
EMMA_IDS = {f"IT{n:03d}" for n in range(1, 21)}
SENDER = "aerocnmca.1sv.prv1@aeronautica.difesa.it"


def warning(**fields: Any) -> dict[str, Any]:
    """A MeteoAlarm warning in the JSON shape, with these alert fields replaced."""
    alert = {
        "identifier": "2.49.0.0.380.3.IT.1",
        "sender": SENDER,
        "sent": "2026-07-31T11:59:03+02:00",
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        "info": [{"language": "it-IT", "event": "Allerta", "category": ["Met"], "area": []}],
    }
    return {"alert": alert | fields, "uuid": "0fcf6f1c"}


def read_json(*warnings: object) -> tuple[Alert, ...]:
    return parse_warnings_json(json.dumps({"warnings": list(warnings)}).encode(), url=LIST_URL)


# --- JSON: the real sample ---


def test_italy_json_sample() -> None:
    alerts = parse_warnings_json(JSON_SAMPLE, url=LIST_URL + "/")

    assert len(alerts) == 10
    assert Counter(alert.msg_type for alert in alerts) == {"Update": 9, "Alert": 1}
    assert {alert.sender for alert in alerts} == {SENDER}
    assert all(len(alert.references) == (alert.msg_type == "Update") for alert in alerts)
    shown = [preferred_info(alert) for alert in alerts]
    assert all(info is not None and info.language == "it-IT" for info in shown)
    levels = [alert_level(info) for info in shown if info is not None]
    assert set(levels) == {Level.GREEN, Level.YELLOW, Level.ORANGE, Level.RED}
    geocodes = {
        code for alert in alerts for info in alert.infos for area in info.areas for code in area.geocodes
    }
    assert {name for name, _ in geocodes} == {"EMMA_ID"}
    assert {value for _, value in geocodes} <= EMMA_IDS


def test_italy_json_first_warning_in_detail() -> None:
    alert = parse_warnings_json(JSON_SAMPLE, url=LIST_URL)[0]

    assert (alert.identifier, alert.sent) == (
        "2.49.0.0.380.3.IT.260731115902.089",
        datetime(2026, 7, 31, 11, 59, 3, tzinfo=CEST),
    )
    assert alert.references == (
        Reference(SENDER, "2.49.0.0.380.3.IT.260730104551.067", "2026-07-30T10:45:52+02:00"),
    )
    assert alert.extra == {"uuid": "0fcf6f1c-c7f4-4ef7-9a0e-579ef8f4ebfa"}
    assert alert.source_url == LIST_URL + "/0fcf6f1c-c7f4-4ef7-9a0e-579ef8f4ebfa"
    english, italian = alert.infos
    assert preferred_info(alert) is italian
    assert (english.language, italian.event, italian.headline) == (
        "en-GB",
        "Arancione Onda Di Calore Allerta",
        "Allerta Onda Di Calore Arancione per l'Italia - Lazio",
    )
    assert (italian.category, italian.response_type, italian.severity) == (("Met",), ("Monitor",), "Severe")
    assert italian.parameters == (
        ("awareness_level", "3; orange; Severe"),
        ("awareness_type", "5; High-temperature"),
    )
    assert italian.effective == italian.onset == datetime(2026, 7, 31, 11, tzinfo=CEST)
    assert [(area.description, area.geocodes) for area in italian.areas] == [
        ("Lazio", (("EMMA_ID", "IT012"),))
    ]
    assert (alert_level(italian), hazard(italian)) == (Level.ORANGE, "calore")


# --- JSON: shapes and refusals ---


def test_an_empty_list_is_a_quiet_day() -> None:
    assert read_json() == ()


def test_single_values_stand_for_lists_and_odd_values_are_ignored() -> None:
    info = {"language": "it-IT", "event": "Vento", "category": "Met", "responseType": None, "web": True}
    info["area"] = {"areaDesc": "Toscana", "geocode": {"valueName": "EMMA_ID", "value": "IT009"}}
    [alert] = read_json(warning(info=info))

    [only] = alert.infos
    assert (only.category, only.response_type, only.web) == (("Met",), (), "")
    assert only.areas[0].geocodes == (("EMMA_ID", "IT009"),)


def test_text_is_cleaned_and_damaged_utf8_repaired() -> None:
    body = json.dumps({"warnings": [warning(note="a\u0001b\ud800c@")]}).encode()
    [alert] = parse_warnings_json(b"\xef\xbb\xbf" + body.replace(b"@", b" citt\xe0"))

    assert alert.note == "abc città"
    assert alert.source_url is None  # no list URL given


def test_a_broken_warning_does_not_hide_the_others() -> None:
    alerts = read_json(
        warning(), {"uuid": "no-alert"}, warning(status="Rumour"), "text", warning(identifier="b")
    )

    assert [alert.identifier for alert in alerts] == ["2.49.0.0.380.3.IT.1", "b"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"warnings": [', "malformed"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed"),  # deeper than json nests: still an AlertError
        (b"<html></html>", "malformed"),
        (b'{"alerts": []}', "not_cap"),
        (b'{"warnings": {}}', "not_cap"),
        (json.dumps({"warnings": [warning(sent="31/07/2026")]}).encode(), "bad_value"),
        (json.dumps({"warnings": [{"alert": {"identifier": "x"}}]}).encode(), "missing_field"),
        (b" " * (MAX_LIST_BYTES + 1), "too_large"),
    ],
)
def test_json_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(AlertError) as raised:
        parse_warnings_json(body)
    assert raised.value.reason == reason


# --- Atom ---


def atom(*entries: str, head: str = "") -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:c="urn:oasis:names:tc:emergency:cap:1.2">'
        f"{head}{''.join(f'<entry>{entry}</entry>' for entry in entries)}</feed>"
    ).encode()


def test_france_atom_sample_one_entry_per_identifier() -> None:
    index = parse_atom(ATOM_SAMPLE, url=ATOM_URL)

    assert index == AtomIndex(
        entries=(
            AtomEntry(
                identifier="2.49.0.0.250.0.FR.20221207160058.764028",
                cap_url="https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/04d497d4-d114-4d6b-93ba-13fa7ed577fe",
                msg_type="Alert",
                status="Actual",
                sent=datetime(2022, 12, 7, 15, 0, 58, tzinfo=UTC),
                expires=datetime(2022, 12, 8, 15, tzinfo=UTC),
            ),
            AtomEntry(
                identifier="2.49.0.0.250.0.FR.20221207060126.964028",
                cap_url="https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/2f32f9f9-06df-48aa-b0a0-10493ea07c51",
                msg_type="Update",
                status="Actual",
                sent=datetime(2022, 12, 7, 5, 1, 26, tzinfo=UTC),
                expires=datetime(2022, 12, 7, 5, 1, tzinfo=UTC),
            ),
        ),
        hub="https://pubsubhubbub.appspot.com/",
        topic=ATOM_URL,
    )
    assert ATOM_SAMPLE.count(b"<entry>") == 12


def test_atom_entries_of_one_identifier_merge() -> None:
    index = parse_atom(
        atom(
            "<c:identifier>a</c:identifier><c:msgType>update</c:msgType><c:expires>2026-07-31T10:00:00Z</c:expires>",
            '<c:identifier>a</c:identifier><link type="application/cap+xml" href="/cap/a"/>'
            "<c:expires>2026-07-31T12:00:00+00:00</c:expires><c:status>Test</c:status>",
            '<c:identifier>b</c:identifier><link type="application/cap+xml" href="ftp://x/b"/><c:sent>soon</c:sent>',
            '<title>no identifier</title><link type="application/cap+xml" href="/cap/c"/>',
        ),
        url="https://feeds.example.org/feed",
    )

    assert index == AtomIndex(
        entries=(
            AtomEntry(
                identifier="a",
                cap_url="https://feeds.example.org/cap/a",
                msg_type="Update",
                status="Test",
                sent=None,
                expires=datetime(2026, 7, 31, 12, tzinfo=UTC),
            ),
            AtomEntry(identifier="b", cap_url=None, msg_type=None, status=None, sent=None, expires=None),
        ),
        hub=None,
        topic=None,
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ((SAMPLES / "dpc-cap-2026-07-30-quiet-day.xml").read_bytes(), "not_a_feed"),
        (b'<!DOCTYPE feed [<!ENTITY x "x">]><feed>&x;</feed>', "unsafe_xml"),
        (b"<feed><entry>", "malformed"),
        (b"<!DOCTYPE html><html><body>Service Unavailable</body></html>", "not_cap"),
    ],
)
def test_atom_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(AlertError) as raised:
        parse_atom(body, url=ATOM_URL)
    assert raised.value.reason == reason


# --- fuzz ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=8,
)
CAP_KEYS = ["identifier", "sender", "sent", "status", "msgType", "references", "info", "area", "geocode"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(CAP_KEYS) | st.text(max_size=8), json_values, max_size=6))
def test_any_json_alert_gives_alerts_or_an_alert_error(fields: dict[str, Any]) -> None:
    with contextlib.suppress(AlertError):
        use_as_posts(read_json(warning(**fields)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations_of([JSON_SAMPLE]) | st.binary(max_size=500))
def test_any_json_bytes_give_alerts_or_an_alert_error(body: bytes) -> None:
    with contextlib.suppress(AlertError):
        use_as_posts(parse_warnings_json(body))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations_of([ATOM_SAMPLE]))
def test_any_atom_mutation_gives_an_index_or_an_alert_error(body: bytes) -> None:
    with contextlib.suppress(AlertError):
        parse_atom(body, url=ATOM_URL)
