"""The Telegram fake as a citizen's way in (devtools/sandbox/inbox_webhooks.py): an update delivered to
the registered webhook with its secret, the failure Telegram would record, and the sandbox page's
"Scrivi come cittadino" form, which names bots by key and escapes what it shows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from devtools.sandbox import Sandbox
from devtools.sandbox.inbox_webhooks import bot_key
from devtools.sandbox.telegram import TelegramFake

TOKEN = "42:bot-token"
SECRET = "the-webhook-secret"


class Receiver(ThreadingHTTPServer):
    """A webhook on loopback that records what it receives and answers `status`."""

    status = 200
    received: list[tuple[dict[str, str], dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def register(sandbox: Sandbox, url: str) -> None:
    answer = requests.post(
        f"{sandbox.base_for('telegram')}/bot{TOKEN}/setWebhook",
        json={"url": url, "secret_token": SECRET, "allowed_updates": ["message"]},
        timeout=5,
    )
    assert answer.json() == {"ok": True, "result": True, "description": "Webhook was set"}


def test_a_citizen_message_is_delivered_with_the_secret(sandbox: Sandbox, receiver: Receiver) -> None:
    register(sandbox, f"http://127.0.0.1:{receiver.server_port}/webhooks/telegram/comune-a/telegram")

    answer = requests.post(
        f"{sandbox.base_for('telegram')}/sandbox/citizen",
        json={"bot": bot_key(TOKEN), "text": "Strada allagata", "user_id": 7},
        timeout=5,
    )

    assert answer.json()["result"]["webhook_status"] == 200
    [(headers, update)] = receiver.received
    assert headers["X-Telegram-Bot-Api-Secret-Token"] == SECRET
    assert update["message"]["text"] == "Strada allagata"
    assert update["message"]["chat"] == {"id": 7, "type": "private"}


def test_a_refused_delivery_is_what_getwebhookinfo_reports(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.status = 401
    register(sandbox, f"http://127.0.0.1:{receiver.server_port}/hook")

    requests.post(
        f"{sandbox.base_for('telegram')}/sandbox/citizen",
        json={"bot": bot_key(TOKEN), "text": "Ciao"},
        timeout=5,
    )
    info = requests.post(f"{sandbox.base_for('telegram')}/bot{TOKEN}/getWebhookInfo", timeout=5).json()

    result = info["result"]
    assert (result["pending_update_count"], result["last_error_message"]) == (
        1,
        "Wrong response from the webhook: 401 Unauthorized",
    )
    assert isinstance(result["last_error_date"], int)


def test_the_form_names_bots_by_key_escapes_and_redirects_back(sandbox: Sandbox, receiver: Receiver) -> None:
    register(sandbox, f"http://127.0.0.1:{receiver.server_port}/webhooks/telegram/comune-a/<b>canale</b>")
    form_url = f"{sandbox.base_for('telegram')}/sandbox/citizen"

    page = requests.get(form_url, timeout=5).text
    sent = requests.post(
        form_url,
        data={"bot": bot_key(TOKEN), "text": "<script>alert(1)</script>"},
        allow_redirects=False,
        timeout=5,
    )
    after = requests.get(
        sent.headers["Location"].replace("/telegram/sandbox/citizen", form_url), timeout=5
    ).text

    assert "Scrivi come cittadino" in page and TOKEN not in page
    assert f'value="{bot_key(TOKEN)}"' in page and "comune-a/&lt;b&gt;canale&lt;/b&gt;" in page
    assert (sent.status_code, sent.headers["Location"]) == (303, "/telegram/sandbox/citizen?esito=200")
    assert "Consegnato" in after
    [(_, update)] = receiver.received
    assert update["message"]["text"] == "<script>alert(1)</script>"  # delivered as typed; shown escaped
    assert 'href="/telegram/sandbox/citizen"' in requests.get(f"{sandbox.url}/", timeout=5).text


def test_the_form_refuses_an_unknown_bot_and_an_empty_message(sandbox: Sandbox) -> None:
    fake = sandbox.fake("telegram", TelegramFake)
    register(sandbox, "https://banditore.example.it/api/webhooks/telegram/a/b")
    url = f"{sandbox.base_for('telegram')}/sandbox/citizen"

    unknown = requests.post(url, json={"bot": "0" * 16, "text": "Ciao"}, timeout=5)
    empty = requests.post(url, json={"bot": bot_key(TOKEN), "text": "  "}, timeout=5)

    assert (unknown.status_code, empty.status_code) == (404, 400)
    assert fake.webhooks.bot(TOKEN).pending == 0
