"""Post budgets and channel health against DynamoDB in moto: the urgent reserve, a news flood that
waits for the next window without losing anything, and the health check's record and levels."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from chalicelib.channels.telegram import TelegramAdapter
from chalicelib.config.models import PostBudget
from chalicelib.publishing import budget
from chalicelib.secrets import SecretError
from chalicelib.storage.channel_health import ChannelHealth, WebhookHealth, get_health, record_health
from chalicelib.storage.deliveries import deliveries_of
from devtools.sandbox import Sandbox
from tests.conftest import FEEDS, tenant

RSS = (FEEDS / "comune-notizie.rss").read_bytes()
NOW = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)


def test_news_cannot_take_the_slots_kept_for_alerts(make_stack: Any) -> None:
    make_stack([tenant()], {})
    small = PostBudget(posts=3, per_seconds=60, urgent_reserve=1)

    news = [budget.take("comune-prova", "telegram", "normal", small, NOW) for _ in range(3)]
    urgent = [budget.take("comune-prova", "telegram", "urgent", small, NOW) for _ in range(2)]

    assert news[:2] == [None, None]  # 3 posts, 1 kept for alerts: news gets 2
    assert news[2] is not None and (news[2].used, news[2].cap) == (2, 2)
    assert news[2].wait_seconds == 30  # the window turns at 10:01:00
    assert urgent[0] is None  # the reserve
    assert urgent[1] is not None and urgent[1].cap == 3
    # A new window, a new count; another channel has its own.
    assert budget.take("comune-prova", "telegram", "normal", small, NOW + timedelta(seconds=30)) is None
    assert budget.take("comune-prova", "mastodon", "normal", small, NOW) is None


def test_a_news_flood_waits_for_the_budget_and_loses_nothing(make_stack: Any) -> None:
    channels = [
        {
            "id": "telegram",
            "platform": "telegram",
            "chat": "@ComuneProva",
            "token": "env:TEST_UNSET_TELEGRAM",
            "budget": {"posts": 3, "per_seconds": 5, "urgent_reserve": 1},
        }
    ]
    stack = make_stack([tenant(channels=channels)], {"feed.rss": RSS})
    result = stack.poll()
    [source] = result["sources"]

    stack.drain(timeout=2)
    first_window = len(stack.sandbox.posts("telegram"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stack.sandbox.posts("telegram")) < 6:
        stack.drain(timeout=2)
        time.sleep(0.2)

    assert 1 <= first_window <= 4  # two per 5-second window (the drain may straddle one turn)
    posts = stack.sandbox.posts("telegram")
    assert len(posts) == 6  # all of them, in later windows
    deliveries = [d for a in source["announcements"] for d in deliveries_of("comune-prova", a)]
    assert {d.status for d in deliveries} == {"posted"}
    times = sorted(datetime.fromisoformat(post["time"]) for post in posts)
    windows = {int(t.timestamp() // 5) for t in times}
    assert len(windows) >= 3  # never more than two news posts in one window
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert '"BudgetWaits"' in log and '"PublishFailures"' not in log


def test_the_health_check_records_each_channel_and_the_soonest_expiry(make_stack: Any) -> None:
    stack = make_stack([tenant()], {})
    stack.sandbox.revoke_token("mastodon", "sandbox-comune-prova-mastodon")

    first = stack.check_channels()
    again = stack.check_channels()

    assert first == {"checked": 2, "unhealthy": ["comune-prova/mastodon"], "token_days_left": None}
    assert again["checked"] == 1  # the healthy one is not asked again for hours; the broken one is
    telegram = get_health("comune-prova", "telegram")
    mastodon = get_health("comune-prova", "mastodon")
    assert telegram is not None and (telegram.state, telegram.reason) == ("healthy", "ok")
    assert mastodon is not None and (mastodon.state, mastodon.reason) == ("unhealthy", "auth")
    assert "sandbox-comune-prova-mastodon" not in mastodon.detail
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert '"UnhealthyChannels":1' in log.replace(" ", "") or '"UnhealthyChannels":[1' in log


def test_a_secret_that_cannot_be_read_is_reported_by_the_check_not_raised(
    sandbox: Sandbox, session: requests.Session
) -> None:
    def unreadable() -> str:
        raise SecretError("ssm:/banditore/missing: parameter not found")

    adapter = TelegramAdapter(
        chat="@ComuneProva", token=unreadable, session=session, api_base=sandbox.base_for("telegram")
    )

    found = adapter.check()

    assert (found.healthy, found.reason) == (False, "secret_unavailable")
    assert "ssm:/banditore/missing" in found.detail


def test_the_channels_command_lists_health_and_exits_1_when_a_channel_is_broken(
    make_stack: Any, capsys: Any
) -> None:
    from devtools.cli import main

    stack = make_stack([tenant()], {})
    assert main(["channels"]) == 0  # nothing checked yet: nothing known to be broken
    assert "? mai verificato" in capsys.readouterr().out

    stack.sandbox.revoke_token("telegram", "sandbox-comune-prova-telegram")
    code = main(["channels", "--check"])

    out = capsys.readouterr().out
    assert code == 1
    [telegram] = [line for line in out.splitlines() if line.startswith("comune-prova  telegram")]
    assert "✗ NON funzionante" in telegram and "auth" in telegram
    [mastodon] = [line for line in out.splitlines() if line.startswith("comune-prova  mastodon")]
    assert "✓ funzionante" in mastodon
    assert "sandbox-comune-prova-telegram" not in out


def test_a_skipped_post_gives_its_slot_back(make_stack: Any) -> None:
    make_stack([tenant()], {})
    one = PostBudget(posts=2, per_seconds=60, urgent_reserve=1)
    assert budget.take("comune-prova", "instagram", "normal", one, NOW) is None
    assert budget.take("comune-prova", "instagram", "normal", one, NOW) is not None  # news gets 1

    budget.give_back("comune-prova", "instagram", one, NOW)
    budget.give_back("comune-prova", "instagram", one, NOW)  # never below zero

    assert budget.take("comune-prova", "instagram", "normal", one, NOW) is None
    assert budget.take("comune-prova", "instagram", "normal", one, NOW) is not None


def test_instagram_skips_do_not_use_up_the_budget(make_stack: Any) -> None:
    channels = [
        {
            "id": "instagram",
            "platform": "instagram",
            "user_id": "17841400000000001",
            "token": "env:TEST_UNSET_INSTAGRAM",
            # One news post an hour: without the slot given back, the first skip would hold the rest.
            "budget": {"posts": 2, "per_seconds": 3600, "urgent_reserve": 1},
        }
    ]
    stack = make_stack([tenant(channels=channels)], {"feed.rss": RSS})
    result = stack.poll()
    [source] = result["sources"]

    stack.drain(timeout=10)

    deliveries = [d for a in source["announcements"] for d in deliveries_of("comune-prova", a)]
    assert len(deliveries) == 6
    assert {d.status for d in deliveries} == {"skipped"}  # no usable image: none fetchable here
    assert stack.sandbox.posts("instagram") == []


def test_a_finding_without_webhook_fields_keeps_the_webhook_and_drops_a_stale_expiry(make_stack: Any) -> None:
    make_stack([tenant()], {})
    webhook = WebhookHealth("ok", "ok", "", broken=False, checked_at=NOW)
    checked = ChannelHealth(
        "comune-prova",
        "telegram",
        "telegram",
        "healthy",
        "ok",
        "",
        NOW,
        NOW,
        NOW + timedelta(days=30),
        webhook,
    )
    later = NOW + timedelta(minutes=5)
    # The publisher's finding on a refused token: no webhook, no expiry.
    refused = replace(
        checked, state="unhealthy", reason="auth", checked_at=later, token_expires_at=None, webhook=None
    )

    assert record_health(checked) is True  # new
    assert record_health(replace(checked, checked_at=later)) is False  # same state: `since` stays
    assert record_health(refused) is True

    stored = get_health("comune-prova", "telegram")
    assert stored is not None
    assert (stored.state, stored.reason, stored.since) == ("unhealthy", "auth", later)
    assert stored.webhook == webhook  # what the channel check found about the webhook is kept
    assert stored.token_expires_at is None
