"""What every adapter's `answer` shares: the staff's words shaped the way publish shapes a post, and
the refusal of a private answer where a platform has none.

An answer is plain text without title, link or hashtags: it goes through the same fitting as an
announcement's summary (text.thread_texts), so it is cut after a word with an ellipsis, or split
into a numbered thread of at most `max_posts` pieces where the platform has threads, and never sent
over the platform's limit.
"""

from __future__ import annotations

from chalicelib.channels.base import PermanentError, RenderedPost
from chalicelib.channels.text import Measure, PostParts, thread_texts


def answer_post(text: str, *, measure: Measure, limit: int, max_posts: int = 1) -> RenderedPost:
    """The answer as a post of at most `limit` (and its follow-ups, with `max_posts` > 1)."""
    texts, truncated = thread_texts(
        PostParts(title="", summary=text), measure=measure, limit=limit, max_posts=max_posts
    )
    return RenderedPost(
        text=texts[0], length=measure(texts[0]), limit=limit, truncated=truncated, thread=texts[1:]
    )


def refuse_private(platform: str) -> PermanentError:
    """A private answer (to a public comment, or in a private conversation) where the adapter can
    only answer in public: refused rather than made public."""
    return PermanentError(
        f"{platform}: an answer in private is not possible on this channel", reason="private_unsupported"
    )
