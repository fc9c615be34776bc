"""Placeholder: being written (issue 4)."""

from __future__ import annotations

from typing import Any


def slack_from_config(channel: Any, **options: Any) -> Any:
    raise NotImplementedError


def discord_from_config(channel: Any, **options: Any) -> Any:
    raise NotImplementedError


def matrix_from_config(channel: Any, **options: Any) -> Any:
    raise NotImplementedError
