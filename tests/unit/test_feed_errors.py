"""Feed error messages go to logs and stored state: no credentials or query keys from feed URLs."""

from __future__ import annotations

import pytest

from chalicelib.sources.errors import FeedError


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("GET https://user:s3cret@cms.it/feed: timed out", "GET https://***@cms.it/feed: timed out"),
        ("GET https://cms.it/feed?apikey=s3cret: 403", "GET https://cms.it/feed?***: 403"),
        ("refused (url: /feed?apikey=s3cret)", "refused (url: /feed?***)"),
        (
            "GET https://cms.it/feed: the server answered 404",
            "GET https://cms.it/feed: the server answered 404",
        ),
    ],
)
def test_messages_never_show_credentials_or_query_strings(message: str, shown: str) -> None:
    error = FeedError("timeout", message)
    assert str(error) == shown
    assert "s3cret" not in repr(error)
