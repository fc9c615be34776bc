"""Bluesky rendering: at most 300 graphemes as sent (long URLs shown shortened), facets on the right
UTF-8 bytes, every link intact in its facet, record keys that are valid TIDs. The sandbox's Bluesky
fake validates posts with counters of its own (devtools.sandbox.bluesky.post_problem): the properties
hold the renderer to it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.atproto import MAX_PIECES, TID_ALPHABET, PostRef, encode_tid, record_key
from chalicelib.channels.base import PermanentError
from chalicelib.channels.bluesky import BlueskyAdapter
from chalicelib.channels.richtext import LINK_FEATURE, TAG_FEATURE, rich_text, shown_url
from chalicelib.channels.text import RenderOptions, url_spans
from devtools.sandbox.bluesky import post_problem
from devtools.sandbox.counting import graphemes
from tests.offline import NoNetwork, no_secret

ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori in via Roma",
    summary="Da lunedì via Roma è chiusa al traffico 🚧.",
    link="https://www.comune.example.it/notizie/lavori-in-via-roma-chiusa-al-traffico-da-lunedi",
    categories=("Lavori pubblici", "Viabilità"),
)
KEY = "banditore-comune-prova-20261122T081500abcd1234-bluesky"


def _adapter(max_thread_posts: int = 3, options: RenderOptions | None = None) -> BlueskyAdapter:
    return BlueskyAdapter(
        identifier="comune.bsky.social",
        password=no_secret,
        session=NoNetwork(),
        max_thread_posts=max_thread_posts,
        options=options,
        offline=True,
    )


def _record(text: str, link: str | None = None) -> dict[str, object]:
    rich = rich_text(text, link)
    return {
        "$type": "app.bsky.feed.post",
        "text": rich.text,
        "createdAt": "2026-11-22T08:15:00.000Z",
        "langs": ["it"],
        "facets": list(rich.facets),
    }


def _spans(text: str) -> list[tuple[str, dict[str, str]]]:
    """What each facet covers in the text as sent, read back from the UTF-8 bytes."""
    rich = rich_text(text)
    encoded = rich.text.encode("utf-8")
    return [
        (encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode("utf-8"), f["features"][0])
        for f in rich.facets
    ]


def test_render_shows_the_long_link_shortened_and_measures_what_is_sent() -> None:
    post = _adapter().render(ANNOUNCEMENT)
    assert post.text == (
        "Lavori in via Roma\n\n"
        "Da lunedì via Roma è chiusa al traffico 🚧.\n\n"
        f"{ANNOUNCEMENT.link}\n\n"
        "#LavoriPubblici #Viabilità"
    )
    sent = rich_text(post.text).text
    assert "comune.example.it/notizie/lavor…" in sent
    assert ANNOUNCEMENT.link not in sent
    title, summary, tags = "Lavori in via Roma", ANNOUNCEMENT.summary, "#LavoriPubblici #Viabilità"
    assert post.length == graphemes(sent) == len(title) + 2 + len(summary) + 2 + 32 + 2 + len(tags)
    assert (post.limit, post.truncated, post.thread) == (300, False, ())
    assert (post.link, post.title, post.description) == (
        ANNOUNCEMENT.link,
        "Lavori in via Roma",
        ANNOUNCEMENT.summary,
    )


def test_facets_count_utf8_bytes_not_characters() -> None:
    text = rich_text(_adapter().render(ANNOUNCEMENT).text).text
    link, first_tag, second_tag = rich_text(_adapter().render(ANNOUNCEMENT).text).facets
    # Before the link: "è", "ì" (2 bytes each) and the emoji (4 bytes) make bytes and characters part.
    link_start = text.index("comune.example.it")
    assert link["index"]["byteStart"] == len(text[:link_start].encode()) == link_start + 1 + 1 + 3
    assert link["features"] == [{"$type": LINK_FEATURE, "uri": ANNOUNCEMENT.link}]
    assert first_tag["features"] == [{"$type": TAG_FEATURE, "tag": "LavoriPubblici"}]
    # "Viabilità": 9 characters, 10 bytes.
    assert second_tag["index"]["byteEnd"] - second_tag["index"]["byteStart"] == len("#Viabilità") + 1
    assert second_tag["features"] == [{"$type": TAG_FEATURE, "tag": "Viabilità"}]


def test_every_url_and_tag_in_the_text_is_faceted() -> None:
    # As in Bluesky's apps a tag starts a word: "(#Ufficio)" and "a#b" are no tags.
    text = "Orari #Anagrafe: https://comune.it/a e http://comune.it/b.\n#Nota #123 a#b (#Ufficio) #Sì"
    assert _spans(text) == [
        ("#Anagrafe", {"$type": TAG_FEATURE, "tag": "Anagrafe"}),
        ("comune.it/a", {"$type": LINK_FEATURE, "uri": "https://comune.it/a"}),
        ("comune.it/b", {"$type": LINK_FEATURE, "uri": "http://comune.it/b"}),
        ("#Nota", {"$type": TAG_FEATURE, "tag": "Nota"}),
        ("#Sì", {"$type": TAG_FEATURE, "tag": "Sì"}),
    ]


def test_a_fragment_in_a_url_is_not_a_tag() -> None:
    assert [feature["$type"] for _, feature in _spans("Vedi https://comune.it/pagina#sezione")] == [
        LINK_FEATURE
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://comune.it/albo", "comune.it/albo"),
        ("HTTP://WWW.comune.it/Albo", "comune.it/Albo"),
        ("https://www.comune.example.it/notizie/2026/11/lavori", "comune.example.it/notizie/2026/…"),
        ("https://" + "a" * 40 + ".it", "a" * 40 + ".it"),  # a long host, whole
        ("https://" + "a" * 40 + ".it/x", "a" * 40 + ".it…"),
    ],
)
def test_shown_urls(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_tag_too_long_for_bluesky_stays_plain_text() -> None:
    assert _spans("#" + "a" * 65) == []
    assert _spans("#" + "a" * 64) == [("#" + "a" * 64, {"$type": TAG_FEATURE, "tag": "a" * 64})]


def test_long_text_becomes_a_numbered_thread_whose_first_post_has_the_link() -> None:
    post = _adapter().render(replace(ANNOUNCEMENT, summary="Parola lunga e ancora. " * 40))
    texts = (post.text, *post.thread)
    assert len(texts) == 3
    assert [text[-6:] for text in texts] == [" (1/3)", " (2/3)", " (3/3)"]
    assert ANNOUNCEMENT.link in post.text
    assert all(graphemes(rich_text(text).text) <= 300 for text in texts)


def test_a_channel_without_threads_cuts_at_a_word() -> None:
    post = _adapter(max_thread_posts=1).render(replace(ANNOUNCEMENT, summary="Parola " * 100))
    assert post.thread == ()
    assert post.truncated
    assert post.length <= 300
    assert "Parola…" in post.text


def test_image_alt_and_card_description() -> None:
    summary = "Testo " * 100
    post = _adapter(options=RenderOptions(default_alt_text="Foto del Comune")).render(
        replace(ANNOUNCEMENT, summary=summary, image=Image(url="https://www.comune.example.it/foto.jpg"))
    )
    assert post.image is not None
    assert post.image.alt == "Foto del Comune"
    assert post.description is not None
    assert post.description.endswith("…")
    assert graphemes(post.description) <= 300


# -- record keys ------------------------------------------------------------------------------------


def _tid_value(tid: str) -> int:
    value = 0
    for char in tid:
        value = value * 32 + TID_ALPHABET.index(char)
    return value


def test_tid_encoding_matches_a_published_example() -> None:
    # @atcute/tid's README: TID.create(1724171495793000, 512) -> "3l25zusnsfck2".
    assert encode_tid(1724171495793000, 512) == "3l25zusnsfck2"
    assert encode_tid(0, 0) == "2222222222222"  # the atproto spec's TID of zero


def test_record_keys_are_stable_valid_tids_at_the_discovery_moment() -> None:
    keys = [record_key(KEY, index) for index in range(MAX_PIECES)]
    assert keys == [record_key(KEY, index) for index in range(MAX_PIECES)]  # the same on every retry
    assert keys == sorted(keys)  # a thread's pieces sort in order
    assert len(set(keys)) == MAX_PIECES
    for key in keys:
        assert len(key) == 13
        assert key[0] in "234567abcdefghij"
        assert set(key) <= set(TID_ALPHABET)
        value = _tid_value(key)
        assert value < 2**63  # top bit 0
        moment = datetime.fromtimestamp((value >> 10) / 1e6, UTC)
        assert moment.replace(microsecond=0) == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    assert record_key(KEY.replace("-bluesky", "-bluesky-2"), 0) != keys[0]


@given(key=st.text(min_size=1, max_size=80))
def test_record_keys_without_a_moment_are_plausible_past_tids(key: str) -> None:
    value = _tid_value(record_key(key, 0))
    moment = datetime.fromtimestamp((value >> 10) / 1e6, UTC)
    assert datetime(2023, 1, 1, tzinfo=UTC) <= moment < datetime(2200, 1, 1, tzinfo=UTC)


def test_record_key_refuses_an_index_beyond_a_thread() -> None:
    with pytest.raises(ValueError, match="at most"):
        record_key(KEY, MAX_PIECES)


# -- remote ids -------------------------------------------------------------------------------------


def test_remote_ids_carry_the_post_and_its_root() -> None:
    first = PostRef("did:plc:abc", "3kaaaaaaaaaa2", "bafyfirst", "3kaaaaaaaaaa2", "bafyfirst")
    reply = PostRef("did:plc:abc", "3kbbbbbbbbbb2", "bafyreply", "3kaaaaaaaaaa2", "bafyfirst")
    assert first.encode() == "did:plc:abc/3kaaaaaaaaaa2/bafyfirst"
    assert PostRef.decode(first.encode()) == first
    assert PostRef.decode(reply.encode()) == reply
    assert reply.root_ref() == first.strong_ref()
    assert reply.uri == "at://did:plc:abc/app.bsky.feed.post/3kbbbbbbbbbb2"


@pytest.mark.parametrize("remote_id", ["12345", "did:plc:abc/rkey", "x/y/z", "did:plc:a//cid"])
def test_a_foreign_remote_id_is_refused(remote_id: str) -> None:
    with pytest.raises(PermanentError) as caught:
        PostRef.decode(remote_id)
    assert caught.value.reason == "bad_reply"


# -- properties, held to the fake's own validation ---------------------------------------------------

TEXTS = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            ["🇮🇹", "👨\u200d👩\u200d👧", "e\u0301", "\u0301", "è", "#", "#Tag", " #Sì", "…", "\n\n", " "]
        ),
        st.builds(lambda word, n: word * n, st.sampled_from(["a", "🇮🇹", "è "]), st.integers(1, 400)),
        st.builds(
            "https://{}{}.it/{}".format,
            st.sampled_from(["", "www."]),
            st.from_regex(r"[a-z]{1,50}", fullmatch=True),
            st.text("ab/-_#?=&", max_size=120),
        ),
    ),
    max_size=40,
).map("".join)
LINKS = st.builds(
    "https://{}comune.example.it/{}".format,
    st.sampled_from(["", "www."]),
    st.from_regex(r"[a-z0-9/_?=&-]{0,200}", fullmatch=True),
)


@settings(max_examples=150, deadline=None)
@given(
    title=TEXTS,
    summary=TEXTS,
    link=st.none() | LINKS,
    categories=st.lists(st.text(max_size=30), max_size=6).map(tuple),
    max_thread_posts=st.integers(min_value=1, max_value=4),
)
def test_property_posts_fit_facets_match_bytes_and_links_stay_whole(
    title: str, summary: str, link: str | None, categories: tuple[str, ...], max_thread_posts: int
) -> None:
    announcement = Announcement(
        tenant="t", id="a", source="s", title=title, summary=summary, link=link, categories=categories
    )
    post = _adapter(max_thread_posts).render(announcement)
    texts = (post.text, *post.thread)
    assert len(texts) <= max_thread_posts
    assert post.length == graphemes(rich_text(post.text, link).text)
    for text in texts:
        assert post_problem(_record(text, link)) is None  # graphemes, bytes, each facet on what it shows
        rich = rich_text(text, link)
        assert graphemes(rich.text) <= 300
        uris = [f["features"][0]["uri"] for f in rich.facets if f["features"][0]["$type"] == LINK_FEATURE]
        # Every URL of the text linked whole (the announcement's with its trailing punctuation).
        found = [text[start:end] for start, end in url_spans(text)]
        assert [uri[: len(url)] for uri, url in zip(uris, found, strict=True)] == found
        assert all(uri in text for uri in uris)
    if link is not None:
        assert link in [f["features"][0].get("uri") for f in rich_text(post.text, link).facets]
