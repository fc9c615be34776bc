"""The words of an alert post, in plain Italian: level (colour and emoji), hazard, when (Europe/Rome),
where, what to do, the source and its link. Pure functions, no I/O: the publisher and `banditore preview`
render the same text.

The facts that matter most (level, hazard, when) are the title. The channel renderers shorten a post
from the end of its summary first and keep the title and link, so those facts survive any platform
limit; where comes first in the summary for the same reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from chalicelib.alerts.areas import DPC_ZONE, geocodes_named
from chalicelib.alerts.model import Alert, Area, Info, Level
from chalicelib.announcements import AlertChange, Announcement
from chalicelib.channels.text import grapheme_count, join_blocks, shorten
from chalicelib.clock import ROME

# The same words as the thread decision's actions (chalicelib.alerts.threads.Action values).
PostKind = Literal["post", "update", "level_up", "end"]
# What each kind of post does to its thread, as the publisher reads it (it may edit for an update).
ALERT_CHANGES: dict[PostKind, AlertChange] = {
    "post": "new",
    "update": "update",
    "level_up": "level_up",
    "end": "end",
}

# (emoji, colour as the feminine adjective agreeing with "allerta")
LEVEL_WORDS: dict[Level, tuple[str, str]] = {
    Level.GREEN: ("🟢", "verde"),
    Level.YELLOW: ("🟡", "gialla"),
    Level.ORANGE: ("🟠", "arancione"),
    Level.RED: ("🔴", "rossa"),
}
# The parser's hazard keys, as they read after "Allerta gialla per ...".
HAZARD_LABELS: dict[str, str] = {
    "idrogeologico": "rischio idrogeologico",
    "idraulico": "rischio idraulico",
    "temporali": "temporali",
    "vento": "vento forte",
    "neve": "neve",
    "ghiaccio": "ghiaccio",
    "calore": "ondata di calore",
    "freddo": "freddo intenso",
    "pioggia": "piogge intense",
    "alluvione": "alluvioni",
    "mare": "mareggiate",
    "valanghe": "valanghe",
    "incendi": "rischio incendi",
    "nebbia": "nebbia",
}
# The parser's "altro", or a key missing here, is not shown raw: the post still says it is weather.
UNKNOWN_HAZARD = "maltempo"
# Test and Exercise alerts reach only the sandbox; even there nobody may take one for the real thing.
STATUS_MARKS = {
    "Test": "🧪 TEST — non è un'allerta reale. ",
    "Exercise": "🧪 ESERCITAZIONE — non è un'allerta reale. ",
}
CATEGORIES = ("Allerta meteo",)
# Enough to read on Telegram; Mastodon and the others shorten further from the end.
MAX_DESCRIPTION = 500
MAX_INSTRUCTION = 300
MAX_NAMED_AREAS = 5

WEEKDAYS = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")
MONTHS = (
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
)
_RELATIVE_DAYS = {-1: "ieri", 0: "oggi", 1: "domani"}

# MeteoAlarm appends to every Italian (and English) description a long note that it is not the official
# civil-protection alert: (DISCLAIMER: "…"). Cut to its closing quote and bracket, or to the end.
_DISCLAIMER = re.compile(r"\(?\s*DISCLAIMER\s*:.*?(?:\"\s*\)|\Z)", re.IGNORECASE | re.DOTALL)
DISCLAIMER_NOTE = "Avviso meteo: non è un'allerta ufficiale della Protezione Civile."
# Template residue such as the DPC's "all_GIALLA PER DOMANI SU:": a placeholder, not a description.
_TEMPLATE_RESIDUE = re.compile(r"\b[a-z]+_[A-Z]+\b")


@dataclass(frozen=True)
class AlertFacts:
    """What a post says, settled by its caller: the parser's level and hazard for this `info`, and the
    areas matched for one tenant (each comune of an association gets its own)."""

    alert: Alert
    info: Info
    level: Level
    hazard: str
    areas: tuple[Area, ...]


@dataclass(frozen=True)
class AlertPost:
    kind: PostKind
    title: str
    summary: str
    link: str | None

    def announcement(
        self,
        *,
        tenant: str,
        announcement_id: str,
        source: str,
        published: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> Announcement:
        """The post as the channel renderers take it, on the urgent lane."""
        return Announcement(
            tenant=tenant,
            id=announcement_id,
            source=source,
            title=self.title,
            summary=self.summary,
            link=self.link,
            categories=CATEGORIES,
            published=published.astimezone(ROME) if published else None,
            priority="urgent",
            kind="alert",
            valid_until=valid_until,
            alert_change=ALERT_CHANGES[self.kind],
        )


def alert_post(
    facts: AlertFacts, *, now: datetime, kind: PostKind = "post", previous_level: Level | None = None
) -> AlertPost:
    """A new alert ("post"), a reply in its thread ("update", "end"), or the prominent post of a higher
    level ("level_up", which names `previous_level` and says that its notice no longer holds)."""
    if kind == "end":
        title = f"✅ Fine allerta {LEVEL_WORDS[facts.level][1]} per {hazard_label(facts.hazard)}"
        summary = _header(facts)
    else:
        title = f"{_headline(facts, kind, previous_level)}, {when_text(facts.info, facts.alert, now)}"
        summary = _details(facts, _replaces(previous_level) if kind == "level_up" else "")
    return AlertPost(
        kind=kind,
        title=STATUS_MARKS.get(facts.alert.status, "") + title,
        summary=summary,
        link=_link(facts.info, facts.alert),
    )


def raised_notice(facts: AlertFacts, previous_level: Level) -> AlertPost:
    """The short reply in the thread of a raised alert, pointing readers to the new post that follows
    (the raised level is a new prominent post, and the old thread must not look current)."""
    mark = STATUS_MARKS.get(facts.alert.status, "")
    return AlertPost(
        kind="level_up",
        title=f"{mark}{_raised(facts, previous_level)}: segue un nuovo avviso.",
        summary="",
        link=_link(facts.info, facts.alert),
    )


def hazard_label(hazard: str) -> str:
    return HAZARD_LABELS.get(hazard.strip().casefold(), UNKNOWN_HAZARD)


def _headline(facts: AlertFacts, kind: PostKind, previous_level: Level | None) -> str:
    if kind == "level_up" and previous_level is not None:
        return _raised(facts, previous_level)
    emoji, colour = LEVEL_WORDS[facts.level]
    prefix = "Aggiornamento: " if kind == "update" else ""
    return f"{prefix}{emoji} Allerta {colour} per {hazard_label(facts.hazard)}"


def _raised(facts: AlertFacts, previous_level: Level) -> str:
    emoji, colour = LEVEL_WORDS[facts.level]
    before = LEVEL_WORDS[previous_level][1]
    # "ad" before a vowel, as Italian writes it: "da gialla ad arancione".
    to = "ad" if colour[0] in "aeiou" else "a"
    return f"⬆️ {emoji} Allerta innalzata da {before} {to} {colour} per {hazard_label(facts.hazard)}"


def _replaces(previous_level: Level | None) -> str:
    """The first line of a raised alert's post: the earlier notice no longer holds."""
    if previous_level is None:
        return ""
    return f"Sostituisce l'avviso di allerta {LEVEL_WORDS[previous_level][1]}."


