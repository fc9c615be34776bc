"""What the Meta contract tests share: the token and ids, adapters aimed at the sandbox."""

from __future__ import annotations

from datetime import date

import requests

from chalicelib.channels.facebook import FacebookAdapter
from chalicelib.channels.graph import Polling
from chalicelib.channels.instagram import InstagramAdapter
from chalicelib.channels.threads import ThreadsAdapter
from devtools.sandbox import Sandbox

TOKEN = "EAAGm0PX4ZCps-sandbox_Page_Token-0123456789abcdef"
APP_TOKEN = "1000000000|sandbox-app-secret-0123456789"
PAGE_ID = "104512345678901"
IG_USER_ID = "17841400123456789"
THREADS_USER_ID = "me"
# Containers answer IN_PROGRESS once by default: a few milliseconds between reads keep tests fast.
FAST_POLLING = Polling(interval=0.01, max_wait=0.3)


def facebook_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    token: str = TOKEN,
    app_token: str | None = None,
    api_base: str | None = None,
    token_expires_on: date | None = None,
) -> FacebookAdapter:
    return FacebookAdapter(
        page_id=PAGE_ID,
        token=lambda: token,
        app_token=(lambda: app_token) if app_token else None,
        token_expires_on=token_expires_on,
        session=session,
        api_base=api_base or sandbox.base_for("facebook"),
        timeout=timeout,
    )


def instagram_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    api_base: str | None = None,
    polling: Polling = FAST_POLLING,
    token_expires_on: date | None = None,
) -> InstagramAdapter:
    return InstagramAdapter(
        user_id=IG_USER_ID,
        token=lambda: TOKEN,
        token_expires_on=token_expires_on,
        session=session,
        api_base=api_base or sandbox.base_for("instagram"),
        timeout=timeout,
        polling=polling,
    )


def threads_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    api_base: str | None = None,
    max_thread_posts: int = 3,
    polling: Polling = FAST_POLLING,
    token_expires_on: date | None = None,
) -> ThreadsAdapter:
    return ThreadsAdapter(
        user_id=THREADS_USER_ID,
        token=lambda: TOKEN,
        token_expires_on=token_expires_on,
        session=session,
        api_base=api_base or sandbox.base_for("threads"),
        max_thread_posts=max_thread_posts,
        timeout=timeout,
        polling=polling,
    )


# What each Meta adapter's health check reads (endpoint names as the sandbox counts them).
CHECK_READS = {"facebook": "me", "instagram": "content_publishing_limit", "threads": "read"}
ADAPTERS = {"facebook": facebook_adapter, "instagram": instagram_adapter, "threads": threads_adapter}
