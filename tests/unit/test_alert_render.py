"""Alert posts in Italian: colour and emoji, hazard, when (Europe/Rome, across midnight and DST changes),
where, what to do, source and link; MeteoAlarm's disclaimer left out; every post within Telegram's and
Mastodon's limits after their renderers, with level, hazard and when always kept."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib.alerts.model import Alert, Area, Info, Level
from chalicelib.alerts.render import (
    DISCLAIMER_NOTE,
    HAZARD_LABELS,
    LEVEL_WORDS,
    MAX_DESCRIPTION,
    AlertFacts,
    PostKind,
    alert_post,
    clean_description,
    raised_notice,
    when_text,
    where_text,
)
from chalicelib.channels.mastodon import DEFAULT_LIMITS, MastodonAdapter
from chalicelib.channels.telegram import MESSAGE_LIMIT, TelegramAdapter
from devtools.sandbox.counting import utf16_units
from devtools.sandbox.mastodon import status_length
from devtools.sandbox.telegram import visible_text
from tests.offline import no_secret

SAMPLES = Path("/work/shared/samples")
METEOALARM_ITALY = SAMPLES / "meteoalarm-italy-warnings.json"
NOW = datetime.fromisoformat("2026-07-31T09:00:00+02:00")
ZONE_B = Area("Bassa Toscana", geocodes=(("Zona di Allerta", "Tosc-B"),))
LINK = "https://www.protezionecivile.gov.it/it/bollettino/2026-07-31"
COLOURS = {Level.YELLOW: ("🟡", "gialla"), Level.ORANGE: ("🟠", "arancione"), Level.RED: ("🔴", "rossa")}


ADAPTERS = (
    TelegramAdapter(chat="@ComuneProva", token=no_secret, session=requests.Session(), offline=True),
    MastodonAdapter(
        instance="https://mastodon.invalid", token=no_secret, session=requests.Session(), offline=True
    ),
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _facts(
    level: Level = Level.ORANGE,
    hazard: str = "temporali",
    *,
    areas: tuple[Area, ...] = (ZONE_B,),
    status: Any = "Actual",
    **info_fields: Any,
) -> AlertFacts:
    fields: dict[str, Any] = {
        "onset": _at("2026-07-31T14:00:00+02:00"),
        "expires": _at("2026-07-31T19:59:00+02:00"),
        "sender_name": "Centro Funzionale Regionale",
        "web": LINK,
    }
    info = Info(language="it-IT", event="Temporali", areas=areas, **(fields | info_fields))
    alert = Alert(
        identifier="a1", sender="s", sent=_at("2026-07-31T08:00:00+02:00"), status=status, msg_type="Alert"
    )
    return AlertFacts(alert=alert, info=info, level=level, hazard=hazard, areas=areas)


def _when(onset: str | None, expires: str | None, now: str) -> str:
    info = Info(
        language="it-IT",
        event="x",
        onset=_at(onset) if onset else None,
        expires=_at(expires) if expires else None,
    )
    alert = Alert(identifier="a", sender="s", sent=_at(now), status="Actual", msg_type="Alert")
    return when_text(info, alert, _at(now))


# --- level and hazard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "words"),
    [
        (Level.YELLOW, "🟡 Allerta gialla"),
        (Level.ORANGE, "🟠 Allerta arancione"),
        (Level.RED, "🔴 Allerta rossa"),
    ],
)
def test_colour_word_and_emoji_open_the_title(level: Level, words: str) -> None:
    post = alert_post(_facts(level), now=NOW)
    assert post.title == f"{words} per temporali, oggi (venerdì 31 luglio) dalle ore 14:00 alle ore 19:59"


@pytest.mark.parametrize(
    ("hazard", "label"),
    [
        ("idrogeologico", "per rischio idrogeologico"),
        ("idraulico", "per rischio idraulico"),
        ("vento", "per vento forte"),
        ("calore", "per ondata di calore"),
        ("neve", "per neve"),
        ("incendi", "per rischio incendi"),
        ("Temporali ", "per temporali"),
        ("altro", "per maltempo"),
        ("tsunami-xyz", "per maltempo"),
        ("", "per maltempo"),
    ],
)
def test_hazard_in_italian(hazard: str, label: str) -> None:
    assert f"Allerta arancione {label}," in alert_post(_facts(hazard=hazard), now=NOW).title


def test_every_hazard_key_of_the_parser_has_an_italian_label() -> None:
    from chalicelib.alerts.cap import HAZARDS  # the parser's keys: the two modules must agree

    assert set(HAZARDS) - {"altro"} == set(HAZARD_LABELS)
    for key in HAZARD_LABELS:
        assert f"per {HAZARD_LABELS[key]}," in alert_post(_facts(hazard=key), now=NOW).title


# --- when -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("onset", "expires", "now", "expected"),
    [
        (
            "2026-07-31T14:00:00+02:00",
            "2026-07-31T19:59:00+02:00",
            "2026-07-31T09:00:00+02:00",
            "oggi (venerdì 31 luglio) dalle ore 14:00 alle ore 19:59",
        ),
        # The DPC sample: tomorrow, the whole day.
        (
            "2026-07-31T00:00:00+02:00",
            "2026-07-31T23:59:59+02:00",
            "2026-07-30T15:11:00+02:00",
            "domani (venerdì 31 luglio), tutto il giorno",
        ),
        (
            "2026-07-31T00:00:00+02:00",
            "2026-08-02T23:59:59+02:00",
            "2026-07-30T15:11:00+02:00",
            "da domani (venerdì 31 luglio) a domenica 2 agosto",
        ),
        # MeteoAlarm's days end at 01:59 Rome time (23:59 UTC).
        (
            "2026-07-31T10:00:00+02:00",
            "2026-08-01T01:59:00+02:00",
            "2026-07-31T09:00:00+02:00",
            "dalle ore 10:00 di oggi (venerdì 31 luglio) alle ore 01:59 di domani (sabato 1 agosto)",
        ),
        (
            "2026-07-31T11:00:00+02:00",
            "2026-08-02T01:59:00+02:00",
            "2026-07-31T12:00:00+02:00",
            "in corso fino alle ore 01:59 di domenica 2 agosto",
        ),
        ("2026-07-31T11:00:00+02:00", None, "2026-07-31T12:00:00+02:00", "in corso"),
        # Only a preview shows an expired alert: it is never posted.
        (
            "2026-07-30T11:00:00+02:00",
            "2026-07-30T19:59:00+02:00",
            "2026-07-31T12:00:00+02:00",
            "terminata alle ore 19:59 di ieri (giovedì 30 luglio)",
        ),
        (
            "2026-07-31T14:00:00+02:00",
            None,
            "2026-07-31T12:00:00+02:00",
            "dalle ore 14:00 di oggi (venerdì 31 luglio)",
        ),
        # Times in UTC are shown in Rome's.
        (
            "2026-07-31T12:00:00Z",
            "2026-07-31T16:00:00Z",
            "2026-07-31T07:00:00Z",
            "oggi (venerdì 31 luglio) dalle ore 14:00 alle ore 18:00",
        ),
        # The year is said only when it is not this one.
        (
            "2027-01-01T00:00:00+01:00",
            "2027-01-01T23:59:00+01:00",
            "2026-12-31T20:00:00+01:00",
            "domani (venerdì 1 gennaio 2027), tutto il giorno",
        ),
    ],
)
def test_when_in_words(onset: str, expires: str | None, now: str, expected: str) -> None:
    assert _when(onset, expires, now) == expected


def test_tomorrow_across_midnight_in_rome_while_utc_is_still_today() -> None:
    # 23:30 in Rome is 21:30 UTC; 00:30 tomorrow in Rome is 22:30 UTC, the same UTC day.
    assert _when("2026-07-31T22:30:00Z", "2026-07-31T23:30:00Z", "2026-07-31T21:30:00Z") == (
        "domani (sabato 1 agosto) dalle ore 00:30 alle ore 01:30"
    )


def test_autumn_dst_change_shows_winter_time_on_the_day_itself() -> None:
    # 25 October 2026: clocks go back at 03:00 CEST. 22:30 UTC is 23:30 in Rome (CET), still "today".
    assert _when("2026-10-25T22:30:00Z", "2026-10-26T01:00:00Z", "2026-10-24T22:30:00Z") == (
        "dalle ore 23:30 di oggi (domenica 25 ottobre) alle ore 02:00 di domani (lunedì 26 ottobre)"
    )


def test_spring_dst_change_a_23_hour_day_still_has_a_tomorrow() -> None:
    # 29 March 2026 lasts 23 hours: 22:15 UTC that day is already 00:15 on Monday in Rome, less than
    # 24 hours after "now" (00:30 on Sunday), and it is tomorrow, not today.
    assert _when("2026-03-29T22:15:00Z", "2026-03-30T04:00:00Z", "2026-03-28T23:30:00Z") == (
        "domani (lunedì 30 marzo) dalle ore 00:15 alle ore 06:00"
    )


# --- where, description, instruction, source, link -------------------------------------------------


def test_where_names_areas_with_their_zone_codes_each_once() -> None:
    region = Area("Toscana", geocodes=(("EMMA_ID", "IT009"),))
    coded_only = Area("", geocodes=(("Zona di Allerta", "Tosc-C"),))
    assert where_text((ZONE_B, region, ZONE_B, coded_only)) == (
        "Dove: Bassa Toscana (zona di allerta Tosc-B); Toscana; zona di allerta Tosc-C"
    )
    assert where_text(()) == ""


@pytest.mark.parametrize(("count", "tail"), [(5, "E"), (6, "E e un'altra zona"), (8, "E e altre 3 zone")])
def test_where_names_five_areas_and_counts_the_rest(count: int, tail: str) -> None:
    areas = tuple(Area(chr(ord("A") + index)) for index in range(count))
    assert where_text(areas) == f"Dove: A; B; C; D; {tail}"


def _meteoalarm_italian_descriptions() -> list[str]:
    warnings = json.loads(METEOALARM_ITALY.read_text(encoding="utf-8"))["warnings"]
    return [
        info["description"]
        for warning in warnings
        for info in warning["alert"]["info"]
        if info["language"] == "it-IT"
    ]


def test_the_sample_has_italian_disclaimers_to_strip() -> None:
    descriptions = _meteoalarm_italian_descriptions()
    assert len(descriptions) == 10
    assert all("DISCLAIMER" in text and "Protezione Civile" in text for text in descriptions)


@pytest.mark.parametrize("description", _meteoalarm_italian_descriptions())
def test_meteoalarm_disclaimer_is_stripped_and_said_in_a_few_words(description: str) -> None:
    cleaned, had_disclaimer = clean_description(description)
    assert had_disclaimer
    assert "DISCLAIMER" not in cleaned
    assert "meteoam.it" not in cleaned
    assert cleaned == description.split("(DISCLAIMER", maxsplit=1)[0].strip()
    summary = alert_post(_facts(description=description), now=NOW).summary
    assert "DISCLAIMER" not in summary
    assert f"{cleaned}\n{DISCLAIMER_NOTE}" in summary


def test_a_description_without_disclaimer_has_no_note() -> None:
    assert clean_description("Piogge  intense.\n\n\nVento forte.  ") == (
        "Piogge intense.\nVento forte.",
        False,
    )
    assert DISCLAIMER_NOTE not in alert_post(_facts(description="Piogge intense."), now=NOW).summary


def test_a_disclaimer_without_its_closing_bracket_is_cut_to_the_end() -> None:
    assert clean_description('Vento forte. (DISCLAIMER: "Le informazioni') == ("Vento forte.", True)


def test_text_after_the_disclaimer_is_kept() -> None:
    text = 'Vento forte. (DISCLAIMER: "Le informazioni non sono allerte") Raffiche sui crinali.'
    assert clean_description(text) == ("Vento forte. Raffiche sui crinali.", True)


def test_dpc_placeholder_description_is_left_out() -> None:
    # The DPC sample's description: a template never filled in.
    assert clean_description("all_GIALLA PER DOMANI SU:") == ("", False)


def test_full_post_reads_where_source_description_instruction() -> None:
    facts = _facts(
        description="Temporali forti\nsulla costa.",
        instruction="  Evitare i sottopassi.\n\nNon sostare lungo i corsi d'acqua. ",
        sender_name="DIPARTIMENTO DI PROTEZIONE CIVILE",
    )
    post = alert_post(facts, now=NOW)
    assert post.summary == (
        "Dove: Bassa Toscana (zona di allerta Tosc-B)\n"
        "Fonte: Dipartimento di protezione civile\n\n"
        "Temporali forti\nsulla costa.\n\n"
        "Cosa fare: Evitare i sottopassi.\nNon sostare lungo i corsi d'acqua."
    )
    assert post.link == LINK


def test_long_descriptions_are_capped_at_a_word() -> None:
    post = alert_post(_facts(description="pioggia " * 200), now=NOW)
    block = post.summary.split("\n\n")[1]
    assert block.endswith("pioggia…")
    assert len(block) <= MAX_DESCRIPTION


@pytest.mark.parametrize(
    ("web", "source_url", "link"),
    [
        (LINK, "https://feed.example.it/cap.xml", LINK),
        ("", "https://feed.example.it/cap.xml", "https://feed.example.it/cap.xml"),
        ("www.meteoam.it", None, None),
        ("", None, None),
    ],
)
def test_the_link_is_the_alert_page_else_the_document(
    web: str, source_url: str | None, link: str | None
) -> None:
    facts = _facts(web=web)
    facts = replace(facts, alert=replace(facts.alert, source_url=source_url))
    assert alert_post(facts, now=NOW).link == link


# --- replies and level increases ------------------------------------------------------------------


def test_update_reply() -> None:
    post = alert_post(_facts(), now=NOW, kind="update")
    assert post.title == (
        "Aggiornamento: 🟠 Allerta arancione per temporali, "
        "oggi (venerdì 31 luglio) dalle ore 14:00 alle ore 19:59"
    )


def test_end_of_alert_reply() -> None:
    post = alert_post(_facts(Level.RED, "idraulico", description="Piena del fiume."), now=NOW, kind="end")
    assert post.title == "✅ Fine allerta rossa per rischio idraulico"
    assert post.summary == "Dove: Bassa Toscana (zona di allerta Tosc-B)\nFonte: Centro Funzionale Regionale"


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        (Level.YELLOW, Level.ORANGE, "⬆️ 🟠 Allerta innalzata da gialla ad arancione per temporali,"),
        (Level.ORANGE, Level.RED, "⬆️ 🔴 Allerta innalzata da arancione a rossa per temporali,"),
        (Level.YELLOW, Level.RED, "⬆️ 🔴 Allerta innalzata da gialla a rossa per temporali,"),
    ],
)
def test_level_increase_is_a_prominent_post(before: Level, after: Level, words: str) -> None:
    post = alert_post(_facts(after), now=NOW, kind="level_up", previous_level=before)
    assert post.title.startswith(words)
    assert post.title.endswith("oggi (venerdì 31 luglio) dalle ore 14:00 alle ore 19:59")
    # Its first words say the earlier notice no longer holds (a platform limit cuts from the end).
    assert post.summary.startswith(f"Sostituisce l'avviso di allerta {LEVEL_WORDS[before][1]}.\nDove: ")


def test_the_old_thread_is_told_that_a_new_notice_follows() -> None:
    notice = raised_notice(_facts(Level.ORANGE), previous_level=Level.YELLOW)
    assert notice.title == (
        "⬆️ 🟠 Allerta innalzata da gialla ad arancione per temporali: segue un nuovo avviso."
    )
    assert (notice.summary, notice.link) == ("", alert_post(_facts(), now=NOW).link)
    announcement = notice.announcement(tenant="comune-prova", announcement_id="x", source="allerte")
    assert (announcement.alert_change, announcement.priority) == ("level_up", "urgent")


@pytest.mark.parametrize(
    ("status", "mark"),
    [
        ("Test", "🧪 TEST — non è un'allerta reale. "),
        ("Exercise", "🧪 ESERCITAZIONE — non è un'allerta reale. "),
    ],
)
def test_tests_and_exercises_are_marked(status: str, mark: str) -> None:
    kinds: tuple[PostKind, ...] = ("post", "update", "level_up", "end")
    for kind in kinds:
        post = alert_post(_facts(status=status), now=NOW, kind=kind, previous_level=Level.YELLOW)
        assert post.title.startswith(mark)
    assert raised_notice(_facts(status=status), previous_level=Level.YELLOW).title.startswith(mark)
    assert not alert_post(_facts(), now=NOW).title.startswith("🧪")


@pytest.mark.parametrize(
    ("kind", "change"), [("post", "new"), ("update", "update"), ("level_up", "level_up"), ("end", "end")]
)
def test_each_announcement_says_what_it_does_to_its_thread(kind: PostKind, change: str) -> None:
    post = alert_post(_facts(), now=NOW, kind=kind, previous_level=Level.YELLOW)
    announcement = post.announcement(tenant="comune-prova", announcement_id="x", source="allerte")
    assert announcement.alert_change == change


# --- per platform ---------------------------------------------------------------------------------


def _rendered_lengths(facts: AlertFacts, **post_args: Any) -> list[tuple[str, int, int]]:
    """(text, length counted by the platform fake, limit) for Telegram and Mastodon's first post;
    the rest of a Mastodon thread is checked against the limit here."""
    announcement = alert_post(facts, now=NOW, **post_args).announcement(
        tenant="comune-prova", announcement_id="x", source="allerte"
    )
    telegram, mastodon = (adapter.render(announcement) for adapter in ADAPTERS)
    weight, limit = DEFAULT_LIMITS.characters_reserved_per_url, DEFAULT_LIMITS.max_characters
    assert all(status_length(piece, weight) <= limit for piece in mastodon.thread)
    return [
        (telegram.text, utf16_units(visible_text(telegram.text)), MESSAGE_LIMIT),
        (
            mastodon.text,
            status_length(mastodon.text, DEFAULT_LIMITS.characters_reserved_per_url),
            DEFAULT_LIMITS.max_characters,
        ),
    ]


def _sample_facts() -> list[AlertFacts]:
    """The MeteoAlarm sample's Italian blocks, built by hand (the parser is tested on its own)."""
    facts = []
    for warning in json.loads(METEOALARM_ITALY.read_text(encoding="utf-8"))["warnings"]:
        raw = warning["alert"]
        block = next(info for info in raw["info"] if info["language"] == "it-IT")
        areas = tuple(
            Area(a["areaDesc"], geocodes=tuple((g["valueName"], g["value"]) for g in a["geocode"]))
            for a in block["area"]
        )
        info = Info(
            language="it-IT",
            event=block["event"],
            onset=_at(block["onset"]),
            expires=_at(block["expires"]),
            sender_name=block["senderName"],
            description=block["description"],
            instruction=block["instruction"],
            web=block["web"],
            areas=areas,
        )
        alert = Alert(
            identifier=raw["identifier"],
            sender=raw["sender"],
            sent=_at(raw["sent"]),
            status=raw["status"],
            msg_type=raw["msgType"],
            infos=(info,),
        )
        facts.append(AlertFacts(alert=alert, info=info, level=Level.RED, hazard="calore", areas=areas))
    return facts


