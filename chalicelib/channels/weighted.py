"""X's weighted length, as twitter-text v3 counts it, never below X's own count.

twitter-text's config v3 (config/v3.json, scale 100): the text is NFC-normalised; every URL counts 23
whatever its length; every emoji counts 2 as a whole, however many code points it takes (a flag, a
keycap, a skin tone, a ZWJ family); any other code point counts 1 in the ranges U+0000-U+10FF,
U+2000-U+200D, U+2010-U+201F and U+2032-U+2037, and 2 elsewhere. A post may weigh 280.

Where X's parser may count more than a plain reading, this counts the higher figure: X refuses a post
it finds too long, while one counted a little long only loses a few characters.
- A URL counts 23 as far as X's URL grammar surely reaches: a scheme, an ASCII host ending in an
  alphabetic label, then path and query of plain URL characters ending as X requires (a letter, a
  digit, "/", "-", "_", "=" or "#"). What follows counts character by character; so does a URL glued
  to a letter, digit, "@", "$" or "#" before it, which X does not link, and one whose host is outside
  that grammar (an IP address, which X does not link either; a name in another script).
- X links bare names too ("www.comune.it", "comune.it/albo") when their last label is a real top-level
  domain: a name that may be one (any two-letter label, or a common generic one) counts 23, or its own
  weight when longer, and a path after it counts character by character.
- Emoji are recognised by their Unicode shape: a pair of regional indicators, a keycap, the three
  subdivision flags, a modifier base with its skin tone, an emoji-presentation character, a character
  with the emoji selector U+FE0F, and ZWJ chains of these.

What this cannot know without X's data, and may then count below X: a URL whose top-level domain X
does not recognise (X counts it in full), a ZWJ chain or a flag pair outside X's emoji set (X counts
its parts). Neither is likely in a comune's news; should X still find a post too long, it refuses it
(the adapter's reason "too_long") and nothing goes out.
"""

from __future__ import annotations

import unicodedata

import regex

LIMIT = 280
URL_WEIGHT = 23
EMOJI_WEIGHT = 2
# Code points outside the ranges that weigh 1 (U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F,
# U+2032-U+2037): each weighs 2.
_HEAVY = regex.compile("[^\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")

_HOST = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
# X does not start a URL right after these (twitter-text's validUrlPrecedingChars).
_NOT_AFTER = r"a-z0-9@$#\uff20\uff03"  # with the fullwidth @ and #
# Characters X's path and query grammars both accept, and the ones they may end with.
_URL_CHAR = r"[a-z0-9\-._~:/#\[\]@!$&'*+,;=%]"
_URL_END = r"[a-z0-9\-_=#/]"
# X checks a top-level label against its list, then that no letter, digit, "@", "+" or "-" follows.
_AFTER_TLD = r"(?![a-z0-9@+\-])"
_LINK = regex.compile(
    rf"(?<![{_NOT_AFTER}])https?://{_HOST}[a-z]{{2,}}{_AFTER_TLD}(?::[0-9]+)?"
    rf"(?:/(?:{_URL_CHAR}*{_URL_END})?)?(?:\?(?:{_URL_CHAR}|\?)*{_URL_END})?",
    regex.IGNORECASE,
)
# Generic top-level domains a comune's text may name bare; every two-letter label is taken as a
# country's. A label outside both is not a domain here ("D.Lgs", "sig.ra" stay words).
_GENERIC_TLDS = (
    "com|org|net|gov|edu|int|mil|info|biz|name|pro|mobi|travel|museum|aero|coop|jobs|"
    "app|dev|online|site|web|news|blog|shop|store|tech|cloud|live|page|link|club|xyz|top|eco|bio|art"
)
# Bare names: X also refuses "-", "_", "." and "/" right before them.
_BARE_NAME = regex.compile(
    rf"(?<![{_NOT_AFTER}\-_./]){_HOST}(?:{_GENERIC_TLDS}|[a-z]{{2}}){_AFTER_TLD}",
    regex.IGNORECASE,
)

_REGIONAL_PAIR = "[\U0001f1e6-\U0001f1ff]{2}"
_KEYCAP = "[0-9#*]\ufe0f\u20e3"
# England, Scotland, Wales: black flag, the region's code in tag letters, cancel tag.
_SUBDIVISION = (
    "\U0001f3f4(?:"
    + "|".join("".join(chr(0xE0000 + ord(letter)) for letter in code) for code in ("gbeng", "gbsct", "gbwls"))
    + ")\U000e007f"
)
_ELEMENT = (
    r"(?:\p{Emoji_Modifier_Base}\p{Emoji_Modifier}|\p{Emoji_Presentation}|(?!\p{ASCII})\p{Emoji}\ufe0f)"
)
_EMOJI = regex.compile(rf"{_REGIONAL_PAIR}|{_KEYCAP}|{_SUBDIVISION}|{_ELEMENT}(?:\u200d{_ELEMENT})*")


def weighted_length(text: str) -> int:
    """The post's weight as X counts it (see the module docstring for where it may count more)."""
    text = unicodedata.normalize("NFC", text)
    total = position = 0
    for start, end, weight in _url_spans(text):
        total += _unlinked_weight(text[position:start]) + weight
        position = end
    return total + _unlinked_weight(text[position:])


def _url_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, weight) of each URL and bare name, in order, never overlapping."""
    links = [(match.start(), match.end(), URL_WEIGHT) for match in _LINK.finditer(text)]
    names = [
        (match.start(), match.end(), max(URL_WEIGHT, len(match.group())))  # ASCII: its length is its weight
        for match in _BARE_NAME.finditer(text)
        if not any(start < match.end() and match.start() < end for start, end, _ in links)
    ]
    return sorted(links + names)


def _unlinked_weight(text: str) -> int:
    total = position = 0
    for match in _EMOJI.finditer(text):
        total += _code_points_weight(text[position : match.start()]) + EMOJI_WEIGHT
        position = match.end()
    return total + _code_points_weight(text[position:])


def _code_points_weight(text: str) -> int:
    return len(text) + len(_HEAVY.findall(text))
