"""Mastodon rendering: graphemes with each URL at the instance's weight, never over the instance's limit,
the link always whole, long texts as numbered threads, the image with its alt text. The sandbox's
Mastodon fake counts on its own (status_length): the properties check the renderer against the count
the server applies."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import PostImage
from chalicelib.channels.mastodon import InstanceLimits, InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.text import RenderOptions
from devtools.sandbox.mastodon import status_length
from tests.offline import NoNetwork, no_secret

INSTANCE = "https://mastodon.example.it"
ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori in via Roma",
    summary="Da lunedì via Roma è chiusa al traffico (A & B).",
    link="https://www.comune.example.it/notizie/lavori-in-via-roma-chiusa-al-traffico-da-lunedi",
    categories=("Lavori pubblici",),
)


def _adapter(
    limits: InstanceLimits | None = None, *, max_thread_posts: int = 3, options: RenderOptions | None = None
) -> MastodonAdapter:
    """Offline (defaults) or with the instance's limits already cached, as after a first fetch."""
    cache = InstanceLimitsCache()
    if limits is not None:
        cache.get(INSTANCE, lambda: limits)
    return MastodonAdapter(
        instance=INSTANCE,
        token=no_secret,
        session=NoNetwork(),
        offline=limits is None,
        limits_cache=cache,
        max_thread_posts=max_thread_posts,
        options=options,
    )


def test_render_is_title_summary_link_and_hashtags() -> None:
    adapter = _adapter()
    post = adapter.render(ANNOUNCEMENT)
    assert post.text == (
        "Lavori in via Roma\n\n"
        "Da lunedì via Roma è chiusa al traffico (A & B).\n\n"
        "https://www.comune.example.it/notizie/lavori-in-via-roma-chiusa-al-traffico-da-lunedi\n\n"
        "#LavoriPubblici"
    )
    # The 85-character link counts 23.
    assert post.length == 18 + 2 + 48 + 2 + 23 + 2 + 15
    assert (post.limit, post.truncated, post.parse_mode) == (500, False, None)
    assert adapter.limits_source == "default"


def test_cached_instance_limits_are_used() -> None:
    adapter = _adapter(InstanceLimits(max_characters=120, characters_reserved_per_url=30), max_thread_posts=1)
    post = adapter.render(replace(ANNOUNCEMENT, summary="parola " * 40))
    assert adapter.limits_source == "instance"
    assert post.truncated
    assert post.length == status_length(post.text, 30) <= 120
    assert post.text.endswith("…\n\n" + ANNOUNCEMENT.link + "\n\n#LavoriPubblici")


def test_emoji_and_accents_count_as_one_character_each() -> None:
    summary = "🇮🇹 e\u0301 👨\u200d👩\u200d👧 " * 100  # 600 graphemes, far more code points
    post = _adapter(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary=summary))
    assert post.truncated
    assert post.length == status_length(post.text, 23) <= 500
    assert post.length >= 495  # cut at a word close to the limit
    assert "e…" not in post.text  # never an accent torn from its letter


def test_urls_in_the_summary_are_kept_whole() -> None:
    urls = " ".join(f"https://comune.example.it/albo/{n}" for n in range(40))
    post = _adapter(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary=urls))
    kept = post.text.split("\n\n")[1].removesuffix(" …").split()
    assert kept == [f"https://comune.example.it/albo/{n}" for n in range(len(kept))]


def test_a_long_text_becomes_a_numbered_thread_that_keeps_all_of_it() -> None:
    words = [f"parola{n}" for n in range(150)]
    post = _adapter().render(replace(ANNOUNCEMENT, summary=" ".join(words)))
    pieces = (post.text, *post.thread)
    assert len(pieces) == 3
    assert not post.truncated
    assert [piece[-6:] for piece in pieces] == [" (1/3)", " (2/3)", " (3/3)"]
    assert post.text.startswith("Lavori in via Roma\n\nparola0 parola1")
    assert ANNOUNCEMENT.link in post.text.split()
    assert "#LavoriPubblici" in post.text
    said = " ".join(_unnumbered(piece) for piece in pieces).replace("…", " ").split()
    assert said[-1] == "parola149"
    assert all(word in said for word in words)  # cut with an ellipsis, then continued
    assert all(status_length(piece, 23) <= 500 for piece in pieces)
    assert post.length == status_length(post.text, 23)


def test_what_does_not_fit_the_thread_is_cut_with_an_ellipsis() -> None:
    post = _adapter(max_thread_posts=2).render(replace(ANNOUNCEMENT, summary="parola " * 400))
    assert post.truncated
    assert len(post.thread) == 1
    assert post.thread[0].endswith("… (2/2)")


def test_the_image_and_its_alt_text_come_with_the_render() -> None:
    announcement = replace(ANNOUNCEMENT, image=Image(url="https://comune.example.it/foto.jpg", alt=""))
    post = _adapter(options=RenderOptions(default_alt_text="Foto del Comune")).render(announcement)
    assert post.image == PostImage(url="https://comune.example.it/foto.jpg", alt="Foto del Comune")
    assert _adapter().render(ANNOUNCEMENT).image is None


def _unnumbered(piece: str) -> str:
    return re.sub(r" \(\d+/\d+\)$", "", piece)


TEXTS = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(["🇮🇹", "👨\u200d👩\u200d👧", "e\u0301", "\u0301", "\u200d", "😀", "…", "\n\n", " "]),
        st.builds(lambda word, n: word * n, st.sampled_from(["a", "🇮🇹", "e\u0301"]), st.integers(1, 600)),
        st.builds(
            "https://{}.it/{}".format,
            st.from_regex(r"[a-z]{1,10}", fullmatch=True),
            st.text("ab/-_", max_size=80),
        ),
    ),
    max_size=40,
).map("".join)
LINKS = st.builds("https://comune.example.it/{}".format, st.from_regex(r"[a-z0-9/_-]{0,200}", fullmatch=True))


LIMITS = st.builds(
    InstanceLimits,
    max_characters=st.integers(min_value=100, max_value=1000),
    characters_reserved_per_url=st.integers(min_value=1, max_value=40),
)


@settings(max_examples=150, deadline=None)
@given(
    title=TEXTS,
    summary=TEXTS,
    link=st.none() | LINKS,
    categories=st.lists(st.text(max_size=30), max_size=6).map(tuple),
    limits=LIMITS,
    max_thread_posts=st.integers(min_value=1, max_value=4),
)
def test_property_never_over_the_limit_as_the_server_counts_and_link_whole(
    *,
    title: str,
    summary: str,
    link: str | None,
    categories: tuple[str, ...],
    limits: InstanceLimits,
    max_thread_posts: int,
) -> None:
    post = _adapter(limits, max_thread_posts=max_thread_posts).render(
        Announcement(
            tenant="t", id="a", source="s", title=title, summary=summary, link=link, categories=categories
        )
    )
    weight, limit = limits.characters_reserved_per_url, limits.max_characters
    assert post.length == status_length(post.text, weight) <= limit
    assert len(post.thread) < max_thread_posts
    assert all(status_length(piece, weight) <= limit for piece in post.thread)
    if link is not None:
        # In the first post, as a block of its own but for the thread's number after it.
        assert link in [_unnumbered(block) for block in post.text.split("\n\n")]
