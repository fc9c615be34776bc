"""The platform sandbox's own promises: control API, reproducible faults, counts, page, clean stop."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from devtools.sandbox import Sandbox

BEARER = {"Authorization": "Bearer token-di-prova"}


def _toot(sandbox: Sandbox, text: str = "Prova", **headers: str) -> requests.Response:
    return requests.post(
        f"{sandbox.mastodon_instance}/api/v1/statuses",
        json={"status": text},
        headers={**BEARER, **headers},
        timeout=5,
    )


def _telegram(sandbox: Sandbox, text: str = "Prova", method: str = "sendMessage") -> requests.Response:
    return requests.post(
        f"{sandbox.telegram_api_base}/bot123:abc/{method}",
        json={"chat_id": "@comune_prova", "text": text},
        timeout=5,
    )


def test_rate_faults_set_over_http_are_reproducible(sandbox: Sandbox) -> None:
    fault = {"platform": "mastodon", "kind": "server_error", "rate": 0.5, "seed": 3}

    def run() -> list[int]:
        sandbox.reset()
        assert requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=5).status_code == 201
        return [_toot(sandbox).status_code for _ in range(20)]

    first = run()
    assert set(first) == {200, 503}
    assert run() == first
    assert sandbox.stats()["faults"] == {"mastodon": {"server_error": first.count(503)}}


def test_counted_faults_expire_and_can_be_listed_and_cleared(sandbox: Sandbox) -> None:
    faults = [
        {"platform": "telegram", "kind": "rate_limit", "count": 2, "retry_after": 9},
        {"platform": "mastodon", "kind": "forbidden", "count": 5},
    ]
    requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5)
    answers = [_telegram(sandbox) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json()["parameters"] == {"retry_after": 9}
    [left] = requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json()
    assert (left["platform"], left["fired"]) == ("mastodon", 0)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    assert _toot(sandbox).status_code == 200


@pytest.mark.parametrize(
    "fault",
    [
        {"platform": "myspace", "kind": "rate_limit"},
        {"platform": "telegram", "kind": "meteorite"},
        {"platform": "telegram", "kind": "duplicate"},  # a Graph API error, not a Telegram one
        {"platform": "telegram", "kind": "timeout", "count": 1, "rate": 0.5},
        {"platform": "telegram", "kind": "timeout", "delay": "lungo"},
        {"platform": "telegram", "kind": "timeout", "colour": "red"},
    ],
)
def test_unusable_faults_are_refused_with_a_reason(sandbox: Sandbox, fault: dict[str, object]) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert sandbox.state.faults.to_json() == []


def test_posts_and_stats(sandbox: Sandbox) -> None:
    _telegram(sandbox)
    _telegram(sandbox, method="getMe")
    _toot(sandbox, **{"Idempotency-Key": "k1"})
    _toot(sandbox, **{"Idempotency-Key": "k1"})

    assert sandbox.stats() == {
        "requests": {"mastodon": {"statuses": 2}, "telegram": {"getMe": 1, "sendMessage": 1}},
        "faults": {},
        "posts": {"telegram": 1, "mastodon": 1},
        "idempotent_replays": {"mastodon": 1},
    }
    posts = requests.get(f"{sandbox.url}/_sandbox/posts", params={"platform": "mastodon"}, timeout=5).json()
    assert [(p["platform"], p["text"], p["idempotency_key"]) for p in posts] == [("mastodon", "Prova", "k1")]
    assert requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json() == sandbox.stats()


def test_page_lists_posts_newest_first_escaped_in_italian(sandbox: Sandbox) -> None:
    _toot(sandbox, "primo")
    _toot(sandbox, "secondo <script>alert(1)</script>")
    page = requests.get(f"{sandbox.url}/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Nessun messaggio pubblicato." in page.text  # Telegram's section
    assert "Mastodon (2 messaggi)" in page.text
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert page.text.index("secondo") < page.text.index("primo")


def test_status_url_leads_to_the_page(sandbox: Sandbox) -> None:
    url = _toot(sandbox).json()["url"]
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/#mastodon-")


def test_real_limits_stop_the_21st_message_in_a_minute() -> None:
    with Sandbox(enforce_rate_limits=True) as sandbox:
        answers = [_telegram(sandbox) for _ in range(21)]
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    assert 1 <= answers[-1].json()["parameters"]["retry_after"] <= 60


def test_stop_does_not_wait_for_a_hung_answer() -> None:
    sandbox = Sandbox().start()
    sandbox.inject("mastodon", "hang_after_commit", delay=60)
    outcome: list[object] = []
    client = threading.Thread(target=lambda: outcome.append(_safe_toot(sandbox)), daemon=True)
    client.start()
    while not sandbox.posts():  # the post is recorded before the hang
        time.sleep(0.01)
    started = time.monotonic()
    sandbox.stop()
    client.join(timeout=5)
    assert time.monotonic() - started < 2
    assert outcome and isinstance(outcome[0], requests.ConnectionError)


def _safe_toot(sandbox: Sandbox) -> object:
    try:
        return _toot(sandbox)
    except requests.ConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    "payload",
    [{"platform": "myspace"}, {"platform": "telegram", "chat_id": "nope"}, {"chat_id": 1}],
)
def test_a_citizen_message_the_sandbox_cannot_place_is_refused_with_a_reason(
    sandbox: Sandbox, payload: dict[str, object]
) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/citizen", json=payload, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]
