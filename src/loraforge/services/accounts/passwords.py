"""Password hashing with argon2id (argon2-cffi) and the password rules."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from loraforge.errors import FieldIssue, InvalidInput
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


def validate_password(password: str, *, field: str = "password") -> None:
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


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time check (argon2 compares digests in constant time)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_dummy(password: str) -> None:
    verify_password(_dummy_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for resets and first-start bootstrap (about 96 bits)."""
    return secrets.token_urlsafe(12)
