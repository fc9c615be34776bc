"""Resolve secret references from the config: `ssm:/path`, `secretsmanager:name`, `env:VAR`.

In AWS, SSM Parameter Store and Secrets Manager through Powertools Parameters (cached 5 minutes, so a
rotated token is picked up without a deploy). Locally, a git-ignored YAML file named by
BANDITORE_SECRETS_FILE maps references to values, and env: references read the environment.
Values never appear in exceptions or logs: errors name the reference only.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

SECRETS_FILE_ENV = "BANDITORE_SECRETS_FILE"
CACHE_SECONDS = 300


class SecretError(Exception):
    """A reference that cannot be resolved. The message names the reference, never a value."""


def resolve_secret(ref: str) -> str:
    local = _local_secrets()
    if ref in local:
        return local[ref]
    scheme, _, name = ref.partition(":")
    failure: str | None = None
    value = ""
    try:
        value = _fetch(scheme, name)
    except SecretError:
        raise
    except Exception as exc:  # the AWS SDK error text can carry the request; keep only its type
        failure = type(exc).__name__
    if failure:  # raised outside the except block, so no cause or context travels with it
        raise SecretError(f"secret {ref} could not be read ({failure})")
    if not value:
        raise SecretError(f"secret {ref} is empty")
    return value


def _fetch(scheme: str, name: str) -> str:
    if scheme == "env":
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"secret env:{name} is not set in the environment")
        return value
    if scheme == "ssm":
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_parameter(name, decrypt=True, max_age=CACHE_SECONDS))
    if scheme == "secretsmanager":
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(name, max_age=CACHE_SECONDS))
    raise SecretError(f"unknown secret scheme '{scheme}'")


def _local_secrets() -> dict[str, str]:
    path = os.environ.get(SECRETS_FILE_ENV)
    return _read_local_file(path) if path else {}


@functools.cache
def _read_local_file(path: str) -> dict[str, str]:
    file = Path(path)
    if not file.is_file():
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SecretError(f"{path}: must map secret references to values")
    return {str(k): str(v) for k, v in data.items()}
