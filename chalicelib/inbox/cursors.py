"""Pagination cursors: opaque to clients, tamper-evident and bound to the list they page.

A cursor carries the DynamoDB key to start after and the partition it belongs to (which holds the
tenant id), signed with HMAC-SHA256. A cursor that was altered, forged, or issued for another list
or tenant is refused with ValueError (the API's 400). The key comes from BANDITORE_CURSOR_KEY; when
it is unset it is derived from the table name, which differs per deployment but is not secret, so
deployments set the variable (the signature stops tampering, the partition check stops crossing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

from chalicelib import settings
from chalicelib.storage import dynamo

MAX_CURSOR_CHARS = 2048


def encode(scope: str, key: dict[str, str]) -> str:
    payload = _b64(json.dumps({"s": scope, "k": key}, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_sign(payload))}"


def decode(cursor: str, scope: str) -> dict[str, str]:
    """The key a cursor carries, if it is genuine and was issued for `scope`."""
    payload, _, signature = cursor.partition(".")
    if len(cursor) > MAX_CURSOR_CHARS or not hmac.compare_digest(_unb64(signature), _sign(payload)):
        raise ValueError("cursor: not a cursor issued by this service")
    data = json.loads(_unb64(payload))  # signed by us, so shaped by encode()
    if data["s"] != scope:
        raise ValueError("cursor: issued for another list")
    return {str(name): str(value) for name, value in data["k"].items()}


def _sign(payload: str) -> bytes:
    return hmac.new(_secret(), payload.encode(), hashlib.sha256).digest()


def _secret() -> bytes:
    configured = os.environ.get(settings.CURSOR_KEY_ENV)
    if configured:
        return configured.encode()
    return hashlib.sha256(b"banditore inbox cursors\x00" + dynamo.table_name().encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("cursor: not a cursor issued by this service") from error
