"""Password reset by mail and invitations, against a real SMTP server on loopback: the same answer
for any address, a mailed link whose token works once and expires, the old password and every session
gone afterwards; an admin's invitation whose link activates the account (or is handed back when no
mail can go out); and the reset through a real HTTP server, whose own address the link carries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from live_server import live_server
from smtp_server import Received, SmtpServer

from loraforge.db.base import utcnow
from loraforge.db.models import AccountLink
from loraforge.settings import Settings

NEW_PASSWORD = "violet-lantern-orbit-42"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False, **smtp.settings()})


def _token(message: Received) -> str:
    (link,) = message.links()
    return parse_qs(urlsplit(link).query)["token"][0]


def _request(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/api/auth/password-reset", json={"email": email})
    assert response.status_code == 202, response.text
    body: dict[str, str] = response.json()
    return body


def _confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return client.post("/api/auth/password-reset/confirm", json={"token": token, "new_password": password})


def _mails_to(smtp: SmtpServer, account: Account) -> list[Received]:
    return [m for m in smtp.received() if account.email in m.rcpt_tos]


def test_reset_by_mail_end_to_end(api: Api, client: TestClient, smtp: SmtpServer) -> None:
    alice = api.account("alice")
    answer = _request(client, alice.email)
    # The same answer for an unknown address and for text that is no address at all.
    assert _request(client, "nobody@example.com") == answer
    assert _request(client, "not an address") == answer
    message = smtp.wait_for(lambda m: alice.email in m.rcpt_tos)
    assert len(smtp.received()) == 1 and message.subject == "Reset your LoRAForge password"
    (link,) = message.links()
    assert link.startswith("http://testserver/reset-password?token=")  # the request's own origin
    token = _token(message)

    weak = _confirm(client, token, "password")
    assert_error(weak, 422, "weak_password", field="body.new_password")
    done = _confirm(client, token)
    assert done.status_code == 200, done.text
    assert done.json() == {"detail": "Password changed; log in.", "purpose": "reset", "username": "alice"}

    # Single use; the old session and password are gone; the new password works.
    assert_error(_confirm(client, token), 400, "invalid_token", field="body.token")
    assert_error(_confirm(client, "made-up-token"), 400, "invalid_token", field="body.token")
    assert_error(client.get("/api/auth/me", headers=alice.headers), 401)
    assert_error(api.login("alice", alice.password), 401)
    assert api.login("alice", NEW_PASSWORD).status_code == 200
    actions = [
        e["action"] for e in api.audit(api.admin(), target_type="user") if e["target_id"] == str(alice.id)
    ]
    assert {"user.password_reset_requested", "user.password_reset_completed"} <= set(actions)


def test_a_new_request_retires_the_old_link_and_links_expire(
    api: Api, client: TestClient, app: FastAPI, smtp: SmtpServer
) -> None:
    bob = api.account("bob")
    _request(client, bob.email)
    first = _token(smtp.wait_for(lambda m: bob.email in m.rcpt_tos))
    _request(client, bob.email)
    second = _token(smtp.wait_for(lambda m: bob.email in m.rcpt_tos and _token(m) != first))
    assert_error(_confirm(client, first), 400, "invalid_token")

    # The second link's time runs out.
    with app.state.db.session() as session:
        link = session.query(AccountLink).filter(AccountLink.expires_at > utcnow()).one()
        link.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert_error(_confirm(client, second), 400, "invalid_token")
    assert api.login("bob", bob.password).status_code == 200  # nothing changed


def test_requests_are_limited_per_address_and_per_account(
    api: Api, client: TestClient, app: FastAPI, smtp: SmtpServer
) -> None:
    carol = api.account("carol")
    for _ in range(5):
        _request(client, carol.email)
    # A few mails per account per hour; the rest are dropped without telling the caller.
    smtp.wait_for(lambda m: len(_mails_to(smtp, carol)) >= 3)
    assert len(_mails_to(smtp, carol)) == 3

    app.state.settings = app.state.settings.model_copy(update={"registration_max_per_hour": 6})
    _request(client, "someone@example.com")  # the sixth from this address
    limited = client.post("/api/auth/password-reset", json={"email": carol.email})
    assert_error(limited, 429, "password_reset_throttled")
    assert limited.headers["Retry-After"]
    api.register("dave")  # registrations count apart


def test_without_mail_the_answer_is_the_same(
    api: Api, client: TestClient, app: FastAPI, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    erin = api.account("erin")
    answer = _request(client, "nobody@example.com")
    app.state.settings = app.state.settings.model_copy(update={"smtp_host": None})
    with caplog.at_level(logging.WARNING, logger="loraforge.accounts"):
        assert _request(client, erin.email) == answer
    assert "no SMTP server" in caplog.text and erin.email not in caplog.text
    assert smtp.received() == []


def test_invitation_by_mail_and_by_hand(api: Api, client: TestClient, app: FastAPI, smtp: SmtpServer) -> None:
    admin = api.admin()
    researcher = api.account("rita")
    body = {"username": "newop", "email": "newop@example.com", "role": "operator"}
    assert_error(
        client.post("/api/admin/users/invite", json=body, headers=researcher.headers), 403, "forbidden"
    )
    assert_error(client.post("/api/admin/users/invite", json=body), 401)

    invited = client.post("/api/admin/users/invite", json=body, headers=admin.headers)
    assert invited.status_code == 201, invited.text
    result = invited.json()
    assert result["mail_sent"] is True and result["invite_url"] is None
    assert result["user"]["username"] == "newop" and result["user"]["role"] == "operator"
    message = smtp.wait_for(lambda m: "newop@example.com" in m.rcpt_tos)
    assert "invited" in message.subject and "/reset-password?token=" in message.body
    # Until accepted, no password opens the account.
    assert_error(api.login("newop", "anything-at-all-123"), 401)
    taken = client.post("/api/admin/users/invite", json=body, headers=admin.headers)
    assert_error(taken, 409, "username_taken")

    accepted = _confirm(client, _token(message))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["purpose"] == "invite" and accepted.json()["username"] == "newop"
    login = api.login("newop", NEW_PASSWORD)
    assert login.status_code == 200 and login.json()["user"]["role"] == "operator"
    assert_error(_confirm(client, _token(message)), 400, "invalid_token")

    # No mail server: the admin gets the link to pass on, and it works the same.
    app.state.settings = app.state.settings.model_copy(update={"smtp_host": None})
    by_hand = client.post(
        "/api/admin/users/invite",
        json={"username": "newbie", "email": "newbie@example.com"},
        headers=admin.headers,
    )
    assert by_hand.status_code == 201, by_hand.text
    assert by_hand.json()["mail_sent"] is False and by_hand.json()["user"]["role"] == "researcher"
    url = by_hand.json()["invite_url"]
    assert url.startswith("http://testserver/reset-password?token=")
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert _confirm(client, token).status_code == 200
    assert api.login("newbie", NEW_PASSWORD).status_code == 200
    actions = [e["action"] for e in api.audit(admin, action="user.") if "invit" in e["action"]]
    assert sorted(actions) == ["user.invitation_accepted"] * 2 + ["user.invited"] * 2


def test_reset_through_a_live_server_links_to_it(settings: Settings, smtp: SmtpServer) -> None:
    with live_server(settings) as server:
        frank = server.account("frank")
        response = server.http.post("/api/auth/password-reset", json={"email": frank.email})
        assert response.status_code == 202, response.text
        message = smtp.wait_for(lambda m: frank.email in m.rcpt_tos)
        (link,) = message.links()
        assert link.startswith(f"{server.base_url}/reset-password?token=")
        done = server.http.post(
            "/api/auth/password-reset/confirm", json={"token": _token(message), "new_password": NEW_PASSWORD}
        )
        assert done.status_code == 200, done.text
        assert server.login("frank", NEW_PASSWORD).token


def test_public_url_makes_the_link(settings: Settings, smtp: SmtpServer) -> None:
    from loraforge.app import create_app

    app = create_app(settings.model_copy(update={"public_url": "https://forge.example.com/"}))
    with TestClient(app) as client:
        Api(client).register("gina")
        _request(client, "gina@example.com")
        (link,) = smtp.wait_for(lambda m: "gina@example.com" in m.rcpt_tos).links()
        assert link.startswith("https://forge.example.com/reset-password?token=")
