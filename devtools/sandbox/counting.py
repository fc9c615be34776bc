"""How the fakes count text, the way the platforms state their limits: graphemes (Mastodon, Bluesky)
and UTF-16 code units (Telegram, Facebook, Instagram). Written apart from chalicelib's counters, so an
adapter that miscounts meets a fake that does not share its mistake."""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")


def grapheme_clusters(text: str) -> list[str]:
    """User-perceived characters: a flag, a family emoji or "e" + combining accent is one."""
    return list(_GRAPHEME.findall(text))


def graphemes(text: str) -> int:
    return len(grapheme_clusters(text))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
