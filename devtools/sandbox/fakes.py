"""What a platform fake is to the sandbox server, and the list of them.

Each fake lives under `/{platform}/` on the sandbox; `route` maps a request (path without that prefix)
to the endpoint name used in request counts and fault targeting, and the answer to give when no fault
strikes. Faults are answered in the platform's own error shape by `fault_reply`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from devtools.sandbox.faults import Fault
from devtools.sandbox.state import SandboxState
from devtools.sandbox.wire import Reply, Request

Answer = Callable[[], Reply]
BaseUrl = Callable[[], str]  # the sandbox's root URL, known once it listens


class PlatformFake(Protocol):
    platform: str  # also the path prefix
    title: str  # for the sandbox page
    target_label: str  # what Post.target names on this platform (Chat, Account, Page...)
    posting_endpoint: str  # the endpoint faults hit unless told otherwise

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None: ...

    def fault_reply(self, fault: Fault) -> Reply: ...

    def reset(self) -> None: ...


def build_fakes(state: SandboxState, base_url: BaseUrl) -> dict[str, PlatformFake]:
    # Imported here: each fake module imports this one for the protocol.
    from devtools.sandbox.bluesky import BlueskyFake
    from devtools.sandbox.mastodon import MastodonFake
    from devtools.sandbox.meta import FacebookFake, InstagramFake, ThreadsFake
    from devtools.sandbox.telegram import TelegramFake
    from devtools.sandbox.webhooks import DiscordFake, MatrixFake, SlackFake
    from devtools.sandbox.x import XFake

    fakes: list[PlatformFake] = [
        TelegramFake(state, base_url),
        MastodonFake(state, base_url),
        FacebookFake(state, base_url),
        InstagramFake(state, base_url),
        ThreadsFake(state, base_url),
        BlueskyFake(state, base_url),
        XFake(state, base_url),
        SlackFake(state, base_url),
        DiscordFake(state, base_url),
        MatrixFake(state, base_url),
    ]
    return {fake.platform: fake for fake in fakes}
