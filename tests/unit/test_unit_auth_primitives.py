"""Passwords (argon2id), access tokens (HS256 only) and the throttle's Retry-After arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from loraforge.errors import AuthenticationFailed, InvalidInput
from loraforge.services.accounts import passwords, tokens
from loraforge.services.accounts.throttle import _retry_after

SECRET = "unit-test-secret-" + "z" * 32


def test_passwords_are_argon2id_and_verify():
    hashed = passwords.hash_password("a-good-password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "a-good-password")
    assert not passwords.verify_password(hashed, "a-bad-password")
    assert not passwords.verify_password("not-a-hash", "a-good-password")


def test_password_rules():
    passwords.validate_password("8 chars!")
    with pytest.raises(InvalidInput) as raised:
        passwords.validate_password("short")
    assert raised.value.fields[0].field == "password"
    with pytest.raises(InvalidInput):
        passwords.validate_password("x" * (passwords.MAX_PASSWORD_LENGTH + 1))


def test_access_token_round_trip_and_rejections():
    issued = tokens.issue_access_token(user_id=42, session_id="family-1", secret=SECRET, ttl_seconds=60)
    claims = tokens.decode_access_token(token=issued.token, secret=SECRET)
    assert (claims.user_id, claims.session_id) == (42, "family-1")
    with pytest.raises(AuthenticationFailed):
        tokens.decode_access_token(token=issued.token, secret="other-" + SECRET)
    unsigned = jwt.encode(
        {"sub": "42", "iss": "loraforge", "typ": "access", "iat": 1, "exp": 4_000_000_000},
        None,
        algorithm="none",
    )
    with pytest.raises(AuthenticationFailed):
        tokens.decode_access_token(token=unsigned, secret=SECRET)
    expired = tokens.issue_access_token(user_id=42, session_id="family-1", secret=SECRET, ttl_seconds=-10)
    with pytest.raises(AuthenticationFailed) as raised:
        tokens.decode_access_token(token=expired.token, secret=SECRET)
    assert raised.value.code == "token_expired"


def test_access_token_without_a_session_id_is_refused():
    # Such a token could not be revoked with its login session, so it is not accepted at all.
    now = datetime.now(UTC)
    claims = {"sub": "42", "iss": "loraforge", "typ": "access", "iat": now, "exp": now + timedelta(minutes=5)}
    with pytest.raises(AuthenticationFailed) as raised:
        tokens.decode_access_token(token=jwt.encode(claims, SECRET, algorithm="HS256"), secret=SECRET)
    assert raised.value.code == "invalid_token"


def test_retry_after_waits_for_the_oldest_counted_failure():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    window = timedelta(minutes=15)
    failures = [now - timedelta(minutes=m) for m in (10, 9, 8, 7, 6, 5, 4, 3, 2, 1)]
    assert _retry_after(failures, max_failures=10, window=window, now=now) == 5 * 60
    # With 12 failures, 3 must expire before the count drops below 10.
    more = [*failures, now - timedelta(minutes=12), now - timedelta(minutes=11)]
    assert _retry_after(more, max_failures=10, window=window, now=now) == 5 * 60
