"""Production-mode safety rules: the weak or default secrets a production start refuses.

`Settings.check_production_safety` (in `loraforge.settings`) raises with these problems. This module
reads the settings through the small protocol below and imports nothing from loraforge, so it stays
on the floor of the package map beside `loraforge.settings`.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

# Values that people copy from tutorials; a production start refuses them.
_KNOWN_WEAK_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "changethis", "password", "admin", "jwt_secret", "test", "dev"}
)
_MIN_PRODUCTION_SECRET_LENGTH = 32
_MIN_PRODUCTION_ADMIN_PASSWORD_LENGTH = 12


class ProductionKnobs(Protocol):
    """The settings these rules read (loraforge.settings.Settings has them all)."""

    @property
    def jwt_secret(self) -> SecretStr | None: ...
    @property
    def provider_secret_key(self) -> SecretStr | None: ...
    @property
    def password_hash_memory_kib(self) -> int: ...
    @property
    def password_hash_time_cost(self) -> int: ...
    @property
    def admin_password(self) -> SecretStr | None: ...
    @property
    def admin_username(self) -> str: ...
    @property
    def smtp_host(self) -> str | None: ...
    @property
    def public_url(self) -> str | None: ...


def production_problems(settings: ProductionKnobs) -> list[str]:
    """Every reason these settings are unsafe for production, as readable sentences (empty: safe)."""
    problems: list[str] = []
    if settings.jwt_secret is None:
        problems.append(
            "LORAFORGE_JWT_SECRET must be set explicitly in production "
            "(a generated per-host secret breaks as soon as there are two replicas)"
        )
    else:
        value = settings.jwt_secret.get_secret_value()
        if value.lower() in _KNOWN_WEAK_SECRETS or len(value) < _MIN_PRODUCTION_SECRET_LENGTH:
            problems.append(
                f"LORAFORGE_JWT_SECRET is weak: use at least {_MIN_PRODUCTION_SECRET_LENGTH} random "
                "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        elif len(set(value)) < 8:
            problems.append("LORAFORGE_JWT_SECRET has too little variety to be random")
    if settings.provider_secret_key is None:
        problems.append(
            "LORAFORGE_PROVIDER_SECRET_KEY must be set explicitly in production (provider API keys are "
            "encrypted with it; a per-host generated key breaks with two replicas and, if lost, makes "
            "the stored keys unreadable). Generate one: `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`"
        )
    if settings.password_hash_memory_kib < 19 * 1024 or settings.password_hash_time_cost < 2:
        problems.append(
            "password hashing is weaker than OWASP's minimum for argon2id (19 MiB, 2 passes): "
            "raise LORAFORGE_PASSWORD_HASH_MEMORY_KIB / LORAFORGE_PASSWORD_HASH_TIME_COST"
        )
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
        if (
            password.lower() in _KNOWN_WEAK_SECRETS
            or len(password) < _MIN_PRODUCTION_ADMIN_PASSWORD_LENGTH
            or password.lower() == settings.admin_username.lower()
        ):
            problems.append(
                f"LORAFORGE_ADMIN_PASSWORD is weak: use at least "
                f"{_MIN_PRODUCTION_ADMIN_PASSWORD_LENGTH} characters, not the username"
            )
    if settings.smtp_host and not settings.public_url:
        # Without it, password-reset and invitation links are built from the request's Host header,
        # which whoever asks for a reset controls: the victim's mail would point at their host.
        problems.append(
            "LORAFORGE_PUBLIC_URL must be set in production when mail is on (LORAFORGE_SMTP_HOST): "
            "links in password-reset and invitation mail are built from it"
        )
    return problems
