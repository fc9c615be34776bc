"""The image fetcher over real HTTP from a loopback server: refused unless the local switch is on,
redirects re-checked, size and type limits, failures reported as MediaUnavailable reasons."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.channels import media
from chalicelib.channels.media import COMMON_TYPES, GIF, PNG, MediaUnavailable, fetch_image
from tests import sample_images
from tests.feedserver import FeedServer, Reply

IMAGE = sample_images.png(40, 30)
PNG_ONLY = frozenset({PNG})


def _moved(location: str) -> Reply:
    return Reply(302, {"Location": location})


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer({"/foto.png": (200, {"Content-Type": "image/png"}, IMAGE)}) as images:
        yield images


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(media.ALLOW_PRIVATE_ENV, "1")


def _reason(url: str, *, max_bytes: int = 100_000, allowed: frozenset[str] = COMMON_TYPES) -> str:
    with pytest.raises(MediaUnavailable) as caught:
        fetch_image(url, max_bytes=max_bytes, allowed_types=allowed)
    return caught.value.reason


def test_loopback_is_refused_by_default(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(media.ALLOW_PRIVATE_ENV, raising=False)
    assert _reason(server.url("/foto.png")) == "blocked_address"
    assert server.hits["/foto.png"] == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_is_judged_by_the_address_it_connects_to(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """No IP in the URL: only the connected socket's peer shows it is loopback (as after DNS
    rebinding), and the refusal comes before a byte of the request is sent, TLS handshake included."""
    monkeypatch.delenv(media.ALLOW_PRIVATE_ENV, raising=False)
    url = server.url("/foto.png").replace("http://127.0.0.1", f"{scheme}://localhost")
    assert _reason(url) == "blocked_address"
    assert server.hits["/foto.png"] == 0


@pytest.mark.usefixtures("allow_private")
def test_loopback_is_allowed_with_the_local_switch(server: FeedServer) -> None:
    image = fetch_image(server.url("/foto.png"), max_bytes=100_000, allowed_types=COMMON_TYPES)
    assert (image.content, image.mime_type, image.width, image.height) == (IMAGE, PNG, 40, 30)


@pytest.mark.usefixtures("allow_private")
def test_the_type_comes_from_the_bytes_not_the_header(server: FeedServer) -> None:
    server.routes["/foto.jpg"] = (
        200,
        {"Content-Type": "image/jpeg"},
        b"<html><body>Errore 500</body></html>",
    )
    server.routes["/senza-tipo"] = (
        200,
        {"Content-Type": "application/octet-stream"},
        sample_images.gif(2, 2),
    )
    assert _reason(server.url("/foto.jpg")) == "unsupported_type"
    image = fetch_image(server.url("/senza-tipo"), max_bytes=100_000, allowed_types=COMMON_TYPES)
    assert (image.mime_type, image.width, image.height) == (GIF, 2, 2)


@pytest.mark.usefixtures("allow_private")
def test_a_type_the_platform_does_not_take_is_unsupported(server: FeedServer) -> None:
    server.routes["/foto.gif"] = (200, {"Content-Type": "image/gif"}, sample_images.gif())
    assert _reason(server.url("/foto.gif"), allowed=PNG_ONLY) == "unsupported_type"


@pytest.mark.usefixtures("allow_private")
def test_too_large_by_its_declared_length_is_refused_before_reading(server: FeedServer) -> None:
    assert _reason(server.url("/foto.png"), max_bytes=len(IMAGE) - 1) == "too_large"
    image = fetch_image(server.url("/foto.png"), max_bytes=len(IMAGE), allowed_types=COMMON_TYPES)
    assert image.content == IMAGE


@pytest.mark.usefixtures("allow_private")
def test_too_large_without_a_length_is_cut_off_while_streaming(server: FeedServer) -> None:
    chunk = b"\x89PNG\r\n\x1a\n" + b"\x00" * (64 * 1024 - 8)
    total = 64 * 1024 * 1024

    def endless() -> Iterator[bytes]:
        for _ in range(total // len(chunk)):
            yield chunk

    server.routes["/enorme.png"] = (200, {"Content-Type": "image/png"}, endless)
    assert _reason(server.url("/enorme.png"), max_bytes=200_000) == "too_large"
    assert server.bytes_sent["/enorme.png"] < total // 2  # the download stopped, not just the check


@pytest.mark.usefixtures("allow_private")
def test_redirects_are_followed_up_to_three(server: FeedServer) -> None:
    for hop in range(1, 5):
        server.routes[f"/giro{hop}"] = _moved(f"/giro{hop + 1}" if hop < 4 else "/foto.png")
    image = fetch_image(server.url("/giro2"), max_bytes=100_000, allowed_types=COMMON_TYPES)  # 3 hops
    assert image.content == IMAGE
    assert _reason(server.url("/giro1")) == "too_many_redirects"  # 4 hops
    assert server.hits["/foto.png"] == 1


@pytest.mark.usefixtures("allow_private")
@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/",
        "http://100.64.0.1/foto.png",
        "http://[::ffff:169.254.169.254]/",
        "file:///etc/passwd",
        "http://utente:segreto@comune.example.it/foto.png",
    ],
)
def test_a_redirect_is_checked_like_the_first_url(server: FeedServer, target: str) -> None:
    server.routes["/rimando"] = _moved(target)
    reason = _reason(server.url("/rimando"))
    assert reason in {"blocked_address", "invalid_url", "credentials_in_url"}
    assert server.hits["/rimando"] == 1


@pytest.mark.usefixtures("allow_private")
def test_an_http_error_is_named_by_its_status(server: FeedServer) -> None:
    server.routes["/errore"] = (503, {"Content-Type": "text/html"}, b"<h1>Manutenzione</h1>")
    assert _reason(server.url("/manca.png")) == "http_404"
    assert _reason(server.url("/errore")) == "http_503"


@pytest.mark.usefixtures("allow_private")
def test_a_slow_server_times_out(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "TIMEOUT", (1.0, 0.2))
    server.routes["/lenta.png"] = Reply(200, {"Content-Type": "image/png"}, IMAGE, delay=1.0)
    assert _reason(server.url("/lenta.png")) == "timeout"


@pytest.mark.usefixtures("allow_private")
def test_a_refused_connection_is_a_connection_error(closed_port_url: str) -> None:
    assert _reason(f"{closed_port_url}/foto.png") == "connection_error"
