"""Placeholder: being written (issue 4)."""

from __future__ import annotations

from typing import Any


def from_config(channel: Any, **options: Any) -> Any:
    raise NotImplementedError("x adapter not written yet")
