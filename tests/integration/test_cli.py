"""The operator's CLI as operators script it: exit codes, messages, the preview JSON, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.channels.registry import PLATFORMS
from devtools.stack import ROOT
from tests.conftest import FEEDS


def banditore(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the exit code is what the tests look at
    )


def test_config_check_accepts_the_example_and_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    ok = banditore("config", "check", "config/banditore.example.yaml")
    assert ok.returncode == 0
    assert "valida" in ok.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntenants:\n  - id: Comune A\n    name: A\n", encoding="utf-8")
    refused = banditore("config", "check", str(bad))
    assert refused.returncode == 2
    assert "Configurazione non valida (1 errore):" in refused.stderr
    assert f"{bad}: tenants[0](Comune A).id: must be a lowercase identifier" in refused.stderr


def _preview(*args: str) -> dict[str, Any]:
    run = banditore("preview", *args)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_preview_without_config_shows_every_platform_within_its_limit() -> None:
    document = _preview(str(FEEDS / "comune-notizie.rss"))
    assert document["schema"] == "banditore.preview/1"
    assert document["feed"]["kind"] == "news"
    assert document["feed"]["items"] == len(document["items"]) == 6
    for item in document["items"]:
        announcement = item["announcement"]
        assert set(announcement) == {
            "title",
            "summary",
            "link",
            "image",
            "categories",
            "published",
            "dedupe_keys",
        }
        assert [c["platform"] for c in item["channels"]] == list(PLATFORMS)
        for channel in item["channels"]:
            assert set(channel) == {
                "tenant",
                "channel",
                "platform",
                "text",
                "thread",
                "length",
                "limit",
                "truncated",
                "parse_mode",
                "image",
            }
            assert channel["tenant"] is None and channel["channel"] is None
            assert channel["length"] <= channel["limit"]
            # The link is in the first post, where it makes the link card; the thread goes on below.
            assert announcement["link"] in channel["text"]
            if channel["image"] is not None:
                assert channel["image"]["alt"]  # never empty


def test_preview_with_config_renders_for_each_configured_channel() -> None:
    document = _preview(
        str(FEEDS / "comune-notizie.atom"), "--config", "config/demo.yaml", "--tenant", "comune-vicino"
    )
    assert {(c["tenant"], c["channel"]) for item in document["items"] for c in item["channels"]} == {
        ("comune-vicino", "mastodon")
    }


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ((str(FEEDS / "xml-bomb.xml"),), 1, "feed non leggibile"),
        (("/nonexistent/feed.xml",), 1, "feed non leggibile"),
        (
            (str(FEEDS / "comune-notizie.rss"), "--config", "config/demo.yaml", "--tenant", "nessuno"),
            2,
            "Ente sconosciuto",
        ),
    ],
)
def test_preview_failures_have_a_message_and_an_exit_code(
    args: tuple[str, ...], code: int, says: str
) -> None:
    run = banditore("preview", *args)
    assert run.returncode == code
    assert says in run.stderr
    assert run.stdout == ""


@pytest.mark.slow
def test_demo_twice_posts_then_says_nothing_is_new(tmp_path: Path) -> None:
    first = banditore("demo", "--state-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    # 3 news x 9 channels (no Instagram: no photos), 2 photo items x 10 channels, 2 x 1 channel.
    assert first.stdout.count("✓") == 49
    second = banditore("demo", "--state-dir", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "✓" not in second.stdout
    assert "invariato (304)" in second.stdout
    assert "Niente di nuovo" in second.stdout


def test_preview_of_an_alert_document_shows_level_hazard_and_what_each_tenant_matches(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """
version: 1
tenants:
  - id: comune-bolzano
    name: Comune di Bolzano
    alerts: {zones: [Tren-A]}
    channels:
      - {id: telegram, platform: telegram, chat: "@ComuneBolzano", token: "env:TG"}
  - id: comune-firenze
    name: Comune di Firenze
    alerts: {zones: [Tosc-B]}
    channels:
      - {id: mastodon, platform: mastodon, instance: "https://mastodon.uno", token: "env:MA"}
""",
        encoding="utf-8",
    )
    document = _preview("events/alerts/dpc-cap-2026-07-30-quiet-day.xml", "--config", str(config))

    assert document["feed"]["kind"] == "alerts"
    [entry] = document["alerts"]
    assert {k: entry["alert"][k] for k in ("identifier", "msg_type", "level", "hazard")} == {
        "identifier": "DPC_BULLETIN_2026_07_30_5050",
        "msg_type": "Alert",
        "level": "yellow",
        "hazard": "temporali",
    }
    bolzano, firenze = entry["tenants"]
    # The sample's day is past: not posted now, but its text is still shown for the matched areas.
    assert (bolzano["concerned"], bolzano["reason"]) == (False, "expired")
    assert bolzano["matched_areas"] == ["Provincia Autonoma di Bolzano (zona di allerta Tren-A)"]
    [channel] = bolzano["channels"]
    assert (
        channel["channel"] == "telegram" and "🟡" in channel["text"] and channel["length"] <= channel["limit"]
    )
    assert (firenze["concerned"], firenze["matched_areas"], firenze["channels"]) == (False, [], [])
    assert firenze["reason"] == "not for these areas"


def test_preview_of_meteoalarm_json_without_config_lists_every_warning() -> None:
    document = _preview("events/alerts/meteoalarm-italy-warnings.json")
    assert document["feed"] == {
        "location": "events/alerts/meteoalarm-italy-warnings.json",
        "kind": "alerts",
        "items": 10,
        "warnings": [],
    }
    assert {a["alert"]["level"] for a in document["alerts"]} == {"green", "yellow", "orange", "red"}
