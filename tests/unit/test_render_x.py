"""X rendering: weighed as twitter-text v3 weighs a post (NFC, a URL 23, an emoji 2 however many code
points, CJK 2), never over 280, the link whole, a long text as a numbered thread. The sandbox's X fake
weighs on its own (devtools.sandbox.x.post_weight, written apart): the properties check the renderer
and its counter against it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.text import RenderOptions
from chalicelib.channels.weighted import weighted_length
from chalicelib.channels.x import Credentials, XAdapter
from devtools.sandbox.x import post_weight
from tests.offline import NoNetwork, no_secret

ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori in via Roma",
    summary="Da lunedì via Roma è chiusa al traffico (A & B).",
    link="https://www.comune.example.it/notizie/lavori-in-via-roma-chiusa-al-traffico-da-lunedi",
    categories=("Lavori pubblici",),
)
EMOJI = {
    "single": "😀",
    "flag": "🇮🇹",
    "keycap": "1\ufe0f\u20e3",
    "skin tone": "👍🏽",
    "zwj family": "👨\u200d👩\u200d👧\u200d👦",
    "zwj with selector": "👩\u200d❤\ufe0f\u200d💋\u200d👨",
    "rainbow flag": "🏳\ufe0f\u200d🌈",
    "scotland": "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "text style made emoji": "❤\ufe0f",
    "copyright as emoji": "©\ufe0f",
    "skin tone alone": "🏽",
}


def _adapter(max_thread_posts: int = 3, options: RenderOptions | None = None) -> XAdapter:
    return XAdapter(
        credentials=Credentials(no_secret, no_secret, no_secret, no_secret),
        session=NoNetwork(),
        max_thread_posts=max_thread_posts,
        options=options,
    )


def test_render_is_title_summary_link_and_hashtags_without_the_image() -> None:
    """X shows the page's card under the link; the image itself is not uploaded (see x.py)."""
    post = _adapter().render(replace(ANNOUNCEMENT, image=Image(url="https://comune.example.it/f.jpg")))
    assert post.text == (
        "Lavori in via Roma\n\n"
        "Da lunedì via Roma è chiusa al traffico (A & B).\n\n"
        "https://www.comune.example.it/notizie/lavori-in-via-roma-chiusa-al-traffico-da-lunedi\n\n"
        "#LavoriPubblici"
    )
    # The 85-character link weighs 23.
    assert post.length == 18 + 2 + 48 + 2 + 23 + 2 + 15 == post_weight(post.text)
    assert (post.limit, post.truncated, post.thread, post.image) == (280, False, (), None)
    assert post.link == ANNOUNCEMENT.link


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("Comune di Roma", 14),
        ("perché è così", 13),  # Latin-1 and Latin Extended: 1 each
        ("Привет", 6),  # Cyrillic, below U+1100: 1 each
        ("東京", 4),  # CJK: 2 each
        ("한국", 4),  # Hangul syllables: 2 each
        (
            "\u201cvirgolette\u201d \u2018singole\u2019 \u2013 trattino",
            33,
        ),  # general punctuation in the light ranges
        ("…", 2),  # U+2026 is outside them
        ("e\u0301", 1),  # NFC: é
        ("https://www.comune.example.it/" + "x" * 200, 23),
        ("https://comune.example.it/albo.", 24),  # the final full stop is not the URL's
        ("Vedi https://a.it e https://b.it/c?d=1", 5 + 23 + 3 + 23),
        ("x" * 280, 280),
        *((text, 2) for text in EMOJI.values()),
        ("😀😀", 4),
        ("🇮🇹🇫🇷", 4),
        ("😀\ufe0f", 4),  # an emoji-style character takes no selector: the selector weighs on its own
        ("©", 1),  # text style, in the Latin-1 range
    ],
)
def test_weights_as_twitter_text_v3(text: str, weight: int) -> None:
    assert weighted_length(text) == weight
    assert post_weight(text) == weight


@pytest.mark.parametrize(
    ("text", "adapter", "x"),
    [
        ("www.comune.it", 23, 23),  # X links a bare name: 23, more than its 13 characters
        ("comune.it/albo/pretorio", 37, 23),  # the path after a bare name is counted apart
        ("sig.ra Rossi", 29, 12),  # "ra" might be a country's domain
        ("D.Lgs. 33/2013", 14, 14),  # "Lgs" is no top-level domain
        ("info@comune.it", 14, 14),  # an address is no link
        ("xhttps://comune.it/" + "a" * 30, 49, 49),  # glued to a letter: X does not link it
        ("https://comune.it/a|b", 25, 23),  # "|" may end X's URL or not: counted apart
    ],
)
def test_where_x_may_count_more_the_adapter_counts_more(text: str, adapter: int, x: int) -> None:
    assert weighted_length(text) == adapter
    assert post_weight(text) == x


