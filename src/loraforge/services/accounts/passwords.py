"""Password hashing with argon2id (argon2-cffi) and the password rules."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.accounts import strength
from loraforge.settings import Settings

MIN_PASSWORD_LENGTH = 8
# Hashing cost grows with length; a cap keeps one request from burning seconds of CPU.
MAX_PASSWORD_LENGTH = 256

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~0.1 s on a small CPU.
# `configure()` changes the cost from settings; stored hashes carry their own parameters, and
# hashes made with other parameters are upgraded at the next successful login.
DEFAULT_TIME_COST = 2
DEFAULT_MEMORY_KIB = 19 * 1024
DEFAULT_PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=DEFAULT_TIME_COST, memory_cost=DEFAULT_MEMORY_KIB, parallelism=DEFAULT_PARALLELISM
)
# Verified against when the account does not exist, so timing does not reveal which usernames exist.
_dummy_hash = _hasher.hash(secrets.token_urlsafe(16))


def configure(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Set the argon2id cost for new hashes (process-wide: called by create_app and the CLI)."""
    global _hasher, _dummy_hash
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == (time_cost, memory_kib, parallelism):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))


def configure_from(settings: Settings) -> None:
    """Apply the settings' argon2id cost (create_app and the CLI call this once at start)."""
    configure(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )


def validate_password(password: str, *, field: str = "password", user_inputs: Iterable[str] = ()) -> None:
    """InvalidInput naming `field` unless the password may be used.

    Length bounds; no control characters or unpaired surrogates (a NUL or a newline is a paste
    accident, and a surrogate cannot even be hashed); not only whitespace; and not easy to guess
    (`strength`: a common password, or one built from `user_inputs` such as the username).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password too short",
            fields=[FieldIssue(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "password too long",
            fields=[FieldIssue(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")],
        )
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in password):
        raise InvalidInput(
            "password contains control characters",
            code="invalid_password",
            fields=[FieldIssue(field, "must not contain control characters (a NUL, a tab, a line break …)")],
        )
    if not password.strip():
        raise InvalidInput(
            "password is only whitespace",
            code="weak_password",
            fields=[FieldIssue(field, "must not be only spaces")],
        )
    problem = strength.weakness(password, user_inputs=user_inputs)
    if problem is not None:
        raise InvalidInput(
            "password too easy to guess", code="weak_password", fields=[FieldIssue(field, problem)]
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time check (argon2 compares digests in constant time)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    except UnicodeEncodeError:
        # An unpaired surrogate cannot be UTF-8 encoded; no stored password contains one.
        return False


def verify_dummy(password: str) -> None:
    verify_password(_dummy_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for resets and first-start bootstrap (about 96 bits)."""
    return secrets.token_urlsafe(12)
