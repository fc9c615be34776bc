"""Facebook, Instagram and Threads rendering: never over the limit as the sandbox's fakes count it (their
own counters, not the adapters'), the link always whole, Instagram's 30 hashtags, Threads' emoji
counted in UTF-8 bytes and its long texts split into at most `max_thread_posts` pieces."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.facebook import MESSAGE_LIMIT, FacebookAdapter
from chalicelib.channels.instagram import CAPTION_LIMIT, MAX_HASHTAGS, InstagramAdapter
from chalicelib.channels.text import RenderOptions
from chalicelib.channels.threads import TEXT_LIMIT, ThreadsAdapter, threads_length
from devtools.sandbox.counting import utf16_units
from devtools.sandbox.meta import HASHTAG, threads_units
from tests.offline import NoNetwork, no_secret

ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori in via Roma",
    summary="Da lunedì via Roma è chiusa al traffico.",
    link="https://www.comune.example.it/notizie/lavori-in-via-roma",
    categories=("Lavori pubblici",),
)


def facebook(options: RenderOptions | None = None) -> FacebookAdapter:
    return FacebookAdapter(page_id="1", token=no_secret, session=NoNetwork(), options=options)


def instagram(options: RenderOptions | None = None) -> InstagramAdapter:
    return InstagramAdapter(user_id="1", token=no_secret, session=NoNetwork(), options=options)


def threads(max_thread_posts: int = 3) -> ThreadsAdapter:
    return ThreadsAdapter(
        user_id="me", token=no_secret, session=NoNetwork(), max_thread_posts=max_thread_posts
    )


def test_facebook_post_is_title_summary_link_hashtags_with_the_image_and_its_alt() -> None:
    post = facebook().render(replace(ANNOUNCEMENT, image=Image(url="https://comune.example.it/f.jpg")))
    assert post.text == (
        "Lavori in via Roma\n\nDa lunedì via Roma è chiusa al traffico.\n\n"
        "https://www.comune.example.it/notizie/lavori-in-via-roma\n\n#LavoriPubblici"
    )
    assert (post.limit, post.truncated, post.link) == (MESSAGE_LIMIT, False, ANNOUNCEMENT.link)
    assert post.image is not None
    assert post.image.alt == "Lavori in via Roma"  # no alt from the feed: the title, never empty


def test_facebook_very_long_text_is_cut_at_a_word_near_the_limit() -> None:
    post = facebook().render(replace(ANNOUNCEMENT, summary="parola è 🇮🇹 " * 6000))
    assert post.truncated
    assert MESSAGE_LIMIT - 20 <= utf16_units(post.text) <= MESSAGE_LIMIT
    assert post.text.endswith("…\n\n" + str(ANNOUNCEMENT.link) + "\n\n#LavoriPubblici")


def test_instagram_long_caption_is_cut_at_a_word_near_the_limit() -> None:
    post = instagram().render(replace(ANNOUNCEMENT, summary="parola 😀 " * 400))
    assert post.truncated
    assert CAPTION_LIMIT - 20 <= utf16_units(post.text) <= CAPTION_LIMIT
    assert ANNOUNCEMENT.link and ANNOUNCEMENT.link in post.text.split("\n\n")


def test_instagram_keeps_the_link_as_text_and_the_image() -> None:
    post = instagram(RenderOptions(default_alt_text="Logo del Comune")).render(
        replace(ANNOUNCEMENT, image=Image(url="https://comune.example.it/f.jpg"))
    )
    assert ANNOUNCEMENT.link and ANNOUNCEMENT.link in post.text.split("\n\n")
    assert post.image is not None
    assert post.image.alt == "Logo del Comune"
    assert post.limit == CAPTION_LIMIT


def test_instagram_renders_without_an_image_too() -> None:
    """Preview shows it; publish skips it."""
    assert instagram().render(ANNOUNCEMENT).image is None


def test_instagram_hashtags_stop_at_thirty_counting_the_comunes_own() -> None:
    categories = tuple(f"Tema {chr(ord('A') + n // 26)}{chr(ord('a') + n % 26)}" for n in range(40))
    written = replace(ANNOUNCEMENT, summary="Festa #Natale #Piazza #Mercatini", categories=categories)
    post = instagram().render(written)
    assert len(HASHTAG.findall(post.text)) == MAX_HASHTAGS
    assert "#Natale #Piazza #Mercatini" in post.text


def test_threads_length_counts_emoji_in_utf8_bytes_and_letters_as_one() -> None:
    assert threads_length("Roma") == 4
    assert threads_length("è") == 1  # two UTF-8 bytes, one character
    assert threads_length("😀") == 4
    assert threads_length("🇮🇹") == 8
    assert threads_length("👨\u200d👩\u200d👧") == 18
    assert threads_length("1\ufe0f\u20e3") == 7  # keycap: 1 + 3 + 3 bytes
    assert threads_length("❤\ufe0f") == 6
    assert threads_length("e\u0301") == 2  # combining accent: the stricter reading, as code units


def test_threads_short_post_is_one_piece() -> None:
    post = threads().render(ANNOUNCEMENT)
    assert (post.thread, post.truncated, post.limit) == ((), False, TEXT_LIMIT)
    assert post.length == threads_length(post.text)


def test_threads_long_post_is_numbered_pieces_with_the_link_in_the_first() -> None:
    post = threads().render(replace(ANNOUNCEMENT, summary="Il cantiere prosegue con i lavori. " * 40))
    pieces = (post.text, *post.thread)
    assert len(pieces) == 3
    assert all(piece.endswith(f"({n}/3)") for n, piece in enumerate(pieces, start=1))
    assert ANNOUNCEMENT.link and ANNOUNCEMENT.link in post.text
    assert post.truncated  # 1,400 characters do not fit in 3 x 500


def test_threads_with_one_post_allowed_cuts_instead() -> None:
    post = threads(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary="parola " * 200))
    assert post.thread == ()
    assert post.truncated
    assert threads_units(post.text) <= TEXT_LIMIT


TEXTS = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            ["🇮🇹", "👨\u200d👩\u200d👧", "😀", "1\ufe0f\u20e3", "e\u0301", "è", "…", "\n\n", " ", "#Tag"]
        ),
        st.builds(
            lambda word, n: word * n, st.sampled_from(["a ", "🇮🇹 ", "parola ", "😀"]), st.integers(1, 400)
        ),
        st.builds(
            "https://{}.it/{}".format,
            st.from_regex(r"[a-z]{1,10}", fullmatch=True),
            st.text("ab/-_", max_size=80),
        ),
    ),
    max_size=30,
).map("".join)
LINKS = st.builds("https://comune.example.it/{}".format, st.from_regex(r"[a-z0-9/_-]{0,200}", fullmatch=True))
CATEGORIES = st.lists(st.text(max_size=20), max_size=40).map(tuple)


def _announcement(title: str, summary: str, link: str | None, categories: tuple[str, ...]) -> Announcement:
    return Announcement(
        tenant="t", id="a", source="s", title=title, summary=summary, link=link, categories=categories
    )


@settings(max_examples=80, deadline=None)
@given(title=TEXTS, summary=TEXTS, link=st.none() | LINKS, categories=CATEGORIES, max_posts=st.integers(1, 5))
def test_property_threads_pieces_within_500_as_the_fake_counts_and_link_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...], max_posts: int
) -> None:
    post = threads(max_posts).render(_announcement(title, summary, link, categories))
    pieces = (post.text, *post.thread)
    assert len(pieces) <= max_posts
    assert all(threads_units(piece) <= TEXT_LIMIT for piece in pieces)
    assert post.length == threads_units(post.text)
    if link is not None:
        # Whole, as a word of its own: the first piece may end "<link> (1/3)".
        assert link in post.text.split()


@settings(max_examples=120, deadline=None)
@given(title=TEXTS, summary=TEXTS, link=st.none() | LINKS, categories=CATEGORIES)
def test_property_instagram_caption_within_limits_as_the_fake_counts_and_link_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...]
) -> None:
    post = instagram().render(_announcement(title, summary, link, categories))
    assert post.length == utf16_units(post.text) <= CAPTION_LIMIT
    if link is not None:
        assert link in post.text.split("\n\n")
    # The comune's own hashtags are its business; ours never push the caption over the limit.
    written = len(HASHTAG.findall(f"{title}\n{summary}"))
    assert len(HASHTAG.findall(post.text)) <= max(MAX_HASHTAGS, written)


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(["parola", "è", "🇮🇹", "https://comune.example.it/albo/1", "😀😀"]), max_size=12
    ),
    repeat=st.integers(1, 12_000),
    link=st.none() | LINKS,
)
def test_property_facebook_message_within_the_limit_and_link_whole(
    words: list[str], repeat: int, link: str | None
) -> None:
    """Texts long enough to reach Facebook's 63,206 characters."""
    summary = (" ".join(words) + " ") * repeat
    post = facebook().render(_announcement("Avviso", summary, link, ("Viabilità",)))
    assert post.length == utf16_units(post.text) <= MESSAGE_LIMIT
    if link is not None:
        assert link in post.text.split("\n\n")