def _details(facts: AlertFacts, replaces: str) -> str:
    description, had_disclaimer = clean_description(facts.info.description)
    instruction = _capped(_tidy(facts.info.instruction), MAX_INSTRUCTION)
    note = DISCLAIMER_NOTE if had_disclaimer else ""
    return join_blocks(
        "\n".join(line for line in (replaces, _header(facts)) if line),
        "\n".join(line for line in (_capped(description, MAX_DESCRIPTION), note) if line),
        f"Cosa fare: {instruction}" if instruction else "",
    )


def _header(facts: AlertFacts) -> str:
    """Where and who, short and first: a platform limit cuts the free text after them instead."""
    return "\n".join(line for line in (where_text(facts.areas), source_line(facts.info)) if line)


# --- when -----------------------------------------------------------------------------------------


def when_text(info: Info, alert: Alert, now: datetime) -> str:
    """When, in words, against `now` in Europe/Rome: "oggi (venerdì 31 luglio) dalle ore 14:00 alle ore
    19:59", "domani (sabato 1 agosto), tutto il giorno", "in corso fino alle ore 01:59 di domenica 2
    agosto"… Calendar days, not 24-hour spans, so the days of a DST change read right."""
    start = (info.onset or info.effective or alert.sent).astimezone(ROME)
    end = info.expires.astimezone(ROME) if info.expires else None
    today = now.astimezone(ROME).date()
    if start <= now:
        return _in_force(end, now, today)
    if end is None:
        return f"dalle ore {_clock(start)} di {_day(start.date(), today)}"
    if _is_whole_days(start, end):
        return _whole_days(start.date(), end.date(), today)
    if start.date() == end.date():
        return f"{_day(start.date(), today)} dalle ore {_clock(start)} alle ore {_clock(end)}"
    return (
        f"dalle ore {_clock(start)} di {_day(start.date(), today)} "
        f"alle ore {_clock(end)} di {_day(end.date(), today)}"
    )


