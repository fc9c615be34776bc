"""Inbox webhooks on the local stack (moto + the platform fakes): registered when the stack starts,
delivered by the Telegram fake with the secret our route checks, put back by the 15-minute channel
check when lost (recorded beside the channel's health, not holding its posts), a refused token turning
the channel unhealthy, and `banditore webhooks` with its exit codes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from chalicelib.storage.channel_health import get_health
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from tests.conftest import tenant

TENANT = "comune-prova"
BOT_TOKEN = f"sandbox-{TENANT}-telegram"  # what the stack makes up for a sandboxed channel
CHANNELS = [
    {"id": "telegram", "platform": "telegram", "chat": "@ComuneProva", "token": "env:T_UNSET", "inbox": True},
    {
        "id": "facebook",
        "platform": "facebook",
        "page_id": "1234567890",
        "token": "env:F_UNSET",
        "inbox": True,
    },
]


@pytest.fixture
def stack(make_stack: Any) -> Any:
    return make_stack([tenant(channels=CHANNELS)], {}, serve_api=True)


def bot(stack: Any) -> Any:
    return stack.sandbox.fake("telegram", TelegramFake).webhooks.bot(BOT_TOKEN)


def lose_telegram_webhook(stack: Any) -> None:
    api = stack.sandbox.base_for("telegram")
    requests.post(f"{api}/bot{BOT_TOKEN}/deleteWebhook", json={}, timeout=5).raise_for_status()


def metric(stack: Any, name: str) -> list[Any]:
    """Every value of an EMF metric the stack's functions logged (without a breakdown by dimension)."""
    values = []
    for line in (stack.state_dir / "lambda.log").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        dimensions = (
            record.get("_aws", {}).get("CloudWatchMetrics", [{}])[0].get("Dimensions")
            if isinstance(record, dict)
            else None
        )
        if name in record and dimensions == [["service"]]:
            values.append(record[name])
    return values


def test_the_stack_registers_its_webhooks_and_the_fake_delivers_with_the_secret(stack: Any) -> None:
    registered = bot(stack)
    assert registered.url == f"{stack.api_url}/webhooks/telegram/{TENANT}/telegram"
    assert registered.allowed_updates == ["message"]
    assert stack.sandbox.fake("facebook", FacebookFake).subscriptions.pages["1234567890"]

    fake = stack.sandbox.fake("telegram", TelegramFake)
    message = fake.citizen_message(1001, "Le scuole sono aperte domani?", message_id=int(time.time()))
    status = fake.webhooks.deliver(BOT_TOKEN, {"update_id": int(time.time()), "message": message})

    assert status == 200  # our route accepted the secret Telegram was given
    assert stack.drain(timeout=10) == 1


def test_the_channel_check_puts_a_lost_webhook_back_without_holding_posts(stack: Any) -> None:
    first = stack.check_channels()
    lose_telegram_webhook(stack)

    result = stack.check_channels()

    assert first["webhooks"] == {"registered": [], "broken": []}
    assert result["webhooks"] == {"registered": [f"{TENANT}/telegram"], "broken": []}
    assert bot(stack).url.endswith(f"/webhooks/telegram/{TENANT}/telegram")
    health = get_health(TENANT, "telegram")
    assert health is not None and health.healthy  # posts go on
    assert health.webhook is not None and (health.webhook.outcome, health.webhook.reason) == (
        "registered",
        "lost",
    )
    assert metric(stack, "WebhooksRegistered") == [[1.0]]  # once, by the check (not by the start)
    assert metric(stack, "WebhooksBroken") == [[0.0], [0.0]]


def test_a_refused_token_found_by_the_webhook_check_turns_the_channel_unhealthy(stack: Any) -> None:
    stack.check_channels()  # healthy, not asked again for hours
    stack.sandbox.revoke_token("telegram", BOT_TOKEN)

    result = stack.check_channels()

    assert result["webhooks"]["broken"] == [f"{TENANT}/telegram"]
    assert result["unhealthy"] == [f"{TENANT}/telegram"]
    health = get_health(TENANT, "telegram")
    assert health is not None and (health.state, health.reason) == ("unhealthy", "auth")
    assert health.webhook is not None and health.webhook.broken
    assert BOT_TOKEN not in health.detail and BOT_TOKEN not in health.webhook.detail
    assert metric(stack, "WebhooksBroken") == [[0.0], [1.0]]


def test_the_webhooks_command_prints_the_table_and_exits_1_until_registered(stack: Any, capsys: Any) -> None:
    from devtools.cli import main

    assert main(["webhooks"]) == 0
    lose_telegram_webhook(stack)
    capsys.readouterr()

    looked = main(["webhooks"])
    out = capsys.readouterr().out
    registered = main(["webhooks", "--register"])
    after = capsys.readouterr().out

    assert looked == 1
    assert out.splitlines()[0].split() == [
        "Ente",
        "Canale",
        "Stato",
        "URL",
        "registrato",
        "In",
        "coda",
        "Ultimo",
        "errore",
    ]
    [telegram] = [line for line in out.splitlines() if "telegram (telegram)" in line]
    assert "✗ NON registrato" in telegram
    assert "--register" in out
    assert registered == 0
    [telegram] = [line for line in after.splitlines() if "telegram (telegram)" in line]
    assert "✓ registrato ora" in telegram and f"/webhooks/telegram/{TENANT}/telegram" in telegram
    [facebook] = [line for line in after.splitlines() if "facebook (facebook)" in line]
    assert "Pagina iscritta (feed, messages)" in facebook
    assert BOT_TOKEN not in out + after


def test_a_citizen_writes_through_the_telegram_fake_and_staff_can_answer(stack: Any, capsys: Any) -> None:
    """The citizens' command line goes through the platform fake, which delivers to the registered
    webhook; the message lands in the inbox and staff's answer replies to it on the fake."""
    from devtools.commands import _stack_env
    from devtools.sandbox.citizens import main as citizens_main

    env_file = stack.state_dir / "env.json"
    env_file.write_text(json.dumps(_stack_env(stack)), encoding="utf-8")  # as `banditore run` writes it
    code = citizens_main(
        ["--state-dir", str(stack.state_dir), "telegram", TENANT, "telegram", "Scuole aperte?"]
    )
    assert code == 0 and "sandbox/citizen: risposta 200" in capsys.readouterr().out
    assert stack.drain(timeout=10) == 1

    staff = {"Authorization": f"Bearer {stack.dev_tokens[TENANT]}"}
    listed = requests.get(f"{stack.api_url}/inbox/{TENANT}/conversations", headers=staff, timeout=10)
    [conversation] = listed.json()["items"]
    reply = requests.post(
        f"{stack.api_url}/inbox/{TENANT}/conversations/{conversation['id']}/reply",
        json={"text": "Sì, sono aperte."},
        headers=staff,
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    stack.drain(timeout=10)
    [post] = stack.sandbox.posts("telegram")
    assert (post["target"], post["text"]) == ("1001", "Sì, sono aperte.")
    assert post["options"]["replied_to"] is not None  # the fake knew the citizen's message
