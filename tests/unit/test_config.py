"""Configuration validation: precise errors (file, field path, problem), secrets only as references."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib.config.loader import MAX_CONFIG_BYTES, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:AAE-real-looking-telegram-token"


def _config(**tenant_changes: object) -> dict:
    tenant = {
        "id": "comune-a",
        "name": "Comune A",
        "sources": [{"id": "notizie", "url": "https://www.comune-a.it/feed"}],
        "channels": [{"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": "env:TG"}],
        "routes": [{"source": "notizie", "channels": ["telegram"]}],
    }
    tenant.update(tenant_changes)
    return {"version": 1, "tenants": [tenant]}


def _problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data), "banditore.yaml")
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize("path", ["config/banditore.example.yaml", "config/demo.yaml"])
def test_bundled_configs_are_valid(path: str) -> None:
    config = load_config(str(ROOT / path))
    assert config.tenants


def test_a_secret_value_is_refused_and_never_echoed() -> None:
    data = _config(channels=[{"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": TOKEN}])
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data), "banditore.yaml")
    assert caught.value.problems[0].path == "tenants[0](comune-a).channels[0](telegram).token"
    assert "secret reference" in caught.value.problems[0].message
    assert TOKEN not in str(caught.value)


def test_errors_name_the_field_path_with_ids() -> None:
    data = _config(sources=[{"id": "notizie", "url": "non-un-url", "polling": 5}])
    problems = _problems(data)
    assert any(p.startswith("tenants[0](comune-a).sources[0](notizie).url:") for p in problems)
    assert "tenants[0](comune-a).sources[0](notizie).polling: unknown field (typo?)" in problems


def test_unknown_platform_and_missing_fields() -> None:
    data = _config(channels=[{"id": "x", "platform": "myspace"}, {"id": "m", "platform": "mastodon"}])
    problems = _problems(data)
    assert any(p.startswith("tenants[0](comune-a).channels[0](x):") and "myspace" in p for p in problems)
    assert "tenants[0](comune-a).channels[1](m).instance: required field is missing" in problems
    assert "tenants[0](comune-a).channels[1](m).token: required field is missing" in problems


def test_routes_must_name_known_sources_and_channels() -> None:
    problems = _problems(_config(routes=[{"source": "notizie", "channels": ["telegram", "facebook"]}]))
    assert problems == ["tenants[0](comune-a): routes[0].channels: unknown channel 'facebook'"]


def test_duplicate_ids_are_refused() -> None:
    data = _config()
    data["tenants"].append(data["tenants"][0])
    assert _problems(data) == [": tenants: duplicate id 'comune-a'"]


def test_two_inbox_channels_cannot_share_a_telegram_bot() -> None:
    inbox = {
        "id": "telegram",
        "platform": "telegram",
        "chat": "@ComuneA",
        "token": "env:TG",
        "inbox": True,
        "webhook_secret": "env:TG_HOOK",
    }
    data = _config(channels=[inbox])
    other = {**data["tenants"][0], "id": "comune-b", "name": "Comune B"}
    data["tenants"].append(other)
    problems = _problems(data)
    assert (
        len(problems) == 1
        and "comune-a/telegram and comune-b/telegram use the same Telegram bot" in problems[0]
    )
    # One of them posting only (no inbox) is fine: posting needs no webhook.
    other["channels"] = [{**inbox, "inbox": False}]
    assert parse_config(yaml.safe_dump(data), "banditore.yaml").tenants[1].id == "comune-b"


def test_yaml_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("tenants:\n  - id: [unclosed\n", "banditore.yaml")
    assert caught.value.problems[0].path.startswith("line ")
    assert str(caught.value).startswith("banditore.yaml: line ")


def test_missing_oversized_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(str(big))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(binary))


def test_channels_for_a_source_follow_routes_and_skip_disabled() -> None:
    data = _config(
        channels=[
            {"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": "env:TG"},
            {
                "id": "mastodon",
                "platform": "mastodon",
                "instance": "https://m.example",
                "token": "env:MA",
                "enabled": False,
            },
        ],
        routes=[{"source": "notizie", "channels": ["telegram", "mastodon", "telegram"]}],
    )
    tenant = parse_config(yaml.safe_dump(data), "x").tenant("comune-a")
    assert [c.id for c in tenant.channels_for("notizie")] == ["telegram"]
