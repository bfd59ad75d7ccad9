"""Encryption at rest for secrets the server must use again (provider API keys): Fernet (AES-CBC + HMAC).

The key comes from `LORAFORGE_PROVIDER_SECRET_KEY` (any string: it is stretched with SHA-256 into a
Fernet key, so operators need not produce Fernet's exact format), else from a random secret created
once in `<data_dir>/secrets/provider_key` (mode 0600). Several replicas must share the configured key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from loraforge.errors import Unavailable
from loraforge.settings import Settings
from loraforge.settings_files import load_or_create_secret_file


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    # Cached by secret: building Fernet is cheap, but reading the key file on every request is not.
    digest = hashlib.sha256(secret.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _secret(settings: Settings) -> str:
    if settings.provider_secret_key is not None:
        return settings.provider_secret_key.get_secret_value()
    return load_or_create_secret_file(settings.secrets_dir / "provider_key")


def encrypt(settings: Settings, plaintext: str) -> str:
    """The ciphertext as URL-safe text (what the database column holds)."""
    return _fernet(_secret(settings)).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, ciphertext: str) -> str:
    """Raises Unavailable when the key changed since the value was stored (the key must be re-entered)."""
    try:
        return _fernet(_secret(settings)).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise Unavailable(
            "a stored secret cannot be decrypted (the provider secret key changed); enter the API key again",
            code="secret_unreadable",
        ) from None
