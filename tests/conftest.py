"""Shared fixtures: a dummy AWS environment, and a local stack built from a config written by the test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Tests never reach AWS: a region and dummy credentials, set before anything imports boto3.
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-south-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_PROFILE", None)

FEEDS = Path(__file__).resolve().parent.parent / "events" / "feeds"


def tenant(
    tenant_id: str = "comune-prova",
    sources: list[dict[str, Any]] | None = None,
    channels: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A tenant whose every source is routed to every channel; channels default to sandboxed
    Telegram and Mastodon (their env: tokens are never set in tests)."""
    sources = sources or [{"id": "notizie", "url": "https://sample.feeds.invalid/feed.rss"}]
    channels = channels or [
        {
            "id": "telegram",
            "platform": "telegram",
            "chat": "@ComuneProva",
            "token": "env:TEST_UNSET_TELEGRAM",
        },
        {
            "id": "mastodon",
            "platform": "mastodon",
            "instance": "https://mastodon.invalid",
            "token": "env:TEST_UNSET_MASTODON",
        },
    ]
    defaults = {
        "first_run": "post_recent",
        "max_age_hours": 87600,
        "max_items_per_poll": 10,
        "min_interval_seconds": 0,
    }
    return {
        "id": tenant_id,
        "name": f"Comune {tenant_id}",
        "sources": [s if s.get("kind") == "cap" else defaults | s for s in sources],
        "channels": channels,
        "routes": [{"source": s["id"], "channels": [c["id"] for c in channels]} for s in sources],
    }


@pytest.fixture
def make_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start a local stack on a config of tenants, serving `feeds` (name -> bytes) as sample feeds.
    Leases and retry back-offs are shortened so failures can be exercised in seconds."""
    from devtools.stack import LocalStack

    monkeypatch.setenv("BANDITORE_LEASE_SECONDS", "1")
    monkeypatch.setenv("BANDITORE_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("BANDITORE_UNHEALTHY_RECHECK_SECONDS", "0.2")
    monkeypatch.delenv("BANDITORE_SECRETS_FILE", raising=False)
    started: list[LocalStack] = []

    def start(tenants: list[dict[str, Any]], feeds: dict[str, bytes], **options: Any) -> LocalStack:
        feeds_dir = tmp_path / "feeds"
        feeds_dir.mkdir(exist_ok=True)
        for name, body in feeds.items():
            (feeds_dir / name).write_bytes(body)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"version": 1, "tenants": tenants}), encoding="utf-8")
        stack = LocalStack(config, state_dir=tmp_path / "state", persist=False, feeds_dir=feeds_dir)
        started.append(stack)
        return stack.start(**options)

    yield start
    for stack in started:
        stack.stop()
