"""Registering inbox webhooks (chalicelib/inbox/webhook_setup.py) against the sandbox's Telegram and
Meta fakes: first registration, nothing to do when registered, a lost registration put back, a refused
token, and the fakes' own refusals (an http URL, an unknown field, a Page token where an app token is
needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib import channel_checks
from chalicelib.config.models import Config
from chalicelib.inbox.webhook_setup import PUBLIC_URL_ENV, TELEGRAM_UPDATES, sync_webhooks
from chalicelib.settings import SANDBOX_CHANNELS_ENV
from chalicelib.storage.channel_health import get_health
from devtools.sandbox import Sandbox
from devtools.sandbox.inbox_webhooks import SANDBOX_APP_ID
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake

BASE = "https://banditore.example.it/api"
BOT_TOKEN = "123456:bot-token-of-the-comune"
WEBHOOK_SECRET = "webhook-secret_0123"
PAGE_TOKEN = "page-token-of-the-comune"
APP_TOKEN = f"{SANDBOX_APP_ID}|app-secret-of-banditore"
VERIFY_TOKEN = "verify-token-of-banditore"
PAGE = "1234567890"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch, no_secrets_file: None) -> None:
    for name, value in {
        "TEST_BOT_TOKEN": BOT_TOKEN,
        "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TEST_PAGE_TOKEN": PAGE_TOKEN,
        "TEST_APP_TOKEN": APP_TOKEN,
        "TEST_APP_SECRET": "app-secret",
        "TEST_VERIFY_TOKEN": VERIFY_TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(PUBLIC_URL_ENV, BASE)


def config(sandbox: Sandbox, *, app_token: bool = False, inbox: bool = True, **telegram: Any) -> Config:
    facebook: dict[str, Any] = {
        "id": "facebook",
        "platform": "facebook",
        "page_id": PAGE,
        "token": "env:TEST_PAGE_TOKEN",
        "app_secret": "env:TEST_APP_SECRET",
        "verify_token": "env:TEST_VERIFY_TOKEN",
        "api_base": sandbox.base_for("facebook"),
        "inbox": inbox,
    }
    if app_token:
        facebook["app_token"] = "env:TEST_APP_TOKEN"
    channels = [
        {
            "id": "telegram",
            "platform": "telegram",
            "chat": "@ComuneProva",
            "token": "env:TEST_BOT_TOKEN",
            "webhook_secret": "env:TEST_WEBHOOK_SECRET",
            "api_base": sandbox.base_for("telegram"),
            "inbox": inbox,
        }
        | telegram,
        facebook,
        {"id": "mastodon", "platform": "mastodon", "instance": "https://m.invalid", "token": "env:X"},
    ]
    return Config.model_validate({"tenants": [{"id": "comune-prova", "name": "Prova", "channels": channels}]})


def by_channel(statuses: list[Any]) -> dict[str, Any]:
    return {status.channel: status for status in statuses}


def requests_to(sandbox: Sandbox, platform: str, endpoint: str) -> int:
    return int(sandbox.stats()["requests"].get(platform, {}).get(endpoint, 0))


NOW = datetime.now(UTC)


def test_first_run_registers_the_bot_and_subscribes_the_page(
    sandbox: Sandbox, session: requests.Session
) -> None:
    found = by_channel(sync_webhooks(config(sandbox), NOW, session=session))

    assert set(found) == {"telegram", "facebook"}  # Mastodon is polled: nothing to register
    telegram, facebook = found["telegram"], found["facebook"]
    expected = f"{BASE}/webhooks/telegram/comune-prova/telegram"
    assert (telegram.outcome, telegram.registration, telegram.pending) == ("registered", expected, 0)
    bot = sandbox.fake("telegram", TelegramFake).webhooks.bot(BOT_TOKEN)
    assert (bot.url, bot.secret, bot.allowed_updates) == (expected, WEBHOOK_SECRET, list(TELEGRAM_UPDATES))
    assert (facebook.outcome, facebook.registration) == ("registered", "feed, messages")
    assert sandbox.fake("facebook", FacebookFake).subscriptions.pages[PAGE] == {
        SANDBOX_APP_ID: ["feed", "messages"]
    }
    assert "manual" in facebook.detail  # no app token: the app's callback stays a dashboard setting
    assert not any(status.broken(NOW) for status in found.values())
    assert all(WEBHOOK_SECRET not in s.detail and BOT_TOKEN not in s.detail for s in found.values())


def test_nothing_is_sent_again_when_everything_is_registered(
    sandbox: Sandbox, session: requests.Session
) -> None:
    sync_webhooks(config(sandbox), NOW, session=session)

    found = by_channel(sync_webhooks(config(sandbox), NOW, session=session))

    assert [s.outcome for s in found.values()] == ["ok", "ok"]
    assert requests_to(sandbox, "telegram", "setWebhook") == 1
    assert requests_to(sandbox, "telegram", "getWebhookInfo") == 2
    assert requests_to(sandbox, "facebook", "subscribed_apps") == 3  # GET, POST, GET


def test_a_lost_registration_is_put_back_and_says_where_it_pointed(
    sandbox: Sandbox, session: requests.Session
) -> None:
    sync_webhooks(config(sandbox), NOW, session=session)
    # Someone registers the same bot elsewhere (a developer's machine with the production token).
    elsewhere = {"url": "https://dev.example.org/hook/their-secret-path"}
    api = sandbox.base_for("telegram")
    assert requests.post(f"{api}/bot{BOT_TOKEN}/setWebhook", json=elsewhere, timeout=5).json()["ok"]
    requests.delete(
        f"{sandbox.base_for('facebook')}/v24.0/{PAGE}/subscribed_apps",
        params={"access_token": PAGE_TOKEN},
        timeout=5,
    ).raise_for_status()

    looked = by_channel(sync_webhooks(config(sandbox), NOW, register=False, session=session))
    fixed = by_channel(sync_webhooks(config(sandbox), NOW, session=session))

    assert [(s.outcome, s.reason) for s in looked.values()] == [("unregistered", "lost")] * 2
    assert looked["telegram"].registration == elsewhere["url"]
    assert all(s.broken(NOW) for s in looked.values())
    assert (
        "dev.example.org" in looked["telegram"].detail
        and "their-secret-path" not in looked["telegram"].detail
    )
    assert [s.outcome for s in fixed.values()] == ["registered", "registered"]
    assert sandbox.fake("telegram", TelegramFake).webhooks.bot(BOT_TOKEN).url.startswith(BASE)


def test_subscribing_keeps_the_fields_the_app_already_had(
    sandbox: Sandbox, session: requests.Session
) -> None:
    sandbox.fake("facebook", FacebookFake).subscriptions.pages[PAGE] = {SANDBOX_APP_ID: ["mention"]}

    # Which app is ours is known from the app token: without one, another app's fields look the same.
    statuses = sync_webhooks(config(sandbox, app_token=True), NOW, session=session)
    [facebook] = [s for s in statuses if s.platform == "facebook"]

    assert facebook.outcome == "registered"
    assert sandbox.fake("facebook", FacebookFake).subscriptions.pages[PAGE][SANDBOX_APP_ID] == [
        "feed",
        "mention",
        "messages",
    ]


def test_a_refused_token_is_an_auth_error_without_the_token(
    sandbox: Sandbox, session: requests.Session
) -> None:
    sandbox.revoke_token("telegram", BOT_TOKEN)
    sandbox.revoke_token("facebook", PAGE_TOKEN)

    found = by_channel(sync_webhooks(config(sandbox), NOW, session=session))

    assert [(s.outcome, s.reason) for s in found.values()] == [("error", "auth")] * 2
    assert all(s.broken(NOW) for s in found.values())
    assert BOT_TOKEN not in found["telegram"].detail and PAGE_TOKEN not in found["facebook"].detail


def test_one_channel_failing_does_not_stop_the_other(sandbox: Sandbox, session: requests.Session) -> None:
    sandbox.inject("telegram", "server_error", endpoint="getWebhookInfo", count=1)

    found = by_channel(sync_webhooks(config(sandbox), NOW, session=session))

    assert (found["telegram"].outcome, found["telegram"].reason) == ("error", "server_error")
    assert found["facebook"].outcome == "registered"


def test_telegram_refuses_a_webhook_that_is_not_https(
    sandbox: Sandbox, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_URL_ENV, "http://banditore.example.it/api")

    [telegram] = [s for s in sync_webhooks(config(sandbox), NOW, session=session) if s.platform == "telegram"]

    assert (telegram.outcome, telegram.reason) == ("error", "bad_request")
    assert "An HTTPS URL must be provided for webhook" in telegram.detail
    assert sandbox.fake("telegram", TelegramFake).webhooks.bot(BOT_TOKEN).url == ""


def test_a_channel_without_webhook_secret_is_reported_not_registered(
    sandbox: Sandbox, session: requests.Session
) -> None:
    [telegram] = [
        s
        for s in sync_webhooks(config(sandbox, webhook_secret=None), NOW, session=session)
        if s.platform == "telegram"
    ]

    assert (telegram.outcome, telegram.reason) == ("error", "no_webhook_secret")
    assert requests_to(sandbox, "telegram", "setWebhook") == 0


def test_a_recent_delivery_error_is_reported_and_the_webhook_set_again(
    sandbox: Sandbox, session: requests.Session, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_URL_ENV, closed_port_url)  # loopback: the fake takes http there
    monkeypatch.setenv(SANDBOX_CHANNELS_ENV, "comune-prova/telegram")  # as the local stack says
    sync_webhooks(config(sandbox), NOW, session=session)
    fake = sandbox.fake("telegram", TelegramFake)
    message = fake.citizen_message(1001, "Le scuole sono aperte?")

    assert fake.webhooks.deliver(BOT_TOKEN, {"update_id": 1, "message": message}) == 0  # refused

    now = datetime.now(UTC)
    [telegram] = [s for s in sync_webhooks(config(sandbox), now, session=session) if s.platform == "telegram"]
    assert (telegram.outcome, telegram.reason, telegram.pending) == ("registered", "delivery_error", 1)
    assert telegram.last_error == "Connection refused" and telegram.broken(now)
    assert not telegram.broken(now + timedelta(hours=1))  # an old error is history
    assert requests_to(sandbox, "telegram", "setWebhook") == 2


def test_the_app_subscription_is_made_when_an_app_token_is_configured(
    sandbox: Sandbox, session: requests.Session
) -> None:
    [facebook] = [
        s
        for s in sync_webhooks(config(sandbox, app_token=True), NOW, session=session)
        if s.platform == "facebook"
    ]
    again = [
        s
        for s in sync_webhooks(config(sandbox, app_token=True), NOW, session=session)
        if s.platform == "facebook"
    ]

    app = sandbox.fake("facebook", FacebookFake).subscriptions.apps[SANDBOX_APP_ID]
    assert (app.callback_url, app.fields) == (f"{BASE}/webhooks/meta", ["feed", "messages"])
    assert facebook.outcome == "registered" and "manual" not in facebook.detail
    assert [s.outcome for s in again] == ["ok"]
    assert requests_to(sandbox, "facebook", "subscriptions") == 3  # GET, POST, GET


def test_the_app_subscription_refuses_a_page_token(sandbox: Sandbox) -> None:
    answer = requests.get(
        f"{sandbox.base_for('facebook')}/v24.0/{SANDBOX_APP_ID}/subscriptions",
        params={"access_token": PAGE_TOKEN},
        timeout=5,
    )

    assert answer.status_code == 400 and answer.json()["error"]["code"] == 15


def test_the_page_subscription_refuses_a_field_graph_does_not_know(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_for('facebook')}/v24.0/{PAGE}/subscribed_apps"

    unknown = requests.post(
        url, data={"subscribed_fields": "feed,tweets", "access_token": PAGE_TOKEN}, timeout=5
    )
    missing = requests.post(url, data={"access_token": PAGE_TOKEN}, timeout=5)

    assert [r.json()["error"]["code"] for r in (unknown, missing)] == [100, 100]
    assert "subscribed_fields[1]" in unknown.json()["error"]["message"]


def test_without_a_public_url_nothing_is_asked(
    sandbox: Sandbox, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PUBLIC_URL_ENV)

    found = sync_webhooks(config(sandbox), NOW, session=session)

    assert [(s.outcome, s.reason) for s in found] == [("off", "no_public_url")] * 2
    assert sandbox.stats()["requests"] == {}


def test_the_table_says_when_there_is_no_public_url_and_exits_1(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools.webhook_table import print_webhooks

    monkeypatch.delenv(PUBLIC_URL_ENV)

    code = print_webhooks(config(sandbox), NOW, register=True)

    out = capsys.readouterr().out
    assert code == 1
    assert f"{PUBLIC_URL_ENV} non è impostato" in out
    assert [line.split("  ")[0] for line in out.splitlines()[1:3]] == ["comune-prova", "comune-prova"]
    assert "— nessun URL pubblico" in out


def test_the_table_has_nothing_to_say_without_inbox_channels(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools.webhook_table import print_webhooks

    assert print_webhooks(config(sandbox, inbox=False), NOW, register=True) == 0
    assert "Nessun canale" in capsys.readouterr().out
    assert sandbox.stats()["requests"] == {}


def test_a_refused_app_token_shows_the_webhook_broken_but_keeps_the_page_posting(
    sandbox: Sandbox, dynamo_table: str
) -> None:
    cfg = config(sandbox, app_token=True)
    channel_checks.check_channels(cfg, NOW)
    sandbox.revoke_token("facebook", APP_TOKEN)  # the app secret was reset; the Page token still works

    for run in range(1, 3):
        channel_checks.check_channels(cfg, NOW + timedelta(minutes=15 * run))

    health = get_health("comune-prova", "facebook")
    assert health is not None and health.healthy  # its posts, alerts included, are not held
    assert health.webhook is not None and health.webhook.broken
    assert health.webhook.reason == "app_token_refused"
    assert "app-secret-of-banditore" not in health.webhook.detail


def test_a_loopback_url_is_registered_only_on_the_sandbox_channels(
    sandbox: Sandbox, session: requests.Session, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local run with a channel holding the operator's real token must not re-point the real bot."""
    monkeypatch.setenv(PUBLIC_URL_ENV, closed_port_url)
    monkeypatch.setenv(SANDBOX_CHANNELS_ENV, "comune-prova/facebook")

    found = sync_webhooks(config(sandbox), NOW, session=session)

    assert [(s.platform, s.outcome) for s in found] == [("facebook", "registered")]
    assert requests_to(sandbox, "telegram", "getWebhookInfo") == 0
    assert requests_to(sandbox, "telegram", "setWebhook") == 0