def _in_force(end: datetime | None, now: datetime, today: date) -> str:
    if end is None:
        return "in corso"
    state = "in corso fino" if end > now else "terminata"
    return f"{state} alle ore {_clock(end)} di {_day(end.date(), today)}"


def _is_whole_days(start: datetime, end: datetime) -> bool:
    # The DPC's days run 00:00 to 23:59:59.
    return (start.hour, start.minute) == (0, 0) and (end.hour, end.minute) == (23, 59)


def _whole_days(first: date, last: date, today: date) -> str:
    if first == last:
        return f"{_day(first, today)}, tutto il giorno"
    return f"da {_day(first, today)} a {_day(last, today)}"


def _day(day: date, today: date) -> str:
    """ "oggi (venerdì 31 luglio)", "domani (…)", or the date alone; the year only when it is not this one."""
    name = f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"
    if day.year != today.year:
        name += f" {day.year}"
    relative = _RELATIVE_DAYS.get((day - today).days)
    return f"{relative} ({name})" if relative else name


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


# --- where, what, who -----------------------------------------------------------------------------


def area_name(area: Area) -> str:
    """The area as people know it, with the DPC zone code that the regional bulletins also use."""
    zones = geocodes_named(area, DPC_ZONE)
    description = _tidy(area.description).replace("\n", " ")
    if not zones:
        return description
    codes = ", ".join(zones)
    return f"{description} (zona di allerta {codes})" if description else f"zona di allerta {codes}"


def where_text(areas: Sequence[Area]) -> str:
    names = list(dict.fromkeys(name for name in map(area_name, areas) if name))
    if not names:
        return ""
    shown, hidden = names[:MAX_NAMED_AREAS], len(names) - MAX_NAMED_AREAS
    more = f" e altre {hidden} zone" if hidden > 1 else " e un'altra zona" if hidden == 1 else ""
    return f"Dove: {'; '.join(shown)}{more}"


def clean_description(text: str) -> tuple[str, bool]:
    """The description without MeteoAlarm's disclaimer or template residue; and whether a disclaimer
    was removed (the post then says in a few words what it said)."""
    stripped = _DISCLAIMER.sub("", text)
    description = _tidy(stripped)
    if _TEMPLATE_RESIDUE.search(description):
        description = ""
    return description, stripped != text


def source_line(info: Info) -> str:
    name = _tidy(info.sender_name).replace("\n", " ")
    if name.isupper():
        # "DIPARTIMENTO DI PROTEZIONE CIVILE" would be spelt out letter by letter by some screen readers.
        name = name.capitalize()
    return f"Fonte: {name}" if name else ""


def _link(info: Info, alert: Alert) -> str | None:
    for candidate in (info.web.strip(), (alert.source_url or "").strip()):
        if candidate.startswith(("https://", "http://")):
            return candidate
    return None


def _tidy(text: str) -> str:
    """One space between words, one line break between lines, no blank lines: a summary block must not
    contain the blank line that separates blocks."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _capped(text: str, limit: int) -> str:
    return shorten(text, lambda candidate: grapheme_count(candidate) <= limit) or ""
