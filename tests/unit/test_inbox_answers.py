"""Matching a citizen's text: danger words, FAQ phrases and alert questions are found as whole words
whatever the case, accents and punctuation; configured text is never a pattern; any text is matched
without error in bounded time; the automatic answer is at most one, the alert's first."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chalicelib.alerts.model import Level
from chalicelib.config.models import DEFAULT_DANGER_WORDS, FaqEntry
from chalicelib.inbox.answers import (
    MAX_MATCH_CHARS,
    ActiveAlert,
    alert_status,
    automatic_answer,
    faq_answer,
    is_danger_report,
    mentions_alert,
    normalised,
)

NOW = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)  # 5:30 in Rome, the schools question's hour
FAQ = [
    FaqEntry(phrases=["orari anagrafe", "orario dell'anagrafe"], answer="Dal lunedì al venerdì, 9-12."),
    FaqEntry(phrases=["raccolta rifiuti", "anagrafe"], answer="Vedi il calendario della raccolta."),
]
ORANGE = ActiveAlert(
    Level.ORANGE,
    NOW + timedelta(hours=20),
    "🟠 Allerta arancione per rischio idrogeologico",
    "https://www.protezionecivile.example.it/allerte/1",
)


def test_normalised_text_is_plain_lowercase_words_between_spaces() -> None:
    assert (
        normalised("Dov'è la FRANA?!  Via   Città—Ponte_Vecchio")
        == " dov e la frana via citta ponte vecchio "
    )
    assert normalised("ﬁne PERICOLO ③") == " fine pericolo 3 "  # compatibility forms fold too
    assert normalised("?!… ") == ""


@pytest.mark.parametrize(
    "text",
    [
        "C'è una frana in via Roma",
        "FRANA!!!",
        "franà sulla provinciale",  # an accent typed by mistake
        "albero   caduto davanti alla scuola",
        "Fuga di gas, via Dante 3",
    ],
)
def test_danger_words_are_found_as_words(text: str) -> None:
    assert is_danger_report(text, DEFAULT_DANGER_WORDS)


@pytest.mark.parametrize(
    "text", ["Il terreno è franato?", "alberi caduti? no, alberello", "gasolio in strada"]
)
def test_a_danger_word_inside_another_word_is_not_a_match(text: str) -> None:
    assert not is_danger_report(text, ["frana", "albero caduto", "gas"])


def test_configured_words_are_words_not_patterns() -> None:
    words = ["a.*b", "(x+)+$", "[", "c++"]
    assert not is_danger_report("aXXXb xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx!", words)
    assert is_danger_report("Ho scritto c++ (non è un pericolo)", ["c++"])  # "c" as a word, like the phrase
    assert not is_danger_report("anything", ["?!", "   "])  # no letters: never a match


def test_the_first_faq_entry_in_config_order_answers() -> None:
    answer = faq_answer("Salve, l'orario dell'Anagrafe di sabato?", FAQ)
    assert answer is not None
    assert answer.source == "faq"
    assert answer.text == "Risposta automatica: Dal lunedì al venerdì, 9-12."
    assert faq_answer("Passa la raccolta rifiuti oggi?", FAQ) == faq_answer("anagrafe", FAQ)
    assert faq_answer("Grazie mille", FAQ) is None


def test_alert_questions_are_recognised() -> None:
    assert mentions_alert("Domani le scuole sono chiuse?")
    assert mentions_alert("c'è l'ALLERTA meteo?")
    assert mentions_alert("Quando finisce il maltempo")
    assert not mentions_alert("Quando apre l'anagrafe?")


def test_during_an_alert_its_status_answers_before_the_faq_and_only_then() -> None:
    calls: list[int] = []

    def alerts() -> list[ActiveAlert]:
        calls.append(1)
        return [ORANGE]

    answer = automatic_answer("Allerta: è aperta l'anagrafe?", FAQ, alerts, NOW)
    assert answer is not None and answer.source == "alert"
    assert automatic_answer("Orari anagrafe?", FAQ, alerts, NOW) == faq_answer("Orari anagrafe?", FAQ)
    assert len(calls) == 1  # alerts are read only for a question about one
    no_alert = automatic_answer("Allerta: è aperta l'anagrafe?", FAQ, list, NOW)
    assert no_alert is not None and no_alert.source == "faq"
    assert automatic_answer("Scuole chiuse?", [], list, NOW) is None


def test_the_alert_status_is_the_most_severe_alert_with_its_link_in_italian() -> None:
    yellow = ActiveAlert(Level.YELLOW, NOW + timedelta(days=3), "🟡 Allerta gialla per vento forte", None)
    assert alert_status([yellow, ORANGE], NOW) == (
        "Risposta automatica: sono in vigore 2 allerte; la più grave è «🟠 Allerta arancione per rischio "
        "idrogeologico», fino alle ore 01:30 di domani.\n"
        "Aggiornamenti ufficiali: https://www.protezionecivile.example.it/allerte/1\n"
        "In caso di pericolo immediato chiama il 112."
    )
    assert alert_status([yellow], NOW) == (
        "Risposta automatica: è in vigore «🟡 Allerta gialla per vento forte», fino alle ore 05:30 di "
        "giovedì 26 novembre.\nIn caso di pericolo immediato chiama il 112."
    )
    lowered = ActiveAlert(Level.YELLOW, None, ORANGE.title, ORANGE.link)
    assert alert_status([lowered], NOW).startswith(
        f"Risposta automatica: è in vigore «{ORANGE.title}» (ora allerta gialla).\n"
    )


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=2_000), words=st.lists(st.text(max_size=100), max_size=20))
def test_any_text_and_any_words_match_without_error(text: str, words: list[str]) -> None:
    is_danger_report(text, words)
    mentions_alert(text)
    assert normalised(text) == normalised(normalised(text))


@settings(max_examples=100, deadline=None)
@given(word=st.text(alphabet=st.characters(categories=["Ll"]), min_size=1, max_size=20))
def test_a_word_is_found_wherever_it_stands_between_other_words(word: str) -> None:
    assume(word.upper().casefold() == word.casefold())  # not the Turkish dotless i, whose capital is "I"
    assert is_danger_report(f"prima, {word.upper()}! dopo", [word]) == bool(normalised(word).strip())


def test_matching_is_fast_on_hostile_text_and_a_full_config() -> None:
    faq = [FaqEntry(phrases=[f"aaaa aaaa b{i} {j}" for j in range(50)], answer="x") for i in range(200)]
    hostile = "aaaa " * (MAX_MATCH_CHARS // 5) + "b"
    start = time.perf_counter()
    assert faq_answer(hostile * 10, faq) is None  # 10,000 phrases, longer text than is matched
    assert is_danger_report(hostile, DEFAULT_DANGER_WORDS * 10) is False
    assert time.perf_counter() - start < 2.0
