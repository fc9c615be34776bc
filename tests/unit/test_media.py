"""The image fetcher's pure parts: which addresses it refuses, which URLs it refuses before any
connection, and the type and size it reads from an image's first bytes."""

from __future__ import annotations

import pytest

from chalicelib.channels import media
from chalicelib.channels.media import (
    COMMON_TYPES,
    GIF,
    JPEG,
    PNG,
    WEBP,
    MediaUnavailable,
    blocked_address,
    dimensions,
    fetch_image,
    sniff_type,
)
from tests import sample_images


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # the cloud metadata service
        "169.254.1.1",
        "fe80::1",
        "fe80::1%eth0",  # a link-local peer as the socket reports it, with its zone
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "::",
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "ff02::1",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.10",  # documentation ranges: never a real server
        "2001:db8::1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    ],
)
def test_addresses_refused_always(address: str) -> None:
    assert blocked_address(address, allow_private=False)
    assert blocked_address(address, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "10.0.0.5",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.10",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:10.1.2.3",
    ],
)
def test_loopback_and_private_addresses_only_with_the_local_switch(address: str) -> None:
    assert blocked_address(address, allow_private=False)
    assert not blocked_address(address, allow_private=True)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2a00:1450:4002:800::200e"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not blocked_address(address, allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://comune.example.it/foto.jpg", "invalid_url"),
        ("file:///etc/passwd", "invalid_url"),
        ("gopher://127.0.0.1:6379/_INFO", "invalid_url"),
        ("https:///foto.jpg", "invalid_url"),
        ("http://[::1", "invalid_url"),
        ("https://user:secret@comune.example.it/foto.jpg", "credentials_in_url"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("http://[fe80::1]/foto.jpg", "blocked_address"),
        ("http://[::ffff:169.254.169.254]/", "blocked_address"),
        ("http://100.64.1.1/foto.jpg", "blocked_address"),
        ("http://10.1.2.3/foto.jpg", "blocked_address"),
    ],
)
def test_urls_refused_before_any_connection(url: str, reason: str) -> None:
    with pytest.raises(MediaUnavailable) as caught:
        fetch_image(url, max_bytes=1000, allowed_types=COMMON_TYPES)
    assert caught.value.reason == reason
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "mime_type", "size"),
    [
        (sample_images.png(640, 480), PNG, (640, 480)),
        (sample_images.gif(5, 7), GIF, (5, 7)),
        (sample_images.jpeg(1920, 1080), JPEG, (1920, 1080)),
        (sample_images.webp_lossy(800, 600), WEBP, (800, 600)),
        (sample_images.webp_lossless(1000, 16384), WEBP, (1000, 16384)),
        (sample_images.webp_extended(70000, 3), WEBP, (70000, 3)),
    ],
)
def test_type_and_size_come_from_the_bytes(content: bytes, mime_type: str, size: tuple[int, int]) -> None:
    assert sniff_type(content) == mime_type
    assert dimensions(content, mime_type) == size


def test_jpeg_size_is_found_past_fill_bytes_and_other_segments() -> None:
    original = sample_images.jpeg(33, 44)
    # An EXIF-like APP1 segment and fill bytes before the frame header, as cameras write them.
    app1 = b"\xff\xe1\x00\x08Exif\x00\x00"
    padded = original[:2] + app1 + b"\xff" + original[2:]
    assert dimensions(padded, JPEG) == (33, 44)


def test_progressive_jpeg_size_is_read_from_sof2() -> None:
    progressive = sample_images.jpeg(12, 34).replace(b"\xff\xc0", b"\xff\xc2")
    assert dimensions(progressive, JPEG) == (12, 34)


@pytest.mark.parametrize(
    ("content", "mime_type"),
    [
        (sample_images.png()[:20], PNG),
        (sample_images.jpeg()[:30], JPEG),
        (b"\xff\xd8\xff\xda\x00\x02", JPEG),  # scan data before any frame header
        (sample_images.webp_lossy()[:24], WEBP),
        (sample_images.webp_extended()[:27], WEBP),
        (b"RIFF\x00\x00\x00\x00WEBPALPH", WEBP),
    ],
)
def test_truncated_or_unusual_headers_give_no_size(content: bytes, mime_type: str) -> None:
    assert dimensions(content, mime_type) == (None, None)


@pytest.mark.parametrize(
    "content",
    [b"", b"<html><body>Not an image</body></html>", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"GIF90a"],
)
def test_what_is_not_a_known_image_has_no_type(content: bytes) -> None:
    assert sniff_type(content) is None


def test_the_local_switch_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(media.ALLOW_PRIVATE_ENV, raising=False)
    with pytest.raises(MediaUnavailable):
        fetch_image("http://10.0.0.1/foto.png", max_bytes=10, allowed_types=COMMON_TYPES)
    monkeypatch.setenv(media.ALLOW_PRIVATE_ENV, "true")  # only "1" turns it on
    with pytest.raises(MediaUnavailable) as caught:
        fetch_image("http://10.0.0.1/foto.png", max_bytes=10, allowed_types=COMMON_TYPES)
    assert caught.value.reason == "blocked_address"
