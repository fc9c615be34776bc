"""The X-Hub-Signature check of WebSub pushes: only the HMAC of the exact body under the subscription's
own secret, by one of the spec's four methods, passes; everything else is refused without an error."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from chalicelib.alerts.websub import signature_is_valid

SECRET = "s3gr3to-della-sottoscrizione-di-prova-0123456"
BODY = "<feed><title>Allerta arancione: città a rischio</title></feed>".encode()


def _signed(method: str, body: bytes = BODY, secret: str = SECRET) -> str:
    return f"{method}={hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()}"


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_each_method_of_the_spec_is_accepted(method: str) -> None:
    assert signature_is_valid(_signed(method), BODY, SECRET)


def test_hex_case_and_surrounding_spaces_do_not_matter() -> None:
    method, _, signature = _signed("sha256").partition("=")
    assert signature_is_valid(f" {method.upper()}={signature.upper()} ", BODY, SECRET)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    assert not signature_is_valid(_signed("sha256", secret="un-altro-segreto"), BODY, SECRET)


def test_a_body_signed_for_another_subscription_is_refused() -> None:
    """A genuine push to one subscription, replayed to another (each has its own secret)."""
    other_secret = "segreto-di-un-altra-sottoscrizione-987654321"
    replayed = _signed("sha256", secret=other_secret)
    assert signature_is_valid(replayed, BODY, other_secret)
    assert not signature_is_valid(replayed, BODY, SECRET)


def test_a_changed_body_is_refused() -> None:
    assert not signature_is_valid(_signed("sha256"), BODY.replace(b"arancione", b"rossa"), SECRET)
    assert not signature_is_valid(_signed("sha256"), BODY + b"\n", SECRET)


@pytest.mark.parametrize(
    "header",
    [
        _signed("md5"),  # a genuine HMAC, by a method the spec does not name
        "sha1=" + _signed("sha256").partition("=")[2],  # the method says one thing, the value another
        "sha512=" + _signed("sha256").partition("=")[2],
        "sha256=" + _signed("sha512").partition("=")[2],
        "hmac-sha256=" + _signed("sha256").partition("=")[2],
    ],
    ids=[
        "md5",
        "sha1-label-sha256-value",
        "sha512-label-sha256-value",
        "sha256-label-sha512-value",
        "bad-name",
    ],
)
def test_a_wrong_algorithm_is_refused(header: str) -> None:
    assert not signature_is_valid(header, BODY, SECRET)


@pytest.mark.parametrize(
    "header",
    [
        _signed("sha256")[:-1],
        _signed("sha256")[:-2],
        _signed("sha256") + "0",
        _signed("sha256") + _signed("sha256").partition("=")[2],
    ],
    ids=["one-short", "two-short", "one-long", "doubled"],
)
def test_a_wrong_length_is_refused(header: str) -> None:
    assert not signature_is_valid(header, BODY, SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256",
        "sha256=",
        "=" + _signed("sha256").partition("=")[2],
        "sha256=è" * 20,
        "sha256=\x00",
    ],
    ids=["missing", "empty", "no-value", "empty-value", "no-method", "not-ascii", "control"],
)
def test_a_missing_or_malformed_signature_is_refused_without_an_error(header: str | None) -> None:
    assert not signature_is_valid(header, BODY, SECRET)


def test_a_near_miss_is_refused_wherever_it_differs() -> None:
    """A comparison that stopped at the first or the last characters would let these through."""
    method, _, signature = _signed("sha256").partition("=")
    for position in (0, len(signature) // 2, len(signature) - 1):
        flipped = "0" if signature[position] != "0" else "1"
        near_miss = signature[:position] + flipped + signature[position + 1 :]
        assert not signature_is_valid(f"{method}={near_miss}", BODY, SECRET)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing cannot be measured reliably in a test, so this checks what decides: the given and the
    expected signature meet only in hmac.compare_digest, whose answer is the answer."""
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(given: Any, expected: Any) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    genuine = _signed("sha256")
    forged = _signed("sha256", secret="un-altro-segreto")

    assert signature_is_valid(genuine, BODY, SECRET)
    assert not signature_is_valid(forged, BODY, SECRET)

    expected = genuine.partition("=")[2]
    assert [(_text(given), _text(wanted)) for given, wanted in compared] == [
        (expected, expected),
        (forged.partition("=")[2], expected),
    ]
    monkeypatch.setattr(hmac, "compare_digest", lambda given, expected: True)
    assert signature_is_valid(forged, BODY, SECRET)  # its verdict is the only verdict


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
