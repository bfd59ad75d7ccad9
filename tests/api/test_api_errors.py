"""Bad input of every kind gets the error shape naming the field; never a stack trace."""

from __future__ import annotations

import logging

from api_helpers import assert_error
from fastapi.testclient import TestClient


def test_malformed_json(client):
    response = client.post(
        "/api/auth/login", content=b'{"username_or_email": "x",', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "malformed_json", "body")


def test_empty_body_and_non_object_body(client):
    assert_error(
        client.post("/api/auth/login", headers={"content-type": "application/json"}), 422, field="body"
    )
    assert_error(client.post("/api/auth/login", json=[1, 2]), 422, "validation_error")
    assert_error(client.post("/api/auth/login", json="text"), 422, "validation_error")


def test_wrong_types_and_missing_fields_name_each_field(client):
    response = client.post("/api/auth/register", json={"username": 5, "password": ["x"]})
    error = assert_error(response, 422, "validation_error")
    fields = {detail["field"] for detail in error["details"]}
    assert fields == {"body.username", "body.email", "body.password"}
    assert all(detail["message"] for detail in error["details"])


def test_wrong_content_type(client):
    response = client.post("/api/auth/login", content=b"username=x", headers={"content-type": "text/plain"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


def test_oversized_body_by_content_length(client, settings):
    big = b'{"username": "' + b"x" * settings.max_body_bytes + b'"}'
    response = client.post("/api/auth/register", content=big, headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_oversized_streamed_body(client, settings):
    def chunks():
        for _ in range(settings.max_body_bytes // 1000 + 10):
            yield b"x" * 1000

    response = client.post(
        "/api/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_unknown_routes_and_methods(client):
    assert_error(client.get("/api/does-not-exist"), 404, "not_found")
    assert_error(client.post("/api/does-not-exist", json={}), 404, "not_found")
    # Under /v1 errors take OpenAI's shape, so the official client raises its usual exceptions.
    unknown = client.get("/v1/does-not-exist")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error" and unknown.json()["error"]["message"]
    too_large = client.post(
        "/v1/chat/completions",
        content=b"x" * (64 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    assert too_large.json()["error"]["type"] == "invalid_request_error"
    unauthenticated = client.get("/v1/models")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["type"] == "authentication_error"
    response = client.get("/api/auth/login")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_bad_path_parameter_names_the_field(api, client):
    admin = api.admin()
    assert_error(
        client.patch("/api/admin/users/abc", json={}, headers=admin.headers), 422, field="path.user_id"
    )


def test_unexpected_errors_are_500_with_the_shape_and_logged(app, caplog):
    @app.get("/api/test-boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/api/test-boom")
    error = assert_error(response, 500, "internal_error")
    assert "secret internal detail" not in response.text
    assert error["message"] == "internal server error"
    assert any(
        "secret internal detail" in (record.exc_text or str(record.exc_info)) for record in caplog.records
    )
