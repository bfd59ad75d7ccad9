"""The real `loraforge` CLI in a subprocess, against the configured database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from loraforge.app import create_app


def _cli(args: list[str], settings, stdin: str = "") -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("loraforge")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "loraforge"]
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(settings.data_dir),
        "LORAFORGE_DATABASE_URL": settings.sqlalchemy_url,
        "LORAFORGE_PASSWORD_HASH_TIME_COST": "1",
        "LORAFORGE_PASSWORD_HASH_MEMORY_KIB": "1024",
    }
    return subprocess.run(
        [*command, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_admin_create_user_with_password_stdin(settings):
    result = _cli(
        [
            "admin",
            "create-user",
            "opsy",
            "--email",
            "Opsy@Example.com",
            "--role",
            "operator",
            "--password-stdin",
        ],
        settings,
        stdin="cli-password-123\n",
    )
    assert result.returncode == 0, result.stderr
    assert "created user opsy" in result.stdout
    assert "cli-password-123" not in result.stdout + result.stderr
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/auth/login", json={"username_or_email": "opsy@example.com", "password": "cli-password-123"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["role"] == "operator"

    again = _cli(
        ["admin", "create-user", "OPSY", "--email", "x@example.com", "--password-stdin"],
        settings,
        "pw-long-enough\n",
    )
    assert again.returncode == 1 and "username" in again.stderr and "Traceback" not in again.stderr
    weak = _cli(
        ["admin", "create-user", "weak", "--email", "w@example.com", "--password-stdin"], settings, "short\n"
    )
    assert weak.returncode == 1 and "password" in weak.stderr
    bad_role = _cli(["admin", "create-user", "x1x", "--email", "e@example.com", "--role", "king"], settings)
    assert bad_role.returncode == 2


def test_migrate_openapi_and_settings_doc(settings):
    migrated = _cli(["migrate"], settings)
    assert migrated.returncode == 0, migrated.stderr
    from loraforge.db.migrate import head_revision

    assert f"database at revision {head_revision()}" in migrated.stdout

    document = _cli(["openapi"], settings)
    assert document.returncode == 0, document.stderr
    assert "/api/auth/login" in json.loads(document.stdout)["paths"]

    table = _cli(["settings-doc"], settings)
    assert table.returncode == 0
    assert "| `LORAFORGE_DATA_DIR` |" in table.stdout and "| `LORAFORGE_JWT_SECRET` |" in table.stdout
