"""Channel benchmarks: what rendering one item costs on each platform (offline adapters, the way the
publisher renders before posting), and one item with a photo fanned out to a channel of every type on
the local stack (poll -> every platform fake has its post), with the platform calls each one made."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.registry import adapter_for
from devtools.preview import DEFAULT_CHANNELS
from devtools.stack import EVENTS, LocalStack

RENDERS = 200
FAN_OUT_RUNS = 10
_LONG = (
    "Dal 5 al 24 dicembre trenta bancarelle di artigiani e produttori del territorio in piazza "
    "Garibaldi, aperte tutti i giorni dalle 10 alle 20. Il 13 dicembre alle 17 accensione dell'albero "
    "con il coro delle scuole, alle 18 concerto della banda cittadina. 🎄🎶 Parcheggi gratuiti in via "
    "dello Stadio e navetta ogni 20 minuti dalla stazione. "
) * 6
ITEMS = {
    "short news": Announcement(
        tenant="bench",
        id="short",
        source="notizie",
        title="Chiusura uffici comunali il 24 dicembre",
        summary="Gli uffici resteranno chiusi per la vigilia di Natale.",
        link="https://www.comune.esempio.it/notizie/chiusura-uffici",
    ),
    "long news + photo + tags": Announcement(
        tenant="bench",
        id="long",
        source="notizie",
        title="Torna il Mercato di Natale in piazza Garibaldi: programma, orari e parcheggi",
        summary=_LONG,
        link="https://www.comune.esempio.it/notizie/mercato-di-natale-2026?utm_content=home",
        image=Image(url="https://www.comune.esempio.it/media/mercato.jpg", alt="Bancarelle in piazza"),
        categories=("Eventi", "Commercio locale", "Natale in città"),
    ),
}


def run() -> dict[str, Any]:
    return {"render_per_item": render_costs(), "fan_out": fan_out()}


def render_costs() -> dict[str, dict[str, float]]:
    """Median microseconds per render, per platform and item kind."""
    costs: dict[str, dict[str, float]] = {}
    for _, channel in DEFAULT_CHANNELS:
        adapter = adapter_for(channel, offline=True)
        costs[channel.platform] = {}
        for name, item in ITEMS.items():
            samples = []
            for _ in range(RENDERS):
                start = time.perf_counter()
                adapter.render(item)
                samples.append(time.perf_counter() - start)
            costs[channel.platform][name] = statistics.median(samples) * 1e6
    return costs


def fan_out() -> dict[str, Any]:
    """One new item with a photo -> a channel of every type, FAN_OUT_RUNS times."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        feeds = folder / "feeds"
        feeds.mkdir()
        photo = (EVENTS / "feeds" / "foto-mercato.jpg").read_bytes()
        (feeds / "foto-mercato.jpg").write_bytes(photo)
        config = _config(folder / "bench.yaml")
        stack = LocalStack(config, state_dir=folder / "state", persist=False, feeds_dir=feeds).start()
        try:
            return _measure(stack, feeds / "bench.rss")
        finally:
            stack.stop()


def _measure(stack: LocalStack, feed: Path) -> dict[str, Any]:
    platforms = [channel.platform for _, channel in DEFAULT_CHANNELS]
    feed.write_bytes(_feed([]))
    stack.poll()
    latencies = []
    for run in range(1, FAN_OUT_RUNS + 1):
        feed.write_bytes(_feed(list(range(1, run + 1))))
        start = time.perf_counter()
        result = stack.poll()
        stack.drain()
        latencies.append(time.perf_counter() - start)
        if result["sources"][0].get("new") != 1:
            raise RuntimeError(f"benchmark run went wrong: {result}")
    posts = {platform: len(stack.sandbox.posts(platform)) for platform in platforms}
    missing = {platform: n for platform, n in posts.items() if n < FAN_OUT_RUNS}
    if missing:
        raise RuntimeError(f"not every platform got every post: {posts}")
    requests = stack.sandbox.stats()["requests"]
    return {
        "channel_types": len(platforms),
        "runs": FAN_OUT_RUNS,
        "p50_seconds": statistics.median(latencies),
        "p95_seconds": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
        "posts_per_platform": posts,
        # Platform calls per post: session, uploads, containers, status polls, the post itself.
        "calls_per_post": {
            platform: sum(requests.get(platform, {}).values()) / FAN_OUT_RUNS for platform in platforms
        },
    }


def _feed(numbers: list[int]) -> bytes:
    when = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    items = "".join(
        f"<item><title>Mercato di Natale, avviso {n}</title>"
        f"<link>https://www.comune.esempio.it/notizie/mercato-{n}</link><guid>bench-{n}</guid>"
        f"<pubDate>{when}</pubDate><category>Eventi</category>"
        f'<media:content url="https://sample.feeds.invalid/foto-mercato.jpg" medium="image" type="image/jpeg"/>'
        f"<description>{_LONG[:400]}</description></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">'
        f"<channel><title>Bench</title><link>https://www.comune.esempio.it/</link><description>x</description>"
        f"{items}</channel></rss>"
    ).encode()


def _config(path: Path) -> Path:
    channels = []
    for _, channel in DEFAULT_CHANNELS:
        fields = channel.model_dump(mode="json", exclude_defaults=True)
        refs = channel.secret_refs()
        fields.update(
            {name: f"env:BENCH_UNSET_{channel.platform.upper()}_{i}" for i, name in enumerate(refs)}
        )
        channels.append(fields)
    config = {
        "version": 1,
        "tenants": [
            {
                "id": "comune-bench",
                "name": "Comune di Prova",
                "sources": [
                    {
                        "id": "notizie",
                        "url": "https://sample.feeds.invalid/bench.rss",
                        "min_interval_seconds": 0,
                        "first_run": "post_recent",  # the first item is a measured run too
                    }
                ],
                "channels": channels,
                "routes": [{"source": "notizie", "channels": [c["id"] for c in channels]}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
