"""Test and Exercise alerts may only reach channels the local stack points at its platform fakes: the
variable naming them is the local stack's alone, never the deployed stack's."""

from __future__ import annotations

import pytest

from chalicelib import settings
from devtools.stack import ROOT


def test_the_deployed_stack_never_names_sandbox_channels() -> None:
    deployed = [ROOT / ".chalice" / "config.json", *sorted((ROOT / "infra").rglob("*.py"))]
    assert len(deployed) > 2
    for path in deployed:
        assert settings.SANDBOX_CHANNELS_ENV not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize(
    ("value", "channels"),
    [
        (None, frozenset()),
        ("", frozenset()),
        ("comune-a/telegram,comune-b/mastodon", frozenset({"comune-a/telegram", "comune-b/mastodon"})),
    ],
)
def test_sandbox_channels_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, channels: frozenset[str]
) -> None:
    if value is None:
        monkeypatch.delenv(settings.SANDBOX_CHANNELS_ENV, raising=False)
    else:
        monkeypatch.setenv(settings.SANDBOX_CHANNELS_ENV, value)
    assert settings.sandbox_channels() == channels
