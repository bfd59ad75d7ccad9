"""Health, metrics, the OpenAPI document, docs and the SPA with its history-mode fallback."""

from __future__ import annotations

import json
from pathlib import Path

from api_helpers import assert_error
from fastapi.testclient import TestClient

from loraforge import __version__
from loraforge.app import create_app


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_metrics_count_requests_per_route_template(api, client):
    alice = api.account("alice")
    client.get("/api/health")
    client.get(f"/api/admin/users/{alice.id}")
    client.get("/some/spa/page")
    response = client.get("/metrics", headers=api.admin().headers)  # admins only (test_api_exposure.py)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'loraforge_http_requests_total{method="GET",route="/api/health",status="200"} 1.0' in text
    assert 'route="/api/admin/users/{user_id}"' in text
    assert f"/api/admin/users/{alice.id}" not in text
    assert 'route="<unmatched>"' in text
    assert "loraforge_http_request_duration_seconds_bucket" in text


def test_openapi_document_has_stable_operation_ids_and_error_shape(client):
    document = client.get("/api/openapi.json").json()
    operation_ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {
        "auth_register",
        "auth_login",
        "auth_refresh",
        "auth_logout",
        "auth_get_me",
        "auth_update_me",
        "auth_change_password",
        "auth_list_api_keys",
        "auth_create_api_key",
        "auth_revoke_api_key",
        "admin_list_users",
        "admin_update_user",
        "admin_delete_user",
        "admin_reset_password",
        "admin_get_stats",
        "admin_list_audit",
        "health_get",
    } <= operation_ids
    login = document["paths"]["/api/auth/login"]["post"]
    assert login["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    assert "HTTPValidationError" not in json.dumps(document)
    assert client.get("/api/docs").status_code == 200


def test_ui_not_built_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "not been built" in response.text


def test_spa_served_with_history_fallback(settings, tmp_path: Path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>the app</html>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    settings.web_dist_dir = dist
    with TestClient(create_app(settings)) as client:
        assert client.get("/").text == "<html>the app</html>"
        deep = client.get("/admin/users?page=2")
        assert deep.status_code == 200 and deep.text == "<html>the app</html>"
        asset = client.get("/assets/app-1234.js")
        assert asset.text == "console.log(1)" and "immutable" in asset.headers["cache-control"]
        assert_error(client.get("/assets/missing.js"), 404)
        assert_error(client.get("/api/nothing"), 404, "not_found")
        nothing = client.get("/v1/nothing")  # the OpenAI-compatible API, never the SPA
        assert nothing.status_code == 404 and nothing.json()["error"]["type"] == "not_found_error"
        assert "outside" not in client.get("/../secret.txt").text
        assert "outside" not in client.get("/%2e%2e/secret.txt").text
        assert client.get("/api/health").json()["status"] == "ok"
