"""Fixtures for tests that speak real HTTP to the platform sandbox on loopback."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable, Iterator

import pytest
import requests

from chalicelib import aws, settings
from chalicelib.announcements import Announcement
from chalicelib.http import new_session
from chalicelib.secrets import SECRETS_FILE_ENV
from devtools import aws_local
from devtools.sandbox import Sandbox
from tests.feedserver import FeedServer
from tests.integration.channel_support import AdapterFactory, adapter_factory, image_server, with_image


@pytest.fixture
def fast_timeout() -> tuple[float, float]:
    """(connect, read) seconds: short, so timeout tests stay fast, yet ample for loopback on a busy CI."""
    return (1.0, 0.3)


@pytest.fixture
def slow_answer(fast_timeout: tuple[float, float]) -> float:
    """Seconds a delayed sandbox answer takes: well past the read timeout."""
    return fast_timeout[1] * 5


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def session() -> Iterator[requests.Session]:
    http = new_session()
    yield http
    http.close()


@pytest.fixture
def no_secrets_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens come from env: references only, whatever the developer's shell has set."""
    monkeypatch.delenv(SECRETS_FILE_ENV, raising=False)


@pytest.fixture
def announcement() -> Announcement:
    return Announcement(
        tenant="comune-prova",
        id="20261122T081500abc",
        source="notizie",
        title="Lavori in via Roma: strada chiusa",
        summary="Da lunedì 24 novembre via Roma è chiusa al traffico per il rifacimento dell'asfalto.",
        link="https://www.comune.example.it/notizie/lavori-via-roma?utm_source=social&canale=1",
        categories=("Lavori pubblici", "Viabilità"),
    )


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    """channel_support.IMAGES on a loopback host the adapters may fetch from."""
    with image_server(monkeypatch) as server:
        yield server


@pytest.fixture
def make_adapter(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    """An adapter of the test's `platform` (a fixture or parameter of its module), aimed at its
    sandbox fake or at the base address given."""
    return adapter_factory(platform, sandbox, session, fast_timeout)


@pytest.fixture
def post_announcement(
    platform: str, announcement: Announcement, request: pytest.FixtureRequest
) -> Announcement:
    """The announcement as the tests of every platform post it: with a usable image on Instagram, which
    takes no post without one, and on Threads, whose image container is the longer path; without one
    elsewhere, so that Facebook's posting endpoint is the feed (a photo goes to /photos, see
    test_facebook_contract) and no other platform has an image step (see test_faults_at_the_image_step)."""
    if platform not in ("instagram", "threads"):
        return announcement
    images: FeedServer = request.getfixturevalue("images")
    return with_image(announcement, images.url("/square.jpg"), alt="Via Roma chiusa")


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def assert_secret_absent() -> Callable[[BaseException, str], None]:
    """Check that a secret is in no part of an error a log handler or a record could show."""

    def check(error: BaseException, secret: str) -> None:
        shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
        assert all(secret not in text for text in shown)
        assert error.__cause__ is None
        assert error.__context__ is None

    return check


@pytest.fixture(scope="session")
def moto_server() -> Iterator[aws_local.MotoServer]:
    server = aws_local.start_moto()
    yield server
    server.stop()


@pytest.fixture
def dynamo_table(moto_server: aws_local.MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty table built from the production definition, in moto, with the runtime's clients
    pointing at it: for storage tests that need no local stack. Only the table is created (queues
    and topic would take most of a second per test)."""
    # moto's state is per process: start from nothing, whatever an earlier test left.
    requests.post(f"{moto_server.url}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    aws.client.cache_clear()  # clients are cached per process, possibly for another endpoint
    table = aws_local._create_table(aws.client("dynamodb"))  # the definition create_resources uses
    monkeypatch.setenv(settings.TABLE_ENV, table)
    yield table
    aws.client.cache_clear()
