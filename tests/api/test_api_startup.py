"""First start: admin bootstrap, the generated JWT secret file, production refusals, schema checks."""

from __future__ import annotations

import stat

import pytest
from api_helpers import assert_error
from fastapi.testclient import TestClient
from pydantic import SecretStr

from loraforge.app import SchemaOutdatedError, create_app
from loraforge.db.migrate import downgrade
from loraforge.services.accounts import passwords
from loraforge.settings import InsecureSettingsError


def _login(client, username, password):
    return client.post("/api/auth/login", json={"username_or_email": username, "password": password})


def test_admin_from_settings_password(settings):
    settings.admin_username = "root"
    settings.admin_password = SecretStr("a-strong-admin-password")
    with TestClient(create_app(settings)) as client:
        response = _login(client, "root", "a-strong-admin-password")
        assert response.status_code == 200 and response.json()["user"]["role"] == "admin"
    # A second start neither duplicates nor resets the admin.
    settings.admin_password = SecretStr("another-password-now")
    with TestClient(create_app(settings)) as client:
        assert _login(client, "root", "a-strong-admin-password").status_code == 200
        assert_error(_login(client, "root", "another-password-now"), 401)


def test_random_admin_password_printed_once_when_no_user_exists(settings, capsys):
    settings.admin_password = None
    with TestClient(create_app(settings)) as client:
        printed = capsys.readouterr().err
        assert "username: admin" in printed
        password = printed.split("password: ")[1].split()[0]
        assert len(password) >= 12
        assert _login(client, "admin", password).status_code == 200
    with TestClient(create_app(settings)):
        assert "password:" not in capsys.readouterr().err


def test_no_default_admin_admin(settings):
    settings.admin_password = None
    with TestClient(create_app(settings)) as client:
        assert_error(_login(client, "admin", "admin"), 401)


def test_jwt_secret_generated_once_with_0600(settings):
    settings.jwt_secret = None
    with TestClient(create_app(settings)) as client:
        secret_file = settings.data_dir / "secrets" / "jwt_secret"
        assert secret_file.is_file()
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        first = secret_file.read_text()
        assert len(first.strip()) >= 32
        token = _login(client, "admin", "admin-password-for-tests").json()["access_token"]
    with TestClient(create_app(settings.model_copy())) as client:
        assert secret_file.read_text() == first
        # Tokens survive a restart because the secret does.
        assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"jwt_secret": None}, "LORAFORGE_JWT_SECRET must be set"),
        ({"jwt_secret": SecretStr("changeme")}, "LORAFORGE_JWT_SECRET is weak"),
        ({"jwt_secret": SecretStr("short-secret")}, "LORAFORGE_JWT_SECRET is weak"),
        ({"jwt_secret": SecretStr("a" * 64)}, "variety"),
        ({"admin_password": SecretStr("admin")}, "LORAFORGE_ADMIN_PASSWORD is weak"),
        ({"password_hash_memory_kib": 1024}, "password hashing"),
        ({"provider_secret_key": None}, "LORAFORGE_PROVIDER_SECRET_KEY must be set"),
    ],
)
def test_production_refuses_weak_or_default_secrets(settings, changes, complaint):
    strong = {
        "production": True,
        "jwt_secret": SecretStr("Q3v9-xJ2_kLm8pR4tW7zB1nC6dF0hG5yU8eA2sD4"),
        "admin_password": SecretStr("a-long-admin-password"),
        "password_hash_memory_kib": 19 * 1024,
        "password_hash_time_cost": 2,
        "provider_secret_key": SecretStr("q3Xv9bYz1s8RkT2wLm5nJp7dFh0cGa4eUi6oWy8tBx0="),
    }
    production = settings.model_copy(update={**strong, **changes})
    with pytest.raises(InsecureSettingsError, match=complaint):
        create_app(production)


def test_production_starts_with_strong_secrets(settings):
    production = settings.model_copy(
        update={
            "production": True,
            "jwt_secret": SecretStr("Q3v9-xJ2_kLm8pR4tW7zB1nC6dF0hG5yU8eA2sD4"),
            "admin_password": SecretStr("a-long-admin-password"),
            "password_hash_memory_kib": 19 * 1024,
            "password_hash_time_cost": 2,
            "provider_secret_key": SecretStr("q3Xv9bYz1s8RkT2wLm5nJp7dFh0cGa4eUi6oWy8tBx0="),
        }
    )
    with TestClient(create_app(production)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
    passwords.configure_from(settings)  # back to the cheap test cost for later tests


def test_outdated_schema_is_refused_without_auto_migrate(settings):
    downgrade(settings.sqlalchemy_url, "base")
    settings.auto_migrate = False
    with pytest.raises(SchemaOutdatedError), TestClient(create_app(settings)):
        pass
    settings.auto_migrate = True
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/health").json()["database"] == "ok"
