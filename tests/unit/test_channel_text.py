"""Counting, URLs, hashtags, escaping and fitting: the text helpers both renderers share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import PermanentError
from chalicelib.channels.text import (
    ELLIPSIS,
    PostParts,
    escape_html,
    fit_post,
    grapheme_count,
    hashtag,
    hashtags,
    plain_text,
    shorten,
    url_spans,
    url_weighted_length,
    utf16_length,
)

FLAG = "\U0001f1ee\U0001f1f9"  # 🇮🇹: two code points, one grapheme
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: five code points, one grapheme
E_ACUTE = "e\u0301"  # e + combining acute accent


@pytest.mark.parametrize(
    ("text", "graphemes", "utf16"),
    [
        ("", 0, 0),
        ("abc", 3, 3),
        ("città", 5, 5),
        (E_ACUTE, 1, 2),
        (FLAG, 1, 4),
        (FAMILY, 1, 8),
        ("😀a", 2, 3),
    ],
)
def test_counts(text: str, graphemes: int, utf16: int) -> None:
    assert grapheme_count(text) == graphemes
    assert utf16_length(text) == utf16


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("vedi https://comune.it/avvisi.", ["https://comune.it/avvisi"]),
        ("(https://comune.it/a?b=1&c=2), poi", ["https://comune.it/a?b=1&c=2"]),
        ("HTTP://Comune.IT/x e http://a.b", ["HTTP://Comune.IT/x", "http://a.b"]),
        ("https://comune.it:8443/x/y#z!", ["https://comune.it:8443/x/y#z"]),
        ("http://localhost/x, https://.it e www.comune.it", []),
    ],
)
def test_url_spans(text: str, urls: list[str]) -> None:
    assert [text[start:end] for start, end in url_spans(text)] == urls


def test_each_url_weighs_the_same_whatever_its_length() -> None:
    long_url = "https://www.comune.example.it/" + "x" * 200
    assert url_weighted_length(f"Leggi {long_url} e https://a.it.", url_weight=23) == 6 + 23 + 3 + 23 + 1
    assert url_weighted_length(f"{FLAG} ok", url_weight=23) == 4


def test_escape_html_escapes_only_what_telegram_requires() -> None:
    assert (
        escape_html("""<b>Tom & "Jerry"</b> l'altro""") == """&lt;b&gt;Tom &amp; "Jerry"&lt;/b&gt; l'altro"""
    )


@pytest.mark.parametrize(
    ("category", "tag"),
    [
        ("Lavori pubblici", "#LavoriPubblici"),
        ("servizi all'infanzia", "#ServiziAllInfanzia"),
        ("Sport & tempo libero", "#SportTempoLibero"),
        ("Covid-19", "#Covid19"),
        ("citta\u0300", "#Città"),  # decomposed accent, composed in the tag
        ("2026", None),
        (" - ", None),
    ],
)
def test_hashtag_is_camel_case(category: str, tag: str | None) -> None:
    assert hashtag(category) == tag


def test_hashtags_keep_order_and_drop_repeats() -> None:
    assert hashtags(("Viabilità", "lavori pubblici", "2026", "Lavori Pubblici")) == (
        "#Viabilità",
        "#LavoriPubblici",
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Strada chiusa per lavori", 100, "Strada chiusa per lavori"),
        ("Strada chiusa per lavori", 20, "Strada chiusa per…"),
        ("Strada chiusa, per lavori", 18, "Strada chiusa…"),
        ("Vedi https://comune.it/x oggi", 28, "Vedi https://comune.it/x …"),
        ("Precipitevolissimevolmente", 10, "Precipite…"),
        ("https://comune.it/un-link-molto-lungo", 10, ""),
        ("", 0, ""),
    ],
)
def test_shorten_cuts_after_a_word(text: str, limit: int, expected: str) -> None:
    assert shorten(text, lambda candidate: len(candidate) <= limit) == expected


def test_shorten_cuts_inside_a_word_between_graphemes_only() -> None:
    result = shorten(FLAG * 10, lambda text: utf16_length(text) <= 10)
    assert result == FLAG * 2 + ELLIPSIS


def test_shorten_returns_none_when_not_even_nothing_fits() -> None:
    assert shorten("testo", lambda text: len(text) < 0) is None


PARTS = PostParts(
    title="Avviso importante",
    summary="Da lunedì la strada è chiusa al traffico per lavori urgenti.",
    link="https://comune.it/avviso",
    hashtags=("#Viabilità",),
)


def test_plain_text_joins_blocks_with_blank_lines() -> None:
    assert plain_text(PARTS) == (
        "Avviso importante\n\n"
        "Da lunedì la strada è chiusa al traffico per lavori urgenti.\n\n"
        "https://comune.it/avviso\n\n"
        "#Viabilità"
    )
    assert plain_text(PostParts(title="Solo titolo", summary="")) == "Solo titolo"


def test_fit_post_shortens_the_summary_first() -> None:
    fitted, truncated = fit_post(PARTS, measure=len, limit=80)
    assert truncated
    assert fitted.title == PARTS.title
    assert fitted.summary == "Da lunedì la strada è…"
    assert (fitted.link, fitted.hashtags) == (PARTS.link, PARTS.hashtags)
    assert len(plain_text(fitted)) <= 80


def test_fit_post_then_the_title_then_the_hashtags() -> None:
    fitted, _ = fit_post(PARTS, measure=len, limit=50)
    assert (fitted.title, fitted.summary, fitted.hashtags) == ("Avviso…", "", PARTS.hashtags)
    fitted, _ = fit_post(PARTS, measure=len, limit=30)
    assert (fitted.title, fitted.summary, fitted.hashtags) == ("Avv…", "", ())
    fitted, _ = fit_post(PARTS, measure=len, limit=26)
    assert plain_text(fitted) == PARTS.link


def test_fit_post_leaves_a_fitting_post_alone() -> None:
    assert fit_post(PARTS, measure=len, limit=1000) == (PARTS, False)


def test_fit_post_refuses_a_link_longer_than_the_limit() -> None:
    with pytest.raises(PermanentError) as caught:
        fit_post(PARTS, measure=len, limit=10)
    assert caught.value.reason == "link_too_long"


TRICKY = st.sampled_from([FLAG, FAMILY, E_ACUTE, "\u0301", "\u200d", "😀", "è", " ", "\n", ",", "&", "<"])
URLS = st.builds(
    "https://{}.it/{}".format,
    st.from_regex(r"[a-z]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z0-9/_.-]{0,80}", fullmatch=True),
)
TEXTS = st.lists(st.one_of(st.text(max_size=40), TRICKY, URLS), max_size=60).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, limit=st.integers(min_value=0, max_value=400))
def test_shorten_property_fits_and_keeps_a_start_of_the_text(text: str, limit: int) -> None:
    def fits(candidate: str) -> bool:
        return grapheme_count(candidate) <= limit

    result = shorten(text, fits)
    assert result is not None  # the empty text always fits a non-negative limit
    assert fits(result)
    kept, source = result.removesuffix(ELLIPSIS).rstrip(), text.strip()
    assert source.startswith(kept)
    for start, end in url_spans(source):  # a URL is kept whole or not at all
        assert len(kept) <= start or len(kept) >= end


@settings(max_examples=200, deadline=None)
@given(
    title=TEXTS,
    summary=TEXTS,
    link=URLS,
    tags=st.lists(st.from_regex(r"#[A-Za-z]{1,15}", fullmatch=True), max_size=5),
    limit=st.integers(min_value=120, max_value=600),
)
def test_fit_post_property_fits_and_keeps_the_link(
    title: str, summary: str, link: str, tags: list[str], limit: int
) -> None:
    def measure(text: str) -> int:
        return url_weighted_length(text, url_weight=23)

    fitted, truncated = fit_post(PostParts(title, summary, link, tuple(tags)), measure=measure, limit=limit)
    assert measure(plain_text(fitted)) <= limit
    assert fitted.link == link
    assert truncated == (fitted != PostParts(title, summary, link, tuple(tags)))
