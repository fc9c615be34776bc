"""Mastodon rendering: graphemes with each URL at the instance's weight, never over the instance's limit,
the link always whole. The sandbox's Mastodon fake counts on its own (status_length): the properties
check the renderer against the count the server applies."""

from __future__ import annotations

from dataclasses import replace

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement
from chalicelib.channels.mastodon import InstanceLimits, InstanceLimitsCache, MastodonAdapter
from devtools.sandbox.mastodon import status_length

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


class NoNetwork(requests.Session):
    """A session that fails the test if anything tries to use it."""

    def request(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
        raise AssertionError("rendering must not touch the network here")


def _adapter(limits: InstanceLimits | None = None) -> MastodonAdapter:
    """Offline (defaults) or with the instance's limits already cached, as after a first fetch."""
    if limits is None:
        return MastodonAdapter(instance=INSTANCE, token=_no_token, session=NoNetwork(), offline=True)
    cache = InstanceLimitsCache()
    cache.get(INSTANCE, lambda: limits)
    return MastodonAdapter(instance=INSTANCE, token=_no_token, session=NoNetwork(), limits_cache=cache)


def _no_token() -> str:
    raise AssertionError("render must not read the token")


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
    adapter = _adapter(InstanceLimits(max_characters=120, characters_reserved_per_url=30))
    post = adapter.render(replace(ANNOUNCEMENT, summary="parola " * 40))
    assert adapter.limits_source == "instance"
    assert post.truncated
    assert post.length == status_length(post.text, 30) <= 120
    assert post.text.endswith("…\n\n" + ANNOUNCEMENT.link + "\n\n#LavoriPubblici")


def test_emoji_and_accents_count_as_one_character_each() -> None:
    summary = "🇮🇹 e\u0301 👨\u200d👩\u200d👧 " * 100  # 600 graphemes, far more code points
    post = _adapter().render(replace(ANNOUNCEMENT, summary=summary))
    assert post.truncated
    assert post.length == status_length(post.text, 23) <= 500
    assert post.length >= 495  # cut at a word close to the limit
    assert "e…" not in post.text  # never an accent torn from its letter


def test_urls_in_the_summary_are_kept_whole() -> None:
    urls = " ".join(f"https://comune.example.it/albo/{n}" for n in range(40))
    post = _adapter().render(replace(ANNOUNCEMENT, summary=urls))
    kept = post.text.split("\n\n")[1].removesuffix(" …").split()
    assert kept == [f"https://comune.example.it/albo/{n}" for n in range(len(kept))]


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
)
def test_property_never_over_the_limit_as_the_server_counts_and_link_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...], limits: InstanceLimits
) -> None:
    post = _adapter(limits).render(
        Announcement(
            tenant="t", id="a", source="s", title=title, summary=summary, link=link, categories=categories
        )
    )
    assert (
        post.length == status_length(post.text, limits.characters_reserved_per_url) <= limits.max_characters
    )
    if link is not None:
        assert link in post.text.split("\n\n")
