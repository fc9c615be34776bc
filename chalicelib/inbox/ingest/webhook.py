"""What every inbox webhook does alike: cap the body, compare secrets in constant time, refuse
without detail that would help a forger, and answer at once once the event is on the lane."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from chalice.app import Request, Response

from chalicelib import observability as obs
from chalicelib.inbox.ingest import queue
from chalicelib.inbox.ingest.queue import MAX_WEBHOOK_BYTES
from chalicelib.observability import logger

_DIGITS = re.compile(r"[0-9]{1,12}")
_SHA256_HEADER = re.compile(r"sha256=([0-9a-f]{64})")


class Refused(Exception):
    """A webhook call answered with an error status; `reason` goes to the metric, never to the caller
    beyond its code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# Bodies the caller sees: the status says it all, and nothing says which check failed.
_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large"}


def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 beyond MAX_WEBHOOK_BYTES (declared or actual). A JSON body
    reaches Lambda as text; encoded back to UTF-8 it is the very bytes the platform sent and signed
    (both send UTF-8), so no binary media type is needed for the signature to hold."""
    declared = request.headers.get("content-length", "")
    if _DIGITS.fullmatch(declared) and int(declared) > MAX_WEBHOOK_BYTES:
        raise Refused(413, "too_large")
    body = request.raw_body
    body = body.encode() if isinstance(body, str) else body
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Refused(413, "too_large")
    return body


def json_object(body: bytes) -> dict[str, Any]:
    data = queue.json_object(body)
    if data is None:
        raise Refused(400, "not_a_json_object")
    return data


def same_secret(given: str | None, expected: str) -> bool:
    """compare_digest takes as long wherever the values differ: timing tells a forger nothing."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def signed_sha256(header: str | None, body: bytes, secret: str) -> bool:
    """Whether `sha256=<64 lowercase hex>` (Meta's X-Hub-Signature-256) is the HMAC-SHA256 of the raw
    body under the secret. Anything else — missing, another algorithm, wrong length — is not."""
    match = _SHA256_HEADER.fullmatch(header or "")
    if match is None:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(match.group(1).encode(), expected.encode())


def refusal(platform: str, refused: Refused) -> Response:
    obs.count(obs.WEBHOOKS_REFUSED, platform=platform, reason=refused.reason)
    logger.warning(
        "Inbox webhook refused",
        extra={"platform": platform, "status": refused.status, "reason": refused.reason},
    )
    return Response(body={"error": _ERRORS[refused.status]}, status_code=refused.status)


def accepted() -> Response:
    # Plain text: a JSON answer to Telegram's webhook could be read as a Bot API call.
    return Response(body="ok", status_code=200, headers={"Content-Type": "text/plain; charset=utf-8"})
