"""Load the YAML configuration from a file or an S3 object and validate it.

Errors name the file, the path of the field and what is wrong, so `banditore config check` and a
refusing Lambda say the same precise thing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chalicelib.config.models import SLUG_PATTERN, Config

MAX_CONFIG_BYTES = 1_000_000
CONFIG_ENV = "BANDITORE_CONFIG"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every field at fault."""

    def __init__(self, origin: str, problems: list[Problem]) -> None:
        self.origin = origin
        self.problems = problems
        lines = [f"{origin}: {p.path}: {p.message}" if p.path else f"{origin}: {p.message}" for p in problems]
        super().__init__("\n".join(lines))


def parse_config(text: str, origin: str) -> Config:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            origin, [Problem(where, f"not valid YAML ({getattr(exc, 'problem', exc)})")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(origin, [Problem("", "the top level must be a mapping with 'tenants'")])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(origin, [_problem(err, data) for err in exc.errors()]) from None


def _problem(error: Any, data: Any) -> Problem:
    return Problem(_field_path(error["loc"], data), _message(error))


def _field_path(location: tuple[Any, ...], data: Any) -> str:
    """pydantic's location as a reader wants it: list items named by their id too
    ("tenants[0](comune-a)"), union tags (e.g. "telegram") left out since they are not fields."""
    parts: list[str] = []
    node = data
    for loc in location:
        if isinstance(loc, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{loc}]"]
            node = node[loc] if isinstance(node, list) and loc < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f"({node['id']})"
        elif isinstance(node, dict) and loc in node:
            parts.append(str(loc))
            node = node[loc]
        elif isinstance(node, dict) and loc != node.get("platform"):
            parts.append(str(loc))
            node = None
    return ".".join(parts)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == SLUG_PATTERN:
        return "must be a lowercase identifier: letters a-z, digits and '-', at most 63"
    if kind == "string_pattern_mismatch" and error["loc"][-1] == "token":
        # never echo the value: it may be the secret itself
        return "must be a secret reference (ssm:/path, secretsmanager:name or env:VAR), never the secret"
    if kind == "extra_forbidden":
        return "unknown field (typo?)"
    if kind == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def read_config_text(uri: str) -> str:
    """Read the raw config from a local path or s3://bucket/key, refusing oversized files."""
    if uri.startswith("s3://"):
        import boto3  # only the Lambda path needs it; keeps `config check` fast

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read(MAX_CONFIG_BYTES + 1)
    else:
        path = Path(uri)
        if not path.is_file():
            raise ConfigError(uri, [Problem("", "file not found")])
        with path.open("rb") as handle:
            body = handle.read(MAX_CONFIG_BYTES + 1)
    if len(body) > MAX_CONFIG_BYTES:
        raise ConfigError(uri, [Problem("", f"larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        return str(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(uri, [Problem("", "not UTF-8 text")]) from None


def load_config(uri: str) -> Config:
    return parse_config(read_config_text(uri), uri)


@functools.cache
def _cached(uri: str) -> Config:
    return load_config(uri)


def current_config() -> Config:
    """The deployment's configuration, read once per process (a Lambda cold start)."""
    uri = os.environ.get(CONFIG_ENV)
    if not uri:
        raise ConfigError("<environment>", [Problem(CONFIG_ENV, "is not set")])
    return _cached(uri)
