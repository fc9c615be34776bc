"""Fetching an announcement's image for the platforms that want the bytes, guarded against SSRF.

The image URL comes from a feed, that is from outside: fetched naively it could make the Lambda read
the cloud metadata service (169.254.169.254) or a private address and hand the answer to a platform.
So every connection is checked *after* it is made, on the address actually connected to: a name that
resolves to a public address when checked and a private one when used (DNS rebinding), or a redirect
to an internal host, is refused all the same. Loopback and private addresses are allowed only when
BANDITORE_MEDIA_ALLOW_PRIVATE=1, which the local stack and the tests set (images served from
127.0.0.1 or a compose network); it is never set in AWS.

No resizing (no Pillow: cold start): an image that is too big, of a type the platform refuses, or
unreachable raises MediaUnavailable with a stable reason, and the adapter posts without it.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError

from chalicelib.http import TIMEOUT, new_session

ALLOW_PRIVATE_ENV = "BANDITORE_MEDIA_ALLOW_PRIVATE"
MAX_REDIRECTS = 3
TOTAL_SECONDS = 20.0  # the read timeout bounds each read; this bounds a server dripping bytes
CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})

JPEG, PNG, GIF, WEBP = "image/jpeg", "image/png", "image/gif", "image/webp"
COMMON_TYPES = frozenset({JPEG, PNG, GIF, WEBP})

# Addresses a fetch may reach only with ALLOW_PRIVATE_ENV; everything else not global is refused
# always (link-local and the metadata service, CGNAT, multicast, reserved, unspecified).
_PRIVATE = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchedImage:
    content: bytes
    mime_type: str  # sniffed from the bytes, never taken from the headers
    width: int | None
    height: int | None


class MediaUnavailable(Exception):
    """The image cannot be used; `reason` is a short stable code for logs and metrics
    ("blocked_address", "too_large", "unsupported_type", "http_404", "timeout", ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"image unavailable ({reason}): {message}")
        self.reason = reason


class _BlockedAddress(Exception):
    """Raised from inside urllib3 when a socket reaches a refused address. Deliberately not an
    OSError, so that neither urllib3 nor requests retries it or wraps it."""


def _embedded_v4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), to judge that one instead."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_address(address: str, *, allow_private: bool) -> bool:
    """Whether a fetch must not talk to `address` (a literal IP, as the socket reports its peer)."""
    ip: Address = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    ip = _embedded_v4(ip) or ip
    if ip.is_loopback or any(ip in net for net in _PRIVATE):
        return not allow_private
    return (
        not ip.is_global
        or ip in _CGNAT
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_link_local
        or ip.is_unspecified
    )


def _allow_private() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV) == "1"


def _checked_peer(sock: socket.socket) -> socket.socket:
    """Called between TCP connect and the first byte sent (before TLS too): nothing has left yet."""
    peer = sock.getpeername()[0]
    if blocked_address(peer, allow_private=_allow_private()):
        sock.close()
        raise _BlockedAddress(peer)
    return sock


class _GuardedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _checked_peer(super()._new_conn())


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _checked_peer(super()._new_conn())


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}


