"""Placeholder: being written (issue 4)."""

from __future__ import annotations

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply


class SlackFake:
    platform = "slack"
    title = "Slack"
    target_label = "Account"
    posting_endpoint = "post"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        return None

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(500, {})

    def reset(self) -> None:
        pass


class DiscordFake:
    platform = "discord"
    title = "Discord"
    target_label = "Account"
    posting_endpoint = "post"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        return None

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(500, {})

    def reset(self) -> None:
        pass


class MatrixFake:
    platform = "matrix"
    title = "Matrix"
    target_label = "Account"
    posting_endpoint = "post"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        return None

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(500, {})

    def reset(self) -> None:
        pass
