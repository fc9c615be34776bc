"""Parse + dedupe throughput of a 1,000-item feed, against bare feedparser on the same bytes."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import feedparser

from chalicelib.sources.cms import parse_feed
from chalicelib.sources.dedupe import dedupe_keys

ITEMS = 1000
RUNS = 5


def thousand_item_feed() -> bytes:
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    items = []
    for i in range(ITEMS):
        when = (start + timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        items.append(
            f"<item><title>{escape(f'Avviso n. {i}: lavori in via Roma e città')}</title>"
            f"<link>https://www.comune.esempio.it/notizie/{i}?utm_source=rss</link>"
            f"<guid>https://www.comune.esempio.it/?p={i}</guid><pubDate>{when}</pubDate>"
            f"<category>Lavori pubblici</category>"
            f"<description>{escape(f'<p>Dal {i} novembre <b>chiusura</b> della strada. Più info &amp; orari.</p>')}</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Comune</title>'
        "<link>https://www.comune.esempio.it/</link><description>Notizie</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _median_seconds(work: Any) -> float:
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def run() -> dict[str, Any]:
    body = thousand_item_feed()

    def ours() -> None:
        parsed = parse_feed(
            body,
            url="https://www.comune.esempio.it/feed",
            content_type="application/rss+xml",
            tolerate_malformed=False,
        )
        for item in parsed.items:
            dedupe_keys(item)

    bare = _median_seconds(lambda: feedparser.parse(body))
    full = _median_seconds(ours)
    return {
        "items": ITEMS,
        "feedparser_seconds": bare,
        "parse_dedupe_seconds": full,
        "items_per_second": ITEMS / full,
        "ratio_vs_feedparser": full / bare,
    }
