"""Rendering for Slack, Discord and Matrix: never over the limit as each platform counts, links whole,
and a feed item's markup shown as written, never formatting or notifying. The sandbox's fakes count,
read and spot mentions on their own (slack.shown_text, discord.shown_text, matrix.event_bytes, the
mention detectors): the properties check each renderer against what its platform would do."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.text import PostParts, plain_text
from chalicelib.channels.webhooks.common import outside_urls
from chalicelib.channels.webhooks.discord import DiscordAdapter
from chalicelib.channels.webhooks.discord import message_payload as discord_payload
from chalicelib.channels.webhooks.matrix import MatrixAdapter, message_content
from chalicelib.channels.webhooks.slack import WORD_JOINER, SlackAdapter
from chalicelib.channels.webhooks.slack import message_payload as slack_payload
from devtools.sandbox.webhooks import discord as discord_fake
from devtools.sandbox.webhooks import matrix as matrix_fake
from devtools.sandbox.webhooks import slack as slack_fake
from tests.offline import NoNetwork, no_secret

ANNOUNCEMENT = Announcement(
    tenant="comune-prova",
    id="a1",
    source="notizie",
    title="Lavori in via Roma",
    summary="Da lunedì via Roma è chiusa al traffico (A & B).",
    link="https://www.comune.example.it/notizie/lavori?canale=1&utm_source=x",
    categories=("Lavori pubblici",),
)


def slack() -> SlackAdapter:
    return SlackAdapter(webhook_url=no_secret, session=NoNetwork())


def discord() -> DiscordAdapter:
    return DiscordAdapter(webhook_url=no_secret, session=NoNetwork())


def matrix() -> MatrixAdapter:
    return MatrixAdapter(
        homeserver="https://matrix.example.it", room_id="!a:example.it", token=no_secret, session=NoNetwork()
    )


def _unbolded(shown: str, title: str | None, marker: str) -> str:
    bold = f"{marker}{title}{marker}"
    return title + shown[len(bold) :] if title is not None and shown.startswith(bold) else shown


def _plain(announcement: Announcement) -> str:
    return plain_text(PostParts.from_announcement(announcement))


class _Html(HTMLParser):
    """The tags and the text of an HTML fragment, <br> read as a line break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.anchors: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._href: str | None = None
        self._anchor_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "br":
            self.text.append("\n")
        if tag == "a":
            self._href, self._anchor_start = dict(attrs).get("href"), len("".join(self.text))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, "".join(self.text)[self._anchor_start :]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _html(fragment: str) -> _Html:
    parser = _Html()
    parser.feed(fragment)
    parser.close()
    return parser


# -- examples ------------------------------------------------------------------------------------------


def test_slack_escapes_control_characters_and_keeps_the_link_clickable() -> None:
    post = slack().render(replace(ANNOUNCEMENT, title="Avviso <!channel> & <b>"))
    assert post.text == (
        "*Avviso &lt;!channel&gt; &amp; &lt;b&gt;*\n\n"
        "Da lunedì via Roma è chiusa al traffico (A &amp; B).\n\n"
        "<https://www.comune.example.it/notizie/lavori?canale=1&amp;utm_source=x>\n\n"
        "#LavoriPubblici"
    )
    assert slack_fake.mentions(post.text) == []
    assert (post.limit, post.parse_mode, post.image) == (3000, "mrkdwn", None)


def test_slack_defuses_broadcast_words_invisibly() -> None:
    post = slack().render(replace(ANNOUNCEMENT, summary="Avvisate @channel e @here, scrivete a x@here.it"))
    assert f"@{WORD_JOINER}channel e @{WORD_JOINER}here" in post.text
    assert "x@here.it" in post.text  # an address is not a broadcast
    assert slack_fake.mentions(post.text) == []


def test_slack_leaves_a_title_plain_when_bold_markers_would_break_it() -> None:
    post = slack().render(replace(ANNOUNCEMENT, title="Sconto *50%* oggi"))
    assert post.text.startswith("Sconto *50%* oggi\n\n")