def test_a_long_text_becomes_a_numbered_thread_with_the_link_first() -> None:
    summary = " ".join(f"Frase numero {n}, sui lavori di rifacimento della strada." for n in range(30))
    post = _adapter().render(replace(ANNOUNCEMENT, summary=summary))
    texts = (post.text, *post.thread)
    assert len(texts) == 3
    assert post.truncated  # thirty sentences do not fit in three posts
    assert all(text.endswith(f" ({n}/3)") for n, text in enumerate(texts, start=1))
    assert ANNOUNCEMENT.link in post.text.split("\n\n")
    assert "#LavoriPubblici" in post.text
    assert all(post_weight(text) <= 280 for text in texts)
    assert post.length == weighted_length(post.text)


def test_one_post_per_announcement_when_the_channel_allows_no_thread() -> None:
    post = _adapter(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary="parola " * 100))
    assert post.thread == ()
    assert post.truncated
    assert post_weight(post.text) <= 280
    assert post.text.endswith("…\n\n" + ANNOUNCEMENT.link + "\n\n#LavoriPubblici")


def test_characters_x_refuses_are_dropped_and_the_text_is_nfc() -> None:
    post = _adapter().render(
        replace(ANNOUNCEMENT, title="\ufeffLavori\u202e in via Roma", summary="Cafe\u0301")
    )
    assert post.text.startswith("Lavori in via Roma\n\nCafé\n\n")


def test_emoji_are_counted_two_each_even_when_cut() -> None:
    summary = "🇮🇹 👨\u200d👩\u200d👧 1\ufe0f\u20e3 " * 60
    post = _adapter(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary=summary))
    assert post.truncated
    assert post.length == post_weight(post.text)
    assert 270 <= post.length <= 280  # cut at a word close to the limit
    assert "\u200d…" not in post.text  # never half a family


_URL_TAIL = "ab/-_.?=&#%|()!~,:;»è😀"
# Short tails: where a URL ends, and with what, is where X's grammar and a plain reading part.
URLS = st.builds(
    "{}{}://{}.{}{}{}".format,
    st.sampled_from(["", "x", "(", "@", " "]),
    st.sampled_from(["http", "https", "HTTPS"]),
    st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
    st.sampled_from(["it", "com", "example", "i", "1"]),
    st.text(_URL_TAIL, max_size=12),
    st.sampled_from(["", " ", *_URL_TAIL]),
)
FRAGMENTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [*EMOJI.values(), "e\u0301", "\u200d", "\ufe0f", "…", "»", "(", ")", "|", "\n\n", " ", "日本"]
    ),
    st.sampled_from(["sig.ra", "D.Lgs.", "info@comune.it", "www.comune.it", "comune.eu/albo", "x.com"]),
    st.builds(lambda word, n: word * n, st.sampled_from(["a", "è", "😀", "🇮🇹", "東"]), st.integers(1, 300)),
    URLS,
)
TEXTS = st.lists(FRAGMENTS, max_size=30).map("".join)
LINKS = st.builds("https://comune.example.it/{}".format, st.from_regex(r"[a-z0-9/_-]{0,200}", fullmatch=True))


@settings(max_examples=1000, deadline=None)
@given(text=TEXTS | st.lists(URLS, max_size=4).map("".join))
def test_property_the_adapter_never_counts_below_the_fake(text: str) -> None:
    assert weighted_length(text) >= post_weight(text)


@settings(max_examples=150, deadline=None)
@given(
    title=TEXTS,
    summary=TEXTS,
    link=st.none() | LINKS,
    categories=st.lists(st.text(max_size=30), max_size=6).map(tuple),
    max_thread_posts=st.integers(1, 4),
)
def test_property_every_post_fits_as_the_fake_counts_and_the_link_is_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...], max_thread_posts: int
) -> None:
    post = _adapter(max_thread_posts).render(
        Announcement(
            tenant="t", id="a", source="s", title=title, summary=summary, link=link, categories=categories
        )
    )
    texts = (post.text, *post.thread)
    assert len(texts) <= max_thread_posts
    assert all(post_weight(text) <= 280 for text in texts)
    assert post.length == weighted_length(post.text) >= post_weight(post.text)
    if link is not None:  # whole, in the first post; in a thread the post's number follows it
        assert any(block in (link, f"{link} (1/{len(texts)})") for block in post.text.split("\n\n"))


@settings(max_examples=200, deadline=None)
@given(
    emoji=st.one_of(
        st.sampled_from(list(EMOJI.values())),
        st.builds(lambda a, b: chr(0x1F1E6 + a) + chr(0x1F1E6 + b), st.integers(0, 25), st.integers(0, 25)),
        st.builds(
            lambda base, tone: base + chr(0x1F3FB + tone), st.sampled_from("👍👋🙋👩👨🧑"), st.integers(0, 4)
        ),
        st.builds(lambda key: key + "\ufe0f\u20e3", st.sampled_from("0123456789#*")),
        st.lists(
            st.sampled_from(["👨", "👩", "👧", "👦", "👩🏽", "❤\ufe0f", "🔥"]), min_size=2, max_size=5
        ).map("\u200d".join),
    ),
    before=st.sampled_from(["", "a ", "Allerta ", "日"]),
)
def test_property_an_emoji_weighs_two_whatever_its_code_points(emoji: str, before: str) -> None:
    assert weighted_length(before + emoji) == weighted_length(before) + 2
    assert post_weight(before + emoji) == post_weight(before) + 2
