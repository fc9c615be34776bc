"""Telegram rendering: HTML mode, escaped, at most 4096 visible UTF-16 units, the link always whole; a
photo caption (1024) when there is an image and the text fits one, the feed's alt text in it.

The sandbox's Telegram fake parses the markup on its own (devtools.sandbox.telegram.visible_text), so
the properties below check the renderer against an independent reading of the HTML."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import PermanentError, PostImage
from chalicelib.channels.telegram import CAPTION_LIMIT, MESSAGE_LIMIT, TelegramAdapter
from devtools.sandbox.counting import utf16_units
from devtools.sandbox.telegram import EntityParseError, visible_text
from tests.offline import no_secret

ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori  in via Roma:\n<strada chiusa>",
    summary="Da lunedì via Roma è chiusa al traffico (A & B).",
    link="https://www.comune.example.it/notizie?id=7&lang=it",
    categories=("Lavori pubblici", "Viabilità"),
)


@pytest.fixture(scope="module")
def adapter() -> TelegramAdapter:
    # Rendering never touches the network; the token provider would fail loudly if it were asked.
    return TelegramAdapter(chat="@comune_prova", token=no_secret, session=requests.Session())


def test_render_is_bold_title_summary_link_and_hashtags(adapter: TelegramAdapter) -> None:
    post = adapter.render(ANNOUNCEMENT)
    assert post.text == (
        "<b>Lavori in via Roma: &lt;strada chiusa&gt;</b>\n\n"
        "Da lunedì via Roma è chiusa al traffico (A &amp; B).\n\n"
        "https://www.comune.example.it/notizie?id=7&amp;lang=it\n\n"
        "#LavoriPubblici #Viabilità"
    )
    assert (post.parse_mode, post.limit, post.truncated) == ("HTML", MESSAGE_LIMIT, False)
    assert post.link == ANNOUNCEMENT.link
    assert post.length == utf16_units(visible_text(post.text))


def test_blocks_that_are_missing_leave_no_gap(adapter: TelegramAdapter) -> None:
    bare = Announcement(tenant="t", id="a", source="s", title="", summary="Solo testo.")
    assert adapter.render(bare).text == "Solo testo."


def test_length_is_counted_in_utf16_units_of_the_visible_text(adapter: TelegramAdapter) -> None:
    # 2100 emoji are 2100 graphemes but 4200 UTF-16 units: over Telegram's limit.
    post = adapter.render(replace(ANNOUNCEMENT, summary="😀 " * 2100))
    shown = visible_text(post.text)
    assert post.truncated
    assert post.length == utf16_units(shown) <= MESSAGE_LIMIT
    assert post.length > MESSAGE_LIMIT - 10  # cut close to the limit, not far below it
    assert shown.endswith("😀…\n\n" + ANNOUNCEMENT.link + "\n\n#LavoriPubblici #Viabilità")


def test_escaping_is_not_counted(adapter: TelegramAdapter) -> None:
    """&amp; is one visible character: a summary of ampersands fits as Telegram counts it."""
    post = adapter.render(replace(ANNOUNCEMENT, summary="& " * 1900))
    assert not post.truncated
    assert len(post.text) > MESSAGE_LIMIT


def test_a_link_longer_than_the_limit_is_refused(adapter: TelegramAdapter) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.render(replace(ANNOUNCEMENT, link="https://comune.example.it/" + "x" * MESSAGE_LIMIT))
    assert caught.value.reason == "link_too_long"


def test_the_independent_parser_refuses_what_telegram_refuses() -> None:
    """The oracle must be able to say no, or the properties below would prove nothing."""
    for markup in ["<p>x</p>", "<b>x", "a & b", "x </b>", "1 < 2", "<b><i>x</b></i>"]:
        with pytest.raises(EntityParseError):
            visible_text(markup)


PHOTO = "https://www.comune.example.it/foto/cantiere.jpg"


def _with_image(announcement: Announcement, alt: str = "") -> Announcement:
    return replace(announcement, image=Image(url=PHOTO, alt=alt))


def test_a_short_post_with_an_image_is_a_captioned_photo_describing_it(adapter: TelegramAdapter) -> None:
    post = adapter.render(_with_image(ANNOUNCEMENT, "Operai al lavoro  sull'asfalto <via Roma>"))
    assert post.image == PostImage(url=PHOTO, alt="Operai al lavoro sull'asfalto <via Roma>")
    assert post.text == (
        "<b>Lavori in via Roma: &lt;strada chiusa&gt;</b>\n\n"
        "Da lunedì via Roma è chiusa al traffico (A &amp; B).\n\n"
        "🖼 Operai al lavoro sull'asfalto &lt;via Roma&gt;\n\n"
        "https://www.comune.example.it/notizie?id=7&amp;lang=it\n\n"
        "#LavoriPubblici #Viabilità"
    )
    assert (post.limit, post.length) == (CAPTION_LIMIT, utf16_units(visible_text(post.text)))


@pytest.mark.parametrize("alt", ["", "Lavori  in via Roma: <strada chiusa>"])
def test_an_alt_text_that_says_nothing_new_is_left_out_of_the_caption(
    adapter: TelegramAdapter, alt: str
) -> None:
    post = adapter.render(_with_image(ANNOUNCEMENT, alt))
    assert post.image is not None
    assert "🖼" not in post.text
    assert post.text == adapter.render(ANNOUNCEMENT).text


def test_a_text_too_long_for_a_caption_is_a_message_without_the_photo(adapter: TelegramAdapter) -> None:
    post = adapter.render(_with_image(replace(ANNOUNCEMENT, summary="parola " * 200), "Il cantiere"))
    assert post.image is None
    assert post.limit == MESSAGE_LIMIT
    assert not post.truncated
    assert "🖼" not in post.text


def test_the_alt_text_is_shortened_to_what_the_caption_has_left(adapter: TelegramAdapter) -> None:
    bare = adapter.render(replace(ANNOUNCEMENT, summary="parola " * 125))
    assert CAPTION_LIMIT - 60 < bare.length < CAPTION_LIMIT - 20  # room for a short description only
    post = adapter.render(
        _with_image(replace(ANNOUNCEMENT, summary="parola " * 125), "Descrizione lunga " * 20)
    )
    shown = visible_text(post.text)
    assert post.length == utf16_units(shown) <= CAPTION_LIMIT
    assert post.length > CAPTION_LIMIT - 20
    assert "\n\n🖼 Descrizione lunga" in shown
    assert "…\n\nhttps://www.comune.example.it/" in shown


PIECES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["🇮🇹", "👨\u200d👩\u200d👧", "e\u0301", "\u0301", "😀", "&", "<b>", "</i>", ">", "&amp;", "\n\n"]
    ),
    st.builds(lambda word, n: word * n, st.sampled_from(["😀", "a", "è", "🇮🇹"]), st.integers(1, 2500)),
)
TEXTS = st.lists(PIECES, max_size=40).map("".join)
LINKS = st.builds(
    "https://{}.example.it/{}?q=1&r={}".format,
    st.from_regex(r"[a-z]{1,20}", fullmatch=True),
    st.from_regex(r"[a-z0-9/_-]{0,300}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{0,10}", fullmatch=True),
)


@settings(max_examples=150, deadline=None)
@given(
    title=TEXTS,
    summary=TEXTS,
    link=st.none() | LINKS,
    categories=st.lists(st.text(max_size=30), max_size=6).map(tuple),
    alt=st.none() | TEXTS,
)
def test_property_never_over_the_limit_well_formed_and_link_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...], alt: str | None
) -> None:
    adapter = TelegramAdapter(chat="@comune_prova", token=no_secret, session=requests.Session())
    image = None if alt is None else Image(url=PHOTO, alt=alt)
    post = adapter.render(
        Announcement(
            tenant="t",
            id="a",
            source="s",
            title=title,
            summary=summary,
            link=link,
            categories=categories,
            image=image,
        )
    )
    shown = visible_text(post.text)  # raises if the markup is not what Telegram accepts
    assert post.length == utf16_units(shown) <= post.limit
    assert post.limit == (CAPTION_LIMIT if post.image else MESSAGE_LIMIT)
    # A photo whenever the text fits a caption.
    assert (post.image is not None) == (image is not None and post.length <= CAPTION_LIMIT)
    if link is not None:
        assert link in shown.split("\n\n")