def test_slack_image_alt_text_is_cut_to_slack_s_limit() -> None:
    post = slack().render(
        replace(ANNOUNCEMENT, image=Image(url="https://img.example.it/a.jpg", alt="parola " * 400))
    )
    [section] = slack_payload(post)["blocks"]
    alt = section["accessory"]["alt_text"]
    assert 1900 < len(alt) <= slack_fake.ALT_TEXT_LIMIT
    assert section["text"]["verbatim"] is True


def test_discord_escapes_markdown_but_not_inside_links() -> None:
    item = replace(
        ANNOUNCEMENT,
        title="[clicca](https://evil.example.com) **Urgente** <@&1234>",
        summary="# Non un titolo\n- non una lista\n1. non un elenco\nvedi https://www.comune.example.it/a_b_c",
    )
    post = discord().render(item)
    assert post.text.startswith(r"**\[clicca\](<https://evil.example.com>) \*\*Urgente\*\* \<@&1234\>**")
    assert "\n\\# Non un titolo\n\\- non una lista\n1\\. non un elenco\n" in post.text
    # Links in the text are exact and quiet; the announcement's link stays bare for Discord to preview.
    assert "vedi <https://www.comune.example.it/a_b_c>\n\n" + ANNOUNCEMENT.link + "\n\n" in post.text
    shown = discord_fake.shown_text(post.text)
    assert shown == "**" + _plain(item)[: len(item.title)] + "**" + _plain(item)[len(item.title) :]


def test_discord_does_not_link_what_is_no_url_here() -> None:
    post = discord().render(replace(ANNOUNCEMENT, summary="http://localhost/a_b<c"))
    assert "http:\\/\\/localhost/a\\_b\\<c" in post.text
    assert "http://localhost/a_b<c" in discord_fake.shown_text(post.text)


def test_discord_never_pings_even_when_the_text_says_everyone() -> None:
    post = discord().render(replace(ANNOUNCEMENT, title="@everyone @here <@123456789012345678>"))
    assert discord_fake.pings(discord_payload(post)) == []
    # The same content without allowed_mentions would ping: the detector is not blind.
    assert discord_fake.pings({"content": "@everyone"}) == ["@everyone"]


def test_discord_does_not_bold_a_title_ending_in_a_bare_link() -> None:
    """Discord's autolink would take the closing ** into the link."""
    post = discord().render(replace(ANNOUNCEMENT, title=f"Bando: {ANNOUNCEMENT.link}"))
    assert post.text.startswith(f"Bando: {ANNOUNCEMENT.link}\n\n")


def test_matrix_sends_plain_text_and_the_same_text_as_html() -> None:
    post = matrix().render(replace(ANNOUNCEMENT, title="Avviso <b>@room</b> & più"))
    content = message_content(post)
    assert content["body"] == post.text
    assert content["formatted_body"].startswith(
        "<strong>Avviso &lt;b&gt;@room&lt;/b&gt; &amp; più</strong><br>"
    )
    assert content["m.mentions"] == {}
    assert matrix_fake.pings(content) == []
    assert matrix_fake.pings({"body": "@room"}) == ["@room"]  # without m.mentions the legacy rule fires


def test_matrix_cuts_a_long_text_by_bytes_of_the_event() -> None:
    post = matrix().render(replace(ANNOUNCEMENT, summary="😀 & <i> " * 10_000))
    assert post.truncated
    assert post.length <= post.limit
    assert matrix_fake.event_bytes(message_content(post)) <= matrix_fake.MAX_EVENT_BYTES


# -- properties ----------------------------------------------------------------------------------------

