"""Dedupe keys: stable under every cosmetic change of an item, distinct for distinct items."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.sources.cms import FeedItem, parse_feed
from chalicelib.sources.dedupe import canonical_url, clean_link, dedupe_keys, is_duplicate
from tests.feedserver import rss_document

KEY = re.compile(r"^[glc]:[0-9a-f]{32}$")
TRACKING = ["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "mtm_kwd", "pk_campaign", "_ga"]

LOWER = "abcdefghijklmnopqrstuvwxyz"
labels = st.text(LOWER + "0123456789", min_size=1, max_size=10)
slugs = st.text(LOWER + "0123456789-", min_size=1, max_size=20)
hosts = st.builds("comune.{}.{}.it".format, labels, labels)
segments = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789-_~àèé", min_size=1, max_size=12)
paths = st.lists(segments, max_size=4).map(lambda parts: "/" + "/".join(parts))
# A digit in every name keeps them clear of tracking parameters, none of which has one.
params = st.lists(
    st.tuples(
        st.builds(str.__add__, st.text(LOWER, min_size=1, max_size=6), st.sampled_from("0123456789")),
        st.text("abc019 àè/-", max_size=8),
    ),
    max_size=4,
    unique_by=lambda pair: pair[0],
)
# Italian text: letters with accents, digits, punctuation, spaces (NBSP included).
words = st.text(
    LOWER
    + "ABCXYZàèéìòùÈÀ0123456789.,;:!?'«»()-… \N{NO-BREAK SPACE}\N{RIGHT SINGLE QUOTATION MARK}\N{EN DASH}",
    max_size=40,
)


def url(host: str, path: str, pairs: list[tuple[str, str]]) -> str:
    query = urlencode(pairs, quote_via=quote)
    return f"https://{host}{path}" + (f"?{query}" if query else "")


@st.composite
def urls_with_variant(draw: st.DrawFn) -> tuple[str, str]:
    """A URL, and the same URL as another CMS page, template or server might write it."""
    host, path, pairs = draw(hosts), draw(paths), draw(params)
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "Http"]))
    port = {"http": ":80", "https": ":443"}[scheme.lower()] if draw(st.booleans()) else ""
    www = "www." if draw(st.booleans()) else ""
    shown_host = draw(st.sampled_from([str.upper, str.title, str]))(www + host)
    shown_path = path + ("/" if path != "/" and draw(st.booleans()) else "")
    shuffled = draw(st.permutations(pairs))
    tracking = [(name, draw(labels)) for name in draw(st.lists(st.sampled_from(TRACKING), unique=True))]
    mixed = draw(st.permutations(shuffled + tracking))
    query = urlencode(mixed, quote_via=lambda text, *_: quote(text, safe="").lower())  # lower-case escapes
    fragment = draw(st.sampled_from(["", "#", "#modulistica"]))
    variant = f" {scheme}://{shown_host}{port}{shown_path}" + (f"?{query}" if query else "") + fragment + "\n"
    return url(host, path, pairs), variant


@st.composite
def items(draw: st.DrawFn) -> FeedItem:
    link = url(draw(hosts), draw(paths.filter(lambda p: p != "/")), draw(params))
    return FeedItem(
        guid=draw(st.one_of(st.none(), slugs)),
        link=link,
        title=draw(words),
        summary=draw(words),
    )


def cosmetic(text: str, draw: st.DrawFn) -> str:
    """The same text, as a re-save of the page might give it: other case, other spacing."""
    spaced = re.sub(r"\s+", lambda _: draw(st.sampled_from([" ", "  ", "\n", "\t", "\u00a0"])), text)
    return draw(st.sampled_from([str.upper, str.lower, str]))(f"  {spaced} \n")


# --- URLs ---


@given(urls_with_variant())
def test_canonical_url_ignores_cosmetic_differences(pair: tuple[str, str]) -> None:
    original, variant = pair
    assert canonical_url(variant) == canonical_url(original)


@given(urls_with_variant())
def test_canonical_url_is_idempotent(pair: tuple[str, str]) -> None:
    once = canonical_url(pair[1])
    assert canonical_url(once) == once


@given(hosts, paths, params, st.lists(st.sampled_from(TRACKING), unique=True, min_size=1))
def test_clean_link_drops_only_tracking_parameters(
    host: str, path: str, pairs: list[tuple[str, str]], tracking: list[str]
) -> None:
    link = url(host, path, pairs) + "#sezione"
    separator = "&" if pairs else "?"
    tracked = link.replace("#", separator + "&".join(f"{name}=x" for name in tracking) + "#")

    assert clean_link(tracked) == link  # order, fragment and path as written


def test_canonical_url_keeps_what_tells_pages_apart() -> None:
    base = "https://www.comune.valdimonte.example/notizie"
    forms = [
        base + "/avviso",
        base + "/Avviso",
        base + "/avviso?id=1",
        base + "/avviso?id=2",
        base + "/avviso?page",
    ]
    assert len({canonical_url(form) for form in forms}) == len(forms)


def test_clean_link_normalises_scheme_host_port_and_credentials() -> None:
    messy = "HTTPS://urp:secret@WWW.Comune.Valdimonte.Example:443/Notizie/Avviso?utm_source=rss&b=2&a=1#Top"

    assert clean_link(messy) == "https://www.comune.valdimonte.example/Notizie/Avviso?b=2&a=1#Top"
    assert canonical_url(messy) == "https://comune.valdimonte.example/Notizie/Avviso?a=1&b=2"


# --- keys ---


@given(items(), urls_with_variant(), st.data())
def test_keys_are_stable_under_cosmetic_changes(
    item: FeedItem, links: tuple[str, str], data: st.DataObject
) -> None:
    link, other_form = links
    item = replace(item, link=link)
    variant = replace(
        item,
        guid=f" {item.guid}\n" if item.guid else item.guid,
        link=other_form,
        title=cosmetic(item.title, data.draw),
        summary=cosmetic(item.summary, data.draw),
    )
    assert dedupe_keys(variant) == dedupe_keys(item)


@given(items(), slugs)
def test_a_new_guid_for_the_same_link_still_shares_a_key(item: FeedItem, new_guid: str) -> None:
    regenerated = replace(item, guid=new_guid, title=item.title + " (aggiornato)")

    assert set(dedupe_keys(regenerated)) & set(dedupe_keys(item))


@given(items().filter(lambda item: item.title.strip()), hosts)
def test_the_same_text_under_another_domain_still_shares_a_key(item: FeedItem, other_host: str) -> None:
    moved = replace(item, guid="altro-guid", link=f"https://{other_host}/altra/pagina")

    assert set(dedupe_keys(moved)) & set(dedupe_keys(item))


@given(st.lists(st.tuples(words, labels), min_size=2, max_size=8, unique_by=lambda pair: pair[1]))
def test_distinct_items_get_distinct_keys(specs: list[tuple[str, str]]) -> None:
    base = "https://www.comune.valdimonte.example/notizie/avviso"
    feed_items = [
        # links differ only by a query value; titles by a number; guids by their slug
        FeedItem(guid=f"avviso-{slug}", link=f"{base}?id={slug}", title=f"{title} {n}", summary=title)
        for n, (title, slug) in enumerate(specs)
    ]
    keys = [key for item in feed_items for key in dedupe_keys(item)]

    assert len(keys) == len(set(keys)) == 3 * len(feed_items)
    assert all(KEY.match(key) for key in keys)


@settings(max_examples=30)
@given(st.lists(labels, min_size=2, max_size=6, unique=True), st.data())
def test_reordering_a_feed_changes_no_key(names: list[str], data: st.DataObject) -> None:
    entries = [
        {
            "title": f"Avviso {name}",
            "link": f"/notizie/{name}",
            "guid": f"g-{name}",
            "description": f"<p>{name}</p>",
        }
        for name in names
    ]
    reordered = data.draw(st.permutations(entries))

    def keys_by_guid(document: bytes) -> dict[str | None, tuple[str, ...]]:
        feed = parse_feed(
            document, url="https://comune.x.it/feed", content_type=None, tolerate_malformed=False
        )
        return {item.guid: dedupe_keys(item) for item in feed.items}

    assert keys_by_guid(rss_document(reordered)) == keys_by_guid(rss_document(entries))


def test_a_guid_that_is_the_link_adds_no_key_and_a_url_guid_is_canonical() -> None:
    link = "https://www.comune.valdimonte.example/notizie/avviso"
    as_link = FeedItem(
        guid="http://comune.valdimonte.example/notizie/avviso/", link=link, title="A", summary=""
    )
    wordpress = FeedItem(
        guid="https://www.comune.valdimonte.example/?p=123", link=link, title="A", summary=""
    )
    moved = replace(wordpress, guid="http://comune.valdimonte.example/?p=123")

    assert [key[0] for key in dedupe_keys(as_link)] == ["l", "c"]
    assert dedupe_keys(wordpress) == dedupe_keys(moved)
    assert [key[0] for key in dedupe_keys(wordpress)] == ["g", "l", "c"]


def test_a_home_page_link_and_empty_text_give_no_key() -> None:
    item = FeedItem(guid="avviso-1", link="https://www.comune.valdimonte.example/", title=" ", summary="")
    wordpress = replace(item, link="https://www.comune.valdimonte.example/?p=123")

    assert [key[0] for key in dedupe_keys(item)] == ["g"]
    assert [key[0] for key in dedupe_keys(wordpress)] == ["g", "l"]  # a query names an item


@pytest.mark.parametrize(
    ("keys", "seen", "duplicate"),
    [
        (("g:1", "l:1", "c:1"), {"g:1"}, True),  # same guid: edited or re-ordered
        (("g:2", "l:1", "c:1"), {"l:1", "c:1"}, True),  # new guid, same link and text: a migration
        (("g:2", "l:1", "c:2"), {"l:1", "c:1"}, False),  # a listing page as link: another item
        (("g:2", "l:2", "c:1"), {"c:1"}, True),  # same words, new guid and link, within days: a repost
        (("l:1", "c:2"), {"l:1"}, True),  # no guid: the link is the identity (a typo fixed)
        (("l:2", "c:1"), {"c:1"}, True),
        (("c:1",), {"c:1"}, True),  # neither guid nor link: the text decides
        (("g:1", "l:1", "c:1"), set(), False),
    ],
)
def test_which_evidence_makes_a_duplicate(keys: tuple[str, ...], seen: set[str], duplicate: bool) -> None:
    assert is_duplicate(keys, seen) is duplicate
