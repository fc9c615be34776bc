"""Fakes of the chat channels: Slack and Discord incoming webhooks and a Matrix homeserver."""

from devtools.sandbox.webhooks.discord import DiscordFake
from devtools.sandbox.webhooks.matrix import MatrixFake
from devtools.sandbox.webhooks.slack import SlackFake

__all__ = ["DiscordFake", "MatrixFake", "SlackFake"]
