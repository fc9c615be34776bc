"""The chat channels an office reads: Slack and Discord incoming webhooks, and a Matrix room. Each
adapter lives in its platform's module; what they share lives in `common`."""

from chalicelib.channels.webhooks.discord import from_config as discord_from_config
from chalicelib.channels.webhooks.matrix import from_config as matrix_from_config
from chalicelib.channels.webhooks.slack import from_config as slack_from_config

__all__ = ["discord_from_config", "matrix_from_config", "slack_from_config"]
