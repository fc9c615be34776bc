"""A WebSub hub fake on loopback, for tests, benchmarks and demos of push.

It does what a hub does to a subscriber (W3C WebSub): takes subscribe and unsubscribe requests
(answering 202), verifies intent afterwards with a GET carrying a random challenge to the callback,
and publishes a topic's content to its verified subscribers, signed with each subscription's secret
(X-Hub-Signature), or left unsigned or forged on request. Bound to 127.0.0.1; it stops by itself
after `lifetime` seconds, so a test that forgets it leaves nothing running.

    with running_hub(lease_seconds=3600) as hub:
        ...  # the subscriber asks hub.url to subscribe
        hub.wait_for_verifications(1)
        hub.publish(topic, body)                   # -> [202]
        hub.publish(topic, body, sign="forged")    # signed with a secret the subscriber never gave
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import requests

_TIMEOUT = 10.0
_MAX_FORM_BYTES = 64 * 1024
_MAX_SECRET_BYTES = 200  # the spec's limit on hub.secret
_DEFAULT_LEASE_SECONDS = 864_000  # ten days, when the subscriber asks for no lease

Signing = Literal["valid", "forged", "none"]


@dataclass
class HubSubscription:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int


@dataclass(frozen=True)
class Verification:
    """One intent verification the hub made: what it asked and whether the subscriber confirmed."""

    mode: str
    callback: str
    topic: str
    status: int
    confirmed: bool


class WebSubHub:
    def __init__(self, *, lease_seconds: int | None = None, lifetime: float = 120.0) -> None:
        self.lease_seconds = lease_seconds  # granted on every subscription; None grants what was asked
        self.requests: list[dict[str, str]] = []  # every subscription request, as received
        self.verifications: list[Verification] = []
        self.subscriptions: dict[tuple[str, str], HubSubscription] = {}  # (callback, topic): verified
        self._changed = threading.Condition()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> WebSubHub:
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="websub-hub", daemon=True
        ).start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._timer.cancel()
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    # -- what a test drives ---------------------------------------------------------------------
    def wait_for_verifications(self, count: int, timeout: float = 5.0) -> list[Verification]:
        """Wait until the hub has made `count` verifications in all; returns them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.verifications) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.verifications)} of {count} verifications after {timeout} s"
                    )
                self._changed.wait(left)
            return list(self.verifications)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        content_type: str = "application/atom+xml",
        algorithm: str = "sha256",
        sign: Signing = "valid",
    ) -> list[int]:
        """Deliver `body` to every verified subscriber of `topic`; their answers' status codes."""
        with self._changed:
            targets = [s for s in self.subscriptions.values() if s.topic == topic]
        return [
            self.deliver(
                s.callback,
                topic,
                body,
                secret=s.secret,
                content_type=content_type,
                algorithm=algorithm,
                sign=sign,
            )
            for s in targets
        ]

    def deliver(
        self,
        callback: str,
        topic: str,
        body: bytes,
        *,
        secret: str | None,
        content_type: str = "application/atom+xml",
        algorithm: str = "sha256",
        sign: Signing = "valid",
    ) -> int:
        """One content distribution request, as §8 describes it; the callback's status code."""
        headers = {"Content-Type": content_type, "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
        key = secrets.token_urlsafe(32) if sign == "forged" else secret
        if sign != "none" and key is not None:
            signature = hmac.new(key.encode(), body, getattr(hashlib, algorithm)).hexdigest()
            headers["X-Hub-Signature"] = f"{algorithm}={signature}"
        return requests.post(callback, data=body, headers=headers, timeout=_TIMEOUT).status_code

    def verify(self, mode: str, callback: str, topic: str, lease_seconds: int | None) -> Verification:
        """Ask the subscriber to confirm a request, as §5.3 describes it."""
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if lease_seconds is not None:
            query["hub.lease_seconds"] = str(lease_seconds)
        try:
            response = requests.get(callback, params=query, timeout=_TIMEOUT)
            status, confirmed = response.status_code, response.ok and response.text == challenge
        except requests.RequestException:
            status, confirmed = 0, False
        return Verification(mode, callback, topic, status, confirmed)

    # -- what the subscriber drives -------------------------------------------------------------
    def _take_request(self, form: dict[str, str]) -> HTTPStatus:
        if not _is_valid_request(form):
            return HTTPStatus.BAD_REQUEST
        with self._changed:
            self.requests.append(form)
        # A real hub answers first and verifies later: so does this one.
        threading.Thread(target=self._verify_and_record, args=(form,), daemon=True).start()
        return HTTPStatus.ACCEPTED

    def _verify_and_record(self, form: dict[str, str]) -> None:
        mode, callback, topic = form["hub.mode"], form["hub.callback"], form["hub.topic"]
        asked = int(form.get("hub.lease_seconds") or _DEFAULT_LEASE_SECONDS)
        lease = (self.lease_seconds or asked) if mode == "subscribe" else None
        verification = self.verify(mode, callback, topic, lease)
        with self._changed:
            if verification.confirmed and mode == "subscribe":
                self.subscriptions[(callback, topic)] = HubSubscription(
                    callback, topic, form.get("hub.secret"), lease or asked
                )
            elif verification.confirmed:
                self.subscriptions.pop((callback, topic), None)
            self.verifications.append(verification)
            self._changed.notify_all()


@contextmanager
def running_hub(*, lease_seconds: int | None = None, lifetime: float = 120.0) -> Iterator[WebSubHub]:
    hub = WebSubHub(lease_seconds=lease_seconds, lifetime=lifetime).start()
    try:
        yield hub
    finally:
        hub.stop()


def _is_valid_request(form: dict[str, str]) -> bool:
    return (
        form.get("hub.mode") in ("subscribe", "unsubscribe")
        and urlsplit(form.get("hub.callback", "")).scheme in ("http", "https")
        and bool(form.get("hub.topic"))
        and len(form.get("hub.secret", "").encode()) < _MAX_SECRET_BYTES
        and form.get("hub.lease_seconds", "1").isdigit()
    )


class _Handler(BaseHTTPRequestHandler):
    hub: WebSubHub

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_FORM_BYTES:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        fields = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        self._answer(self.hub._take_request({name: values[-1] for name, values in fields.items()}))

    def _answer(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests assert on what the hub recorded."""
