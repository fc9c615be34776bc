"""parse_feed on every sample feed: normalisation details, and the right refusal for each bad input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import feedparser
import pytest

from chalicelib.announcements import Image
from chalicelib.sources.cms import ROME, SUMMARY_MAX_CHARS, FeedItem, ParsedFeed, parse_feed
from chalicelib.sources.errors import FeedError
from tests.feedserver import rss_document

FEEDS = Path(__file__).parents[2] / "events" / "feeds"
FEED_URL = "https://www.comune.valdimonte.example/notizie/feed"
SITE = "https://www.comune.valdimonte.example"


def parse(name: str, *, content_type: str | None = None, tolerate_malformed: bool = False) -> ParsedFeed:
    return parse_bytes((FEEDS / name).read_bytes(), content_type=content_type, tolerate=tolerate_malformed)


def parse_bytes(body: bytes, *, content_type: str | None = None, tolerate: bool = False) -> ParsedFeed:
    return parse_feed(body, url=FEED_URL, content_type=content_type, tolerate_malformed=tolerate)


def refusal(body: bytes, *, content_type: str | None = None, tolerate: bool = False) -> FeedError:
    with pytest.raises(FeedError) as raised:
        parse_bytes(body, content_type=content_type, tolerate=tolerate)
    return raised.value


def rome(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=ROME)  # type: ignore[misc]


# --- RSS 2.0 ---


def test_rss2_feed_and_items() -> None:
    feed = parse("comune-notizie.rss", content_type="application/rss+xml; charset=utf-8")

    assert (feed.version, feed.title, feed.link) == (
        "rss20",
        "Comune di Valdimonte \N{EN DASH} Notizie",
        SITE + "/",
    )
    assert feed.warnings == ()
    assert [item.guid for item in feed.items] == [
        "valdimonte-notizia-1482",
        "valdimonte-evento-377",
        "valdimonte-notizia-1479",
        SITE + "/notizie/anagrafe-orari-cie",
        "valdimonte-bando-91",
        "valdimonte-notizia-1476",
    ]


def test_rss2_item_with_image_enclosure_html_summary_and_date() -> None:
    item = parse("comune-notizie.rss").items[0]

    assert item == FeedItem(
        guid="valdimonte-notizia-1482",
        link=SITE + "/notizie/allerta-meteo-scuole-chiuse",  # utm_* removed
        title="Allerta meteo arancione: scuole chiuse martedì 18 novembre",
        summary=(
            "Il Sindaco ha firmato l'ordinanza n. 214 che dispone la chiusura di tutte le scuole di ogni "
            "ordine e grado per la giornata di martedì 18 novembre.\n\n"
            "Si raccomanda di evitare gli spostamenti non necessari & di seguire gli aggiornamenti sui "
            "canali ufficiali del Comune."
        ),
        image=Image(url=SITE + "/media/allerta-arancione.jpg", alt="", mime_type="image/jpeg"),
        categories=("Protezione civile", "Scuola"),
        published=rome(2025, 11, 17, 9, 30),
    )
    assert item.published is not None
    assert item.published.tzinfo == ROME


def test_rss2_media_content_image_and_gmt_date_in_rome_time() -> None:
    item = parse("comune-notizie.rss").items[1]

    assert item.image == Image(url=SITE + "/media/mercatino-natale.webp", mime_type="image/webp")
    assert item.published == rome(2025, 11, 16, 18, 0)  # 17:00 GMT
    assert item.summary.startswith(
        "Dal 29 novembre al 6 gennaio tornano le casette di legno in piazza Garibaldi:"
    )


def test_rss2_relative_img_in_description_and_list_and_entities() -> None:
    item = parse("comune-notizie.rss").items[2]

    assert item.title == "Lavori all\N{RIGHT SINGLE QUOTATION MARK}illuminazione pubblica in via Roma"
    assert item.link == SITE + "/notizie/lavori-illuminazione-via-roma/"  # as the CMS wrote it
    assert item.image == Image(
        url=SITE + "/media/via-roma-cantiere.jpg", alt="Il cantiere in via Roma all'altezza del civico 12"
    )
    assert item.categories == ("Lavori pubblici", "Viabilità")  # " lavori  pubblici " is the same
    assert item.summary == (
        "Da lunedì 17 novembre, per circa due settimane, è istituito il senso unico alternato in via Roma, "
        "tra piazza Cavour e via Mazzini.\n\n"
        "• Orario dei lavori: 8.00\N{EN DASH}17.00\n"
        "• Accesso garantito ai residenti"
    )


def test_rss2_dateless_item_is_kept_with_its_line_break() -> None:
    item = parse("comune-notizie.rss").items[3]

    assert item.published is None
    assert item.summary == (
        "Fino al 31 dicembre l'Ufficio Anagrafe apre anche il martedì pomeriggio.\n"
        "Prenotazione obbligatoria sull'agenda online o allo 0123 456789."
    )


def test_rss2_pdf_enclosure_is_no_image_and_content_img_is_used() -> None:
    item = parse("comune-notizie.rss").items[4]

    assert item.link == SITE + "/bandi/contributi-affitto-2025?anno=2025#modulistica"  # fbclid removed
    assert item.image == Image(
        url=SITE + "/media/bando-affitto.png", alt="Locandina del bando contributi affitto 2025"
    )
    # the description is the summary; content:encoded only lends its image
    assert (
        item.summary
        == "Contributi per il pagamento del canone di locazione: requisiti, importi e modulistica."
    )


def test_rss2_tracking_pixel_is_no_image() -> None:
    item = parse("comune-notizie.rss").items[5]

    assert item.image is None
    assert item.summary.endswith("nella Sala consiliare.\n\nLa seduta è trasmessa in diretta streaming.")


# --- Atom, RSS 1.0, RSS 0.91 ---


def test_atom_feed() -> None:
    feed = parse("comune-notizie.atom", content_type="application/atom+xml")
    first, second, third, fourth = feed.items

    assert (feed.version, feed.link, feed.warnings) == ("atom10", SITE + "/", ())
    # type="html": the entity is decoded
    assert first.title == "Raccolta differenziata: nuovo calendario per l\N{RIGHT SINGLE QUOTATION MARK}umido"
    assert first.link == SITE + "/notizie/raccolta-umido-calendario"  # relative to xml:base
    assert first.image == Image(url=SITE + "/media/calendario-umido.png", mime_type="image/png")
    assert first.categories == ("Ambiente", "Rifiuti")  # labels, not terms
    assert first.published == rome(2025, 11, 17, 9, 0)  # <published>, not <updated>
    assert first.summary == (
        "Dal 1° dicembre l\N{RIGHT SINGLE QUOTATION MARK}umido si raccoglie il lunedì e il giovedì.\n\n"
        "Il calendario è in distribuzione nelle cassette postali."
    )
    assert (
        second.summary
        == "Assistenza gratuita per SPID, PagoPA e fascicolo sanitario: ogni mercoledì dalle 15 alle 18."
    )
    assert second.image == Image(
        url=SITE + "/media/punto-digitale.jpg", alt="Un facilitatore digitale aiuta una cittadina"
    )
    assert second.categories == ("Servizi digitali", "biblioteca")  # a term where there is no label
    assert third.published == rome(2025, 11, 3, 14, 20)  # only <updated>
    assert fourth.published == rome(2025, 7, 25, 9, 0)  # summer time, +02:00
    assert fourth.guid == "tag:comune.valdimonte.example,2025:evento-380"


def test_rss1_feed() -> None:
    feed = parse("comune-notizie-rdf.xml")
    first, _, last = feed.items

    assert feed.version == "rss10"
    assert first.guid == first.link == SITE + "/notizie/tari-2025-scadenza"  # rdf:about
    assert first.published == rome(2025, 11, 16, 11, 0)  # dc:date
    assert first.summary.startswith("Il pagamento si effettua con l'avviso PagoPA")
    assert last.categories == ("Ambiente", "Viabilità")  # dc:subject
    assert last.published is None


def test_rss091_with_netscape_doctype_and_latin1() -> None:
    feed = parse("rss091.xml")

    assert (feed.version, feed.warnings) == ("rss091n", ())
    assert [item.summary for item in feed.items] == [
        "Caldarroste, vin brulé e musica popolare nel centro storico, dalle 10 alle 19.",
        "Quattro serate nella sede della Pro Loco, iscrizioni entro venerdì 28 novembre.",
    ]
    assert all(item.guid is None and item.published is None for item in feed.items)


# --- encodings and content types ---


def test_wrong_declared_encoding_is_read_anyway_with_a_warning() -> None:
    feed = parse("wrong-encoding.xml")

    assert feed.items[0].title == "Festa patronale di San Martino: città in festa"
    assert feed.items[0].summary.endswith("Perché è così bella?")
    assert len(feed.warnings) == 1
    assert "declared as utf-8, but parsed as windows-1252" in feed.warnings[0]


def test_text_xml_without_charset_follows_the_xml_declaration_silently() -> None:
    feed = parse("comune-notizie.rss", content_type="text/xml")

    assert feed.warnings == ()
    assert feed.items[0].title.endswith("martedì 18 novembre")


def test_a_feed_served_as_html_is_read_with_a_warning() -> None:
    feed = parse("comune-notizie.rss", content_type="text/html; charset=utf-8")

    assert len(feed.items) == 6
    assert feed.warnings == ("not served as XML: text/html; charset=utf-8 is not an XML media type",)


# --- bad documents ---


@pytest.mark.parametrize("tolerate", [False, True])
@pytest.mark.parametrize("name", ["xml-bomb.xml", "xxe.xml"])
def test_entity_declarations_are_refused_before_feedparser_sees_them(
    name: str, tolerate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser saw a document that declares entities")

    monkeypatch.setattr(feedparser, "parse", must_not_run)

    error = refusal((FEEDS / name).read_bytes(), tolerate=tolerate)

    assert error.reason == "unsafe_xml"
    assert FEED_URL in str(error)


def _bomb() -> str:
    return (FEEDS / "xml-bomb.xml").read_text().replace("\N{EN DASH}", "-")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(_bomb().encode("utf-16"), None, id="utf-16 with BOM"),
        pytest.param(
            _bomb().replace(' encoding="UTF-8"', "").encode("utf-16-be"),
            "application/xml; charset=utf-16be",
            id="utf-16be by charset, no BOM",
        ),
        pytest.param(
            _bomb().replace("UTF-8", "utf-7").encode().replace(b"<!", b"+ADw-!"),
            None,
            id="utf-7, no '<!ENTITY' bytes at all",
        ),
        pytest.param(_bomb().replace("UTF-8", "cp037").encode("cp037"), None, id="ebcdic"),
        pytest.param(_bomb().replace("<!ENTITY", "<!entity").encode(), None, id="lower case"),
        pytest.param(
            _bomb().replace("UTF-8", "unicode_escape").replace("<!", "\\x3c!").encode(),
            None,
            id="unicode_escape, '\\x3c' for '<'",
        ),
    ],
)
def test_entity_declarations_are_found_in_any_encoding(body: bytes, content_type: str | None) -> None:
    assert refusal(body, content_type=content_type, tolerate=True).reason == "unsafe_xml"


def test_a_codec_feedparser_cannot_survive_is_an_encoding_error() -> None:
    body = rss_document([{"title": "Avviso"}], title="Comune").replace(b"UTF-8", b"punycode")

    assert refusal(body).reason == "encoding"


def test_a_codec_that_only_decodes_strictly_is_scanned_and_parsed() -> None:
    body = rss_document([{"title": "Avviso"}]).replace(b"UTF-8", b"idna")

    assert [item.title for item in parse_bytes(body).items] == ["Avviso"]


def test_undeclared_entities_stay_literal_text_even_for_the_lenient_parser() -> None:
    body = rss_document([{"title": "Avviso", "guid": "x"}]).replace(b"Avviso", b"&lol9; &xxe;")

    assert refusal(body).reason == "malformed"  # the strict parser stops at an undefined entity
    assert parse_bytes(body, tolerate=True).items[0].title == "&lol9; &xxe;"


def test_not_well_formed_is_refused_unless_tolerated() -> None:
    body = (FEEDS / "malformed.xml").read_bytes()

    error = refusal(body)
    assert error.reason == "malformed"
    assert "tolerate_malformed" in str(error)

    feed = parse_bytes(body, tolerate=True)
    assert [item.title for item in feed.items] == [
        "Orari & servizi dello Sportello Unico durante le festività",
        "Nuovi parcheggi rosa in piazza della Stazione",
    ]
    assert feed.items[0].published == rome(2025, 11, 20, 10, 0)
    assert len(feed.warnings) == 1
    assert "not well-formed" in feed.warnings[0]


@pytest.mark.parametrize("tolerate", [False, True])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param((FEEDS / "not-a-feed.html").read_bytes(), id="html page"),
        pytest.param(b"", id="empty"),
        pytest.param(
            b'<?xml version="1.0"?><urlset><url><loc>https://x.example/</loc></url></urlset>', id="sitemap"
        ),
    ],
)
def test_not_a_feed(body: bytes, tolerate: bool) -> None:
    assert refusal(body, content_type="text/html", tolerate=tolerate).reason == "not_a_feed"


def test_a_body_naming_a_local_file_is_not_opened(tmp_path: Path) -> None:
    # feedparser opens a string that names a file; the body must only ever be data.
    local = tmp_path / "feed.rss"
    local.write_bytes((FEEDS / "comune-notizie.rss").read_bytes())

    assert refusal(str(local).encode()).reason == "not_a_feed"


# --- item rules ---


def test_items_without_title_summary_or_link_are_skipped_with_a_warning() -> None:
    body = rss_document([{"category": "Varie"}, {"title": "Solo il titolo"}])

    feed = parse_bytes(body)

    assert [item.title for item in feed.items] == ["Solo il titolo"]
    assert feed.items[0].link is None
    assert feed.warnings == ("entry 1 has no title, summary or link: skipped",)


def test_links_are_made_absolute_and_only_http_is_kept() -> None:
    body = rss_document(
        [
            {"title": "relativo", "link": "/notizie/relativa"},
            {"title": "script", "link": "javascript:alert(1)"},
            {"title": "posta", "link": "mailto:urp@comune.valdimonte.example"},
        ]
    )

    links = [item.link for item in parse_bytes(body).items]

    assert links == [SITE + "/notizie/relativa", None, None]


def test_a_long_summary_is_cut_at_a_word_boundary() -> None:
    words = " ".join(f"parola{n}" for n in range(2000))
    feed = parse_bytes(rss_document([{"title": "Lungo", "description": f"<p>{words}</p>"}]))

    summary = feed.items[0].summary
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.endswith("…")
    assert summary[:-1].split(" ")[-1] in words.split(" ")


def test_script_style_and_comments_never_reach_the_text() -> None:
    html = "<style>p{color:red}</style><p>Avviso<!-- nota interna --></p><script>track()</script><p>Fine</p>"
    feed = parse_bytes(rss_document([{"title": "T", "description": html}]))

    assert feed.items[0].summary == "Avviso\n\nFine"


def test_images_that_are_not_http_are_ignored() -> None:
    html = (
        '<img src="data:image/png;base64,AAAA" alt="x"><img src="javascript:x()"><img src="/ok.png" alt="Ok">'
    )
    feed = parse_bytes(rss_document([{"title": "T", "description": html}]))

    assert feed.items[0].image == Image(url=SITE + "/ok.png", alt="Ok")


def test_enclosure_takes_its_alt_from_the_same_image_in_the_html() -> None:
    html = '<p><img src="https://www.comune.valdimonte.example/media/a.jpg" alt="La piazza"></p>'
    body = rss_document([{"title": "T", "description": html, "enclosure": SITE + "/media/a.jpg"}])

    assert parse_bytes(body).items[0].image == Image(
        url=SITE + "/media/a.jpg", alt="La piazza", mime_type="image/jpeg"
    )