@pytest.mark.parametrize("facts", _sample_facts(), ids=lambda facts: facts.alert.identifier)
def test_sample_alerts_fit_telegram_and_mastodon(facts: AlertFacts) -> None:
    for text, length, limit in _rendered_lengths(facts):
        assert length <= limit
        assert "🔴 Allerta rossa per ondata di calore," in text
        assert facts.info.web in text
        assert "DISCLAIMER" not in text


def test_the_announcement_goes_on_the_urgent_lane() -> None:
    published = _at("2026-07-31T06:00:00Z")
    announcement = alert_post(_facts(), now=NOW).announcement(
        tenant="comune-prova", announcement_id="x", source="allerte", published=published
    )
    assert announcement.priority == "urgent"
    assert announcement.categories == ("Allerta meteo",)
    assert announcement.published is not None
    assert announcement.published.isoformat() == "2026-07-31T08:00:00+02:00"


_any_char = st.characters(codec="utf-8")
# Short texts of any characters, and long ones (a piece repeated up to thousands of times, spaces or
# not, emoji or not) that no platform can take whole.
_free_text = st.one_of(
    st.text(_any_char, max_size=80),
    st.builds(
        lambda piece, times: piece * times, st.text(_any_char, min_size=1, max_size=12), st.integers(0, 800)
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    description=_free_text,
    instruction=_free_text,
    area_names=st.lists(st.text(max_size=300), max_size=12),
    level=st.sampled_from([Level.YELLOW, Level.ORANGE, Level.RED]),
    hazard=st.sampled_from(sorted(HAZARD_LABELS)),
    kind=st.sampled_from(["post", "update", "level_up"]),
    hours=st.integers(min_value=-30, max_value=80),
    status=st.sampled_from(["Actual", "Test", "Exercise"]),
)
def test_property_never_over_the_limit_and_the_facts_always_kept(
    *,
    description: str,
    instruction: str,
    area_names: list[str],
    level: Level,
    hazard: str,
    kind: str,
    hours: int,
    status: str,
) -> None:
    onset = NOW + timedelta(hours=hours)
    facts = _facts(
        level,
        hazard,
        areas=tuple(Area(name) for name in area_names),
        status=status,
        description=description,
        instruction=instruction,
        onset=onset,
        expires=onset + timedelta(hours=9),
    )
    when = when_text(facts.info, facts.alert, NOW)
    emoji, colour = COLOURS[level]
    # A level increase is from the level below; there is none below yellow that was ever posted.
    kind = "post" if kind == "level_up" and level == Level.YELLOW else kind
    for text, length, limit in _rendered_lengths(facts, kind=kind, previous_level=Level(level - 1)):
        event("shortened" if "…" in text and "…" not in description + instruction else "whole")
        assert length <= limit
        assert f"{emoji} Allerta " in text
        assert f"{colour} per {HAZARD_LABELS[hazard]}, {when}" in text
        assert LINK in text