@functools.cache
def _session() -> requests.Session:
    """Its own pool, apart from the platforms' session: feed hosts are not API hosts."""
    session = new_session(pool_size=4)
    # No proxies from the environment (the peer would be the proxy, hiding the real address) and
    # no .netrc credentials sent to hosts a feed names.
    session.trust_env = False
    adapter = _GuardedAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def fetch_image(url: str, *, max_bytes: int, allowed_types: frozenset[str]) -> FetchedImage:
    """Download `url` (at most MAX_REDIRECTS redirects, each re-checked) and check the bytes: at most
    `max_bytes`, a sniffed type among `allowed_types`. Raises MediaUnavailable, never anything else."""
    deadline = time.monotonic() + TOTAL_SECONDS
    for _ in range(MAX_REDIRECTS + 1):
        host = _checked_host(url)
        response = _get(url, host)
        with response:
            if response.status_code in REDIRECTS and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status_code != requests.codes.ok:
                raise MediaUnavailable(
                    f"http_{response.status_code}", f"{host} answered {response.status_code}"
                )
            content = _read_capped(response, host, max_bytes=max_bytes, deadline=deadline)
        return _checked_image(content, host, allowed_types)
    raise MediaUnavailable("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


def _checked_host(url: str) -> str:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        hostname = None
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not hostname:
        raise MediaUnavailable("invalid_url", "not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise MediaUnavailable("credentials_in_url", f"{hostname}: URL carries credentials")
    if _literal_blocked(hostname):  # not even a connection attempt; names are checked once connected
        raise MediaUnavailable("blocked_address", f"{hostname}: refused address")
    return hostname


def _literal_blocked(hostname: str) -> bool:
    try:
        return blocked_address(hostname, allow_private=_allow_private())
    except ValueError:  # a name, not an address
        return False


def _get(url: str, host: str) -> requests.Response:
    # Messages name the host only: requests' own ones carry the whole URL (signed query strings).
    try:
        return _session().get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=TIMEOUT,
            headers={"Accept": "image/*", "Accept-Encoding": "identity"},
        )
    except _BlockedAddress:
        problem, reason = "refused address", "blocked_address"
    except requests.Timeout:
        problem, reason = "timed out", "timeout"
    except requests.RequestException as exc:
        problem, reason = f"connection failed ({type(exc).__name__})", "connection_error"
    raise MediaUnavailable(reason, f"{host}: {problem}")


def _read_capped(response: requests.Response, host: str, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaUnavailable("too_large", f"{host}: {declared} bytes declared, limit {max_bytes}")
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise MediaUnavailable("too_large", f"{host}: more than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise MediaUnavailable("timeout", f"{host}: download took over {TOTAL_SECONDS:.0f} s")
    except requests.RequestException as exc:  # read timeout or dropped connection mid-body
        # requests wraps a read timeout met while streaming in a ConnectionError
        timed_out = isinstance(exc, requests.Timeout) or any(
            isinstance(a, ReadTimeoutError) for a in exc.args
        )
    else:
        return bytes(body)
    reason, problem = ("timeout", "timed out") if timed_out else ("connection_error", "connection lost")
    raise MediaUnavailable(reason, f"{host}: reading the body failed ({problem})")


def _checked_image(content: bytes, host: str, allowed_types: frozenset[str]) -> FetchedImage:
    mime_type = sniff_type(content)
    if mime_type is None or mime_type not in allowed_types:
        found = mime_type or "not an image"
        raise MediaUnavailable(
            "unsupported_type", f"{host}: {found}, accepted {', '.join(sorted(allowed_types))}"
        )
    width, height = dimensions(content, mime_type)
    return FetchedImage(content=content, mime_type=mime_type, width=width, height=height)


def sniff_type(content: bytes) -> str | None:
    """The image type from its magic bytes."""
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content[:6] in {b"GIF87a", b"GIF89a"}:
        return GIF
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return WEBP
    return None


def dimensions(content: bytes, mime_type: str) -> tuple[int | None, int | None]:
    """Width and height from the file's header, (None, None) when it is truncated or unusual."""
    try:
        if mime_type == PNG and content[12:16] == b"IHDR":
            width, height = struct.unpack(">II", content[16:24])
            return width, height
        if mime_type == GIF:
            width, height = struct.unpack("<HH", content[6:10])
            return width, height
        if mime_type == WEBP:
            return _webp_dimensions(content)
        if mime_type == JPEG:
            return _jpeg_dimensions(content)
    except struct.error:
        pass
    return None, None


def _webp_dimensions(content: bytes) -> tuple[int | None, int | None]:
    chunk = content[12:16]
    if chunk == b"VP8 " and content[23:26] == b"\x9d\x01\x2a":  # lossy: key frame start code
        width, height = struct.unpack("<HH", content[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and content[20:21] == b"\x2f":  # lossless: 14-bit width-1, height-1
        (bits,) = struct.unpack("<I", content[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1, height-1
        width_low, width_high, height_low, height_high = struct.unpack("<HBHB", content[24:30])
        return width_low + (width_high << 16) + 1, height_low + (height_high << 16) + 1
    return None, None


_MARKER = 0xFF
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: markers without a length


def _jpeg_dimensions(content: bytes) -> tuple[int | None, int | None]:
    offset = 2
    while offset + 4 <= len(content):
        if content[offset] != _MARKER:
            return None, None
        marker = content[offset + 1]
        if marker == _MARKER:  # fill byte
            offset += 1
            continue
        if marker in _STANDALONE:
            offset += 2
            continue
        if marker in {0xD9, 0xDA}:  # end of image, or scan data before any frame header
            return None, None
        (length,) = struct.unpack(">H", content[offset + 2 : offset + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", content[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return None, None
