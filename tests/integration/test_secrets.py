"""Secret references resolve from SSM Parameter Store and Secrets Manager (in moto), the
environment and the local secrets file; failures name the reference, never a value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from chalicelib import secrets
from chalicelib.secrets import SecretError, resolve_secret
from devtools import aws_local


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from aws_lambda_powertools.utilities import parameters

    server = aws_local.start_moto()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.delenv(secrets.SECRETS_FILE_ENV, raising=False)
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # providers keep the client of an earlier endpoint
    try:
        yield server.url
    finally:
        parameters.clear_caches()
        parameters.base.DEFAULT_PROVIDERS.clear()
        server.stop()


def test_ssm_secure_string_and_secrets_manager(moto: str) -> None:
    boto3.client("ssm").put_parameter(
        Name="/banditore/comune-a/telegram", Value="123:abc", Type="SecureString"
    )
    boto3.client("secretsmanager").create_secret(Name="banditore/comune-a/mastodon", SecretString="tok-xyz")

    assert resolve_secret("ssm:/banditore/comune-a/telegram") == "123:abc"
    assert resolve_secret("secretsmanager:banditore/comune-a/mastodon") == "tok-xyz"


def test_a_missing_parameter_names_the_reference_only(moto: str) -> None:
    with pytest.raises(SecretError) as caught:
        resolve_secret("ssm:/banditore/nowhere")
    assert str(caught.value) == "secret ssm:/banditore/nowhere could not be read (GetParameterError)"
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_env_and_local_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BANDITORE_TEST_TOKEN", "from-env")
    assert resolve_secret("env:BANDITORE_TEST_TOKEN") == "from-env"
    monkeypatch.delenv("BANDITORE_TEST_TOKEN")
    with pytest.raises(SecretError, match="env:BANDITORE_TEST_TOKEN is not set"):
        resolve_secret("env:BANDITORE_TEST_TOKEN")

    local = tmp_path / "secrets.yaml"
    local.write_text("ssm:/banditore/comune-a/telegram: from-file\n", encoding="utf-8")
    monkeypatch.setenv(secrets.SECRETS_FILE_ENV, str(local))
    assert resolve_secret("ssm:/banditore/comune-a/telegram") == "from-file"