MARKUP = st.sampled_from(
    [
        "<b>",
        "</b>",
        "&",
        "&amp;",
        "<!channel>",
        "<!here|here>",
        "<@U123>",
        "@channel",
        "@everyone",
        "@here",
        "@room",
        "*",
        "**",
        "_",
        "~~",
        "`",
        "```",
        "||",
        "\\",
        "[x](https://evil.example.com)",
        "\n# ",
        "\n> ",
        "\n- ",
        "\n1. ",
        "-#",
        "<t:1700000000>",
        "<:emoji:123>",
        "|",
        '"',
        "\u2060",
    ]
)
TEXTS = st.lists(
    st.one_of(
        st.text(max_size=30),
        MARKUP,
        st.sampled_from(["🇮🇹", "👨\u200d👩\u200d👧", "e\u0301", "😀", "…", "\n\n", " "]),
        st.builds(lambda word, n: word * n, st.sampled_from(["a ", "🇮🇹", "& ", "<"]), st.integers(1, 1500)),
        st.builds(
            "https://{}.it/{}".format,
            st.from_regex(r"[a-z]{1,10}", fullmatch=True),
            st.text("ab/-_*&|~", max_size=60),
        ),
    ),
    max_size=30,
).map("".join)
LINKS = st.builds(
    "https://comune.example.it/{}".format, st.from_regex(r"[a-z0-9/_&=?|*-]{0,200}", fullmatch=True)
)
IMAGES = st.none() | st.builds(
    Image,
    url=st.sampled_from(["https://img.example.it/a.jpg", "ftp://img.example.it/a.jpg"]),
    alt=st.text(max_size=50),
)
ANNOUNCEMENTS = st.builds(
    Announcement,
    tenant=st.just("t"),
    id=st.just("a"),
    source=st.just("s"),
    title=TEXTS,
    summary=TEXTS,
    link=st.none() | LINKS,
    image=IMAGES,
    categories=st.lists(st.text(max_size=20), max_size=4).map(tuple),
)


def _check_link(shown: str, link: str | None) -> None:
    if link is not None:
        assert link in shown.split("\n\n")


def _slack_url(url: str) -> str:
    """A | cannot stay in a Slack link (it would start the label): it goes percent-encoded, the same URL."""
    return url.replace("|", "%7C")


@settings(max_examples=150, deadline=None)
@given(announcement=ANNOUNCEMENTS)
def test_property_slack_within_limits_shown_as_written_and_silent(announcement: Announcement) -> None:
    post = slack().render(announcement)
    assert post.length <= post.limit
    payload = slack_payload(post)
    texts = [payload["text"]] + [block["text"]["text"] for block in payload.get("blocks", [])]
    assert all(len(text) <= slack_fake.SECTION_TEXT_LIMIT for text in texts)
    assert all(slack_fake.mentions(text) == [] for text in texts)
    # The word joiners that defuse broadcast words are invisible: compared without them.
    title = outside_urls(post.title, str, _slack_url).replace(WORD_JOINER, "") if post.title else None
    shown = _unbolded(slack_fake.shown_text(post.text).replace(WORD_JOINER, ""), title, "*")
    _check_link(shown, post.link and _slack_url(post.link))
    if not post.truncated:
        expected = outside_urls(_plain(announcement), str, _slack_url)
        assert shown == expected.replace(WORD_JOINER, "")


@settings(max_examples=150, deadline=None)
@given(announcement=ANNOUNCEMENTS)
def test_property_discord_within_limits_shown_as_written_and_silent(announcement: Announcement) -> None:
    post = discord().render(announcement)
    assert post.length <= post.limit
    payload = discord_payload(post)
    assert discord_fake.content_length(payload["content"]) <= discord_fake.CONTENT_LIMIT
    for embed in payload.get("embeds", []):
        for field, limit in discord_fake.EMBED_FIELD_LIMITS.items():
            assert len(embed.get(field, "")) <= limit
    assert discord_fake.pings(payload) == []
    assert discord_fake.pings({**payload, "allowed_mentions": None}) is not None
    shown = _unbolded(discord_fake.shown_text(post.text), post.title or None, "**")
    _check_link(shown, post.link)
    if not post.truncated:
        assert shown == _plain(announcement)


@settings(max_examples=150, deadline=None)
@given(announcement=ANNOUNCEMENTS)
def test_property_matrix_within_the_event_limit_and_html_shows_the_body(announcement: Announcement) -> None:
    post = matrix().render(announcement)
    assert post.length <= post.limit
    content = message_content(post)
    assert matrix_fake.event_bytes(content) <= matrix_fake.MAX_EVENT_BYTES
    assert matrix_fake.pings(content) == []
    html = _html(content["formatted_body"])
    assert html.tags <= {"strong", "a", "br"}
    assert "".join(html.text) == post.text
    assert all(href == text for href, text in html.anchors)  # every link shows where it goes
    _check_link(post.text, post.link)
    if not post.truncated:
        assert post.text == _plain(announcement)
