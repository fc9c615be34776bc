"""Stand-ins that fail the test when used, for code that must stay offline: rendering (and `preview`,
built on it) touches no network and reads no secret."""

from __future__ import annotations

import requests


class NoNetwork(requests.Session):
    """A session that fails the test if anything tries to use it."""

    def request(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
        raise AssertionError("rendering must not touch the network")


def no_secret() -> str:
    """A secret provider that fails the test if anything reads it."""
    raise AssertionError("rendering must not read a secret")
