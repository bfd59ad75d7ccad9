"""Settings: defaults, derived values, the secret file, production checks, the README table."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from loraforge.settings import InsecureSettingsError, Settings
from loraforge.settings_doc import settings_markdown_table
from loraforge.settings_files import load_or_create_secret_file


def test_defaults_and_env(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LORAFORGE_PORT", "9000")
    settings = Settings()
    assert settings.port == 9000
    assert settings.sqlalchemy_url == f"sqlite:///{(tmp_path / 'loraforge.db').resolve()}"
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 86400
    assert settings.remember_me_ttl_seconds == 30 * 86400


def test_bad_values_fail_fast(monkeypatch):
    monkeypatch.setenv("LORAFORGE_PORT", "not-a-port")
    with pytest.raises(ValidationError):
        Settings()


def test_secret_file_created_once_with_0600(tmp_path: Path):
    path = tmp_path / "secrets" / "jwt_secret"
    first = load_or_create_secret_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret_file(path) == first and len(first) >= 32


def test_signing_key_prefers_the_configured_secret(tmp_path: Path):
    assert Settings(data_dir=tmp_path, jwt_secret=SecretStr("configured")).signing_key() == "configured"
    generated = Settings(data_dir=tmp_path)
    assert generated.signing_key() == (tmp_path / "secrets" / "jwt_secret").read_text().strip()


def test_production_checks(tmp_path: Path):
    Settings(data_dir=tmp_path, production=False).check_production_safety()  # development: anything goes
    weak = Settings(
        data_dir=tmp_path, production=True, jwt_secret=SecretStr("secret"), admin_password=SecretStr("admin")
    )
    with pytest.raises(InsecureSettingsError) as raised:
        weak.check_production_safety()
    assert "JWT_SECRET" in str(raised.value) and "ADMIN_PASSWORD" in str(raised.value)
    assert "PROVIDER_SECRET_KEY" in str(raised.value)
    Settings(
        data_dir=tmp_path,
        production=True,
        jwt_secret=SecretStr("k2J9-vX4_pQ7mN1rT8wZ3bC6fH0yL5sD"),
        provider_secret_key=SecretStr("q3Xv9bYz1s8RkT2wLm5nJp7dFh0cGa4eUi6oWy8tBx0="),
    ).check_production_safety()


def test_production_mail_needs_the_public_url(tmp_path: Path):
    safe = {
        "data_dir": tmp_path,
        "production": True,
        "jwt_secret": SecretStr("k2J9-vX4_pQ7mN1rT8wZ3bC6fH0yL5sD"),
        "provider_secret_key": SecretStr("q3Xv9bYz1s8RkT2wLm5nJp7dFh0cGa4eUi6oWy8tBx0="),
        "smtp_host": "mail.example.com",
    }
    with pytest.raises(InsecureSettingsError, match="LORAFORGE_PUBLIC_URL"):
        Settings(**safe).check_production_safety()
    Settings(**safe, public_url="https://forge.example.com").check_production_safety()


def test_markdown_table_lists_every_setting():
    table = settings_markdown_table()
    for name in Settings.model_fields:
        assert f"`LORAFORGE_{name.upper()}`" in table
    assert table.startswith("| Environment variable | Default | Description |")
