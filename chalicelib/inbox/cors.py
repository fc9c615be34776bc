"""CORS on the staff API: the one browser origin (the staff web app's) allowed to call /inbox routes.

The origin comes from the deployment: BANDITORE_STAFF_ORIGIN, which the CDK stack sets from its
setting of the same name (infra/app.py). Without it no route sends CORS headers, and browsers keep
pages of other origins from reading the API. Read when app.py is imported, as route decorators need
it (under CDK synth the stack's variables are in the environment then, as at run time).

With a CORS configuration Chalice answers preflight OPTIONS requests itself (API Gateway's mock
integration in AWS, the local server locally), without the authorizer, and adds the headers to
every response of the routes. The allowed origin is one fixed value whatever the request's Origin,
so responses never vary by Origin and need no `Vary: Origin`.
"""

from __future__ import annotations

import os
import re

from chalice.app import CORSConfig

STAFF_ORIGIN_ENV = "BANDITORE_STAFF_ORIGIN"
# What the staff app sends beyond the CORS-safelisted headers (Chalice adds a few AWS ones).
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
# What the staff app must read beyond the safelisted ones: the CSV export's next page, a 503's wait.
EXPOSED_HEADERS = ("X-Next-Cursor", "Retry-After")
MAX_AGE_SECONDS = 600  # browsers cap it anyway (Chromium at 2 hours)
# An origin is a scheme, a host and maybe a port: nothing after it, no wildcard. Plain http only
# for the operator's own machine.
_ORIGIN = re.compile(
    r"^(https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|http://(?:localhost|127\.0\.0\.1))(?::\d{1,5})?$"
)


def check_origin(origin: str) -> str:
    """The origin, if it is one a deployment may allow; ValueError saying what is expected."""
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(
            f"{STAFF_ORIGIN_ENV}: an origin such as https://staff.comune.example.it (https, a host and "
            "an optional port, no path and no '*'; http only for localhost)"
        )
    return origin


def staff_cors() -> CORSConfig | None:
    """The CORS configuration of every /inbox route, or None where no staff origin is configured."""
    origin = os.environ.get(STAFF_ORIGIN_ENV)
    if not origin:
        return None
    return CORSConfig(
        allow_origin=check_origin(origin),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=MAX_AGE_SECONDS,
    )
