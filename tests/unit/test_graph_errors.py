"""Graph's error codes as graph.classify maps them, including the ones the sandbox's faults do not produce
(account and custom throttles, business-use-case codes, Instagram's own codes), and the usage headers."""

from __future__ import annotations

import json

import pytest

from chalicelib.channels.base import AuthError, PermanentError, PublishError, RateLimited, RetryableError
from chalicelib.channels.graph import (
    DEFAULT_THROTTLE_SECONDS,
    PUBLISHING_LIMIT_SECONDS,
    GraphError,
    classify,
    graph_error,
    usage_wait,
)


def _error(code: int | None, subcode: int | None = None, *, transient: bool = False) -> GraphError:
    return GraphError(
        message="(#0) something",
        type="OAuthException",
        code=code,
        subcode=subcode,
        is_transient=transient,
        fbtrace_id="Ab1",
    )


def _classified(error: GraphError, status: int = 400, headers: dict[str, str] | None = None) -> PublishError:
    return classify(error, status=status, headers=headers or {}, platform="Facebook")


@pytest.mark.parametrize(
    ("code", "subcode", "family", "reason"),
    [
        (190, None, AuthError, "auth"),
        *[(190, subcode, AuthError, "auth") for subcode in range(458, 468)],
        (102, None, AuthError, "auth"),
        (4, None, RateLimited, "rate_limited"),
        (17, None, RateLimited, "rate_limited"),
        (32, None, RateLimited, "rate_limited"),
        (613, None, RateLimited, "rate_limited"),
        *[(code, None, RateLimited, "rate_limited") for code in range(80001, 80015)],
        (9, 2207042, RateLimited, "rate_limited"),  # Instagram's 50 posts a day
        (4, 2207051, PermanentError, "blocked"),  # Instagram's spam verdict, not a throttle
        (368, 1390008, PermanentError, "blocked"),
        (506, 1455006, PermanentError, "duplicate"),
        (10, None, PermanentError, "permission"),
        (200, None, PermanentError, "permission"),
        (299, None, PermanentError, "permission"),
        (100, None, PermanentError, "invalid_parameter"),
        (324, None, PermanentError, "image_unsuitable"),
        (36000, 2207004, PermanentError, "image_unsuitable"),
        (100, 1366046, PermanentError, "image_unsuitable"),
        (1, None, RetryableError, "server_error"),
        (2, None, RetryableError, "server_error"),
        (-1, 2207001, RetryableError, "server_error"),  # Instagram's server error, answered with 400
        (-2, 2207003, RetryableError, "server_error"),  # Instagram's media download timeout
        (9007, 2207027, RetryableError, "media_not_ready"),
        (12345, None, PermanentError, "graph_12345"),
    ],
)
def test_codes_map_to_their_family(
    code: int, subcode: int | None, family: type[PublishError], reason: str
) -> None:
    error = _classified(_error(code, subcode))
    assert type(error) is family
    assert error.reason == reason
    assert f"code {code}" in str(error)


def test_is_transient_makes_any_code_retryable() -> None:
    assert isinstance(_classified(_error(100, transient=True)), RetryableError)


def test_a_5xx_with_an_unknown_code_is_retryable() -> None:
    error = _classified(_error(12345), status=503)
    assert (type(error), error.reason) == (RetryableError, "server_error")


def test_the_token_is_masked_if_a_message_ever_carries_it() -> None:
    error = GraphError("bad token EAAbc123", "OAuthException", 190, None, False, None)
    classified = classify(error, status=400, headers={}, platform="Threads", secrets=("EAAbc123",))
    assert "EAAbc123" not in str(classified)


def test_publishing_limit_waits_an_hour() -> None:
    error = _classified(_error(9, 2207042))
    assert isinstance(error, RateLimited)
    assert error.retry_after == PUBLISHING_LIMIT_SECONDS


def test_throttle_wait_comes_from_the_business_use_case_header_in_minutes() -> None:
    usage = {
        "104512345678901": [
            {"type": "pages", "call_count": 100, "total_cputime": 10, "estimated_time_to_regain_access": 7},
            {"type": "instagram", "call_count": 20, "estimated_time_to_regain_access": 0},
        ]
    }
    error = _classified(_error(80001), headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7 * 60


def test_throttle_wait_from_flat_page_usage() -> None:
    headers = {"X-Page-Usage": json.dumps({"call_count": 100, "estimated_time_to_regain_access": 3})}
    assert usage_wait(headers) == 180


def test_usage_percentages_alone_give_no_wait_and_the_default_applies() -> None:
    headers = {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 60})}
    assert usage_wait(headers) is None
    error = _classified(_error(4), headers=headers)
    assert isinstance(error, RateLimited)
    assert error.retry_after == DEFAULT_THROTTLE_SECONDS


@pytest.mark.parametrize("raw", ["not json", "[]", '{"a": "b"}', '{"1": [5, "x"]}', ""])
def test_unreadable_usage_headers_are_ignored(raw: str) -> None:
    assert usage_wait({"X-Business-Use-Case-Usage": raw}) is None


def test_graph_error_reads_the_error_object_and_nothing_else() -> None:
    body = {
        "error": {
            "message": "m",
            "type": "OAuthException",
            "code": "190",
            "error_subcode": 463,
            "fbtrace_id": "x",
        }
    }
    assert graph_error(body) == GraphError("m", "OAuthException", 190, 463, False, "x")
    assert graph_error({"id": "1"}) is None
    assert graph_error({"error": "text"}) is None
    assert graph_error(None) is None
