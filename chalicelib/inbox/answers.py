"""What a citizen's text says before staff read it: a danger report, a question the FAQ answers, a
question about the alert in force.

Matching is on words, never on patterns built from the config (a phrase like "c++ (urgente" is just
words, and no configured text can make matching slow): the text and each phrase are normalised the
same way — accents dropped, casefolded, every run of characters that are not letters or digits made
one space, a space at each end — and a phrase matches when it occurs in the text as whole words.
So "frana" finds "Una FRANA in via Roma!" but not "franato", and "dov'è il bollettino" finds
"bollettino". The search is CPython's substring search over at most MAX_MATCH_CHARS characters of
text: linear in the text for each phrase, whatever the text holds.

Automatic answers are in Italian (citizens read them) and say they are automatic.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chalicelib.alerts.model import Level
from chalicelib.alerts.render import LEVEL_WORDS, MONTHS, WEEKDAYS
from chalicelib.clock import ROME, parse_iso
from chalicelib.config.models import FaqEntry
from chalicelib.inbox import store
from chalicelib.storage import dynamo, keys
from chalicelib.storage.announcements import get_announcement

# Longer messages are matched on their beginning: what matters is said first, and the cost of a
# match stays bounded whatever a citizen pastes.
MAX_MATCH_CHARS = 10_000
AUTOMATIC_PREFIX = "Risposta automatica: "
EMERGENCY_LINE = "In caso di pericolo immediato chiama il 112."
# During an alert, a message with any of these is taken as a question about it. Words a worried
# citizen uses, whatever the hazard: the alert itself, schools (the 5:30 question), the weather.
ALERT_PHRASES = (
    "allerta",
    "allerte",
    "allertamento",
    "maltempo",
    "protezione civile",
    "bollettino",
    "scuola",
    "scuole",
    "codice giallo",
    "codice arancione",
    "codice rosso",
    "meteo",
    "temporale",
    "temporali",
    "pioggia",
    "piogge",
    "nubifragio",
    "vento",
    "raffiche",
    "neve",
    "nevicate",
    "ghiaccio",
    "gelate",
    "alluvione",
    "mareggiata",
    "mareggiate",
    "valanga",
    "valanghe",
    "nebbia",
    "ondata di calore",
    "rischio idrogeologico",
    "rischio idraulico",
)
_NOT_WORD = re.compile(r"[\W_]+")

AnswerSource = Literal["faq", "alert"]


@dataclass(frozen=True)
class Answer:
    source: AnswerSource  # recorded as the automatic message's author
    text: str


@dataclass(frozen=True)
class ActiveAlert:
    level: Level
    until: datetime | None
    title: str
    link: str | None


# ---- matching -------------------------------------------------------------------------------


def normalised(text: str) -> str:
    """The text as matching sees it: " una frana in via roma " (see the module notes)."""
    # Casefolded before and after decomposing: a Greek small alpha with its iota and its capital
    # form must meet, and so must compatibility forms that decompose to capitals (black-letter ones).
    decomposed = unicodedata.normalize("NFKD", text[:MAX_MATCH_CHARS].casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    words = _NOT_WORD.sub(" ", bare).strip()
    return f" {words} " if words else ""


@functools.lru_cache(maxsize=16_384)  # room for the largest config: 200 FAQ x 50 phrases
def _phrase(phrase: str) -> str:
    return normalised(phrase)  # the config's phrases, normalised once per process


def contains_any(normalised_text: str, phrases: Iterable[str]) -> bool:
    """Whether any phrase occurs as whole words in a text already normalised. A phrase with no
    letters or digits never matches."""
    return any((p := _phrase(phrase)) and p in normalised_text for phrase in phrases)


def is_danger_report(text: str, danger_words: Sequence[str]) -> bool:
    return contains_any(normalised(text), danger_words)


def faq_answer(text: str, faq: Sequence[FaqEntry]) -> Answer | None:
    """The first entry, in config order, with a phrase in the text."""
    words = normalised(text)
    for entry in faq:
        if contains_any(words, entry.phrases):
            return Answer("faq", AUTOMATIC_PREFIX + entry.answer)
    return None


def mentions_alert(text: str) -> bool:
    return contains_any(normalised(text), ALERT_PHRASES)


# ---- the answer -----------------------------------------------------------------------------


def automatic_answer(
    text: str, faq: Sequence[FaqEntry], active_alerts: Callable[[], Sequence[ActiveAlert]], now: datetime
) -> Answer | None:
    """At most one answer: the alert in force for a question about it (fresher and official),
    else the FAQ's. `active_alerts` is read only when the text mentions an alert."""
    if mentions_alert(text):
        alerts = active_alerts()
        if alerts:
            return Answer("alert", alert_status(alerts, now))
    return faq_answer(text, faq)


def alert_status(alerts: Sequence[ActiveAlert], now: datetime) -> str:
    """The most severe alert in force (the one lasting longest among equals), in plain Italian: its
    post's title, its level when the title no longer says it, until when, and the official link."""
    worst = max(alerts, key=lambda alert: (alert.level, alert.until.timestamp() if alert.until else math.inf))
    colour = LEVEL_WORDS[worst.level][1]
    lead = f"sono in vigore {len(alerts)} allerte; la più grave è" if len(alerts) > 1 else "è in vigore"
    level = "" if colour in worst.title.casefold() else f" (ora allerta {colour})"
    until = f", fino {_until(worst.until, now)}" if worst.until else ""
    lines = [f"{AUTOMATIC_PREFIX}{lead} «{worst.title}»{level}{until}."]
    if worst.link:
        lines.append(f"Aggiornamenti ufficiali: {worst.link}")
    return "\n".join([*lines, EMERGENCY_LINE])


def _until(moment: datetime, now: datetime) -> str:
    """ "alle ore 18:00 di oggi", "alle ore 23:59 di martedì 24 novembre" (Europe/Rome)."""
    local = moment.astimezone(ROME)
    days = (local.date() - now.astimezone(ROME).date()).days
    day = {0: "oggi", 1: "domani"}.get(
        days, f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]}"
    )
    return f"alle ore {local:%H:%M} di {day}"


def active_alerts(tenant: str, now: datetime) -> list[ActiveAlert]:
    """The alert threads in force for the tenant, each with its first post's title and link."""
    found: list[ActiveAlert] = []
    for page in store.partition_pages(keys.active_alert_pk(tenant), ConsistentRead=True):
        for item in map(dynamo.from_dynamo, page["Items"]):
            until = parse_iso(item["until"]) if item.get("until") else None
            if until is not None and until <= now:
                continue
            announcement = get_announcement(tenant, str(item["sk"]))
            if announcement is not None:
                found.append(
                    ActiveAlert(Level(int(item["level"])), until, announcement.title, announcement.link)
                )
    return found
