"""Login throttling → 429 with Retry-After: 10 failures in 15 minutes of one account (username and
email alike) from one address, or 30 from one address over all accounts. Another address is not
locked out of the account."""

from __future__ import annotations

from api_helpers import DEFAULT_PASSWORD, assert_error
from fastapi.testclient import TestClient

from loraforge.app import create_app


def _fail(api, account: str, times: int) -> None:
    for _ in range(times):
        assert api.login(account, "wrong-password").status_code == 401


def test_account_is_throttled_after_ten_failures(api):
    api.register("alice")
    _fail(api, "alice", 10)
    response = api.login("alice", DEFAULT_PASSWORD)  # even the right password waits
    error = assert_error(response, 429, "login_throttled")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    assert "try again" in error["message"]
    # Typing the email instead is no way around it: this client address is over the limit too.
    assert_error(api.login("alice@example.com", DEFAULT_PASSWORD), 429)


def test_address_is_throttled_across_accounts(api):
    # Spraying from one address: three times the per-account limit, over any accounts.
    for index in range(30):
        assert api.login(f"ghost{index % 7}", "wrong-password").status_code == 401
    api.register("bob")
    response = api.login("bob", DEFAULT_PASSWORD)
    assert_error(response, 429, "login_throttled")
    assert int(response.headers["retry-after"]) >= 1


def test_success_resets_the_account_counter(api):
    api.register("carol")
    _fail(api, "carol", 5)
    assert api.login("carol", DEFAULT_PASSWORD).status_code == 200
    _fail(api, "carol", 4)
    assert api.login("carol", DEFAULT_PASSWORD).status_code == 200


def test_throttle_survives_a_restart(api, settings, client):
    api.register("dave")
    _fail(api, "dave", 10)
    with TestClient(create_app(settings)) as restarted:
        response = api.login("dave", DEFAULT_PASSWORD, client=restarted)
        assert_error(response, 429, "login_throttled")


def test_throttled_and_failed_logins_are_audited(api):
    api.register("erin")
    _fail(api, "erin", 10)
    api.login("erin", DEFAULT_PASSWORD)
    admin_client = api.client
    # The admin logs in from the same (throttled) address, so read the audit log directly.
    with admin_client.app.state.db.session() as session:  # type: ignore[attr-defined]
        from sqlalchemy import select

        from loraforge.db.models import AuditLog

        actions = [row.action for row in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions.count("auth.login_failed") == 10
    assert "auth.login_throttled" in actions


def test_an_attacker_elsewhere_cannot_lock_the_owner_out(api, settings):
    api.register("gail")
    # Its own app instance on the same database: two TestClients must not share one app's event loop.
    with TestClient(create_app(settings), client=("203.0.113.66", 40000)) as attacker:
        for _ in range(10):
            assert api.login("gail", "wrong-password", client=attacker).status_code == 401
        assert_error(api.login("gail", DEFAULT_PASSWORD, client=attacker), 429, "login_throttled")
        assert_error(api.login("gail@example.com", "wrong-password", client=attacker), 429)
    # The owner, from their own address, signs in with the right password as usual.
    assert api.login("gail", DEFAULT_PASSWORD).status_code == 200


def test_username_and_email_count_as_one_account(api):
    api.register("hank")
    _fail(api, "hank", 5)
    _fail(api, "HANK@example.com", 5)
    assert_error(api.login("hank", DEFAULT_PASSWORD), 429, "login_throttled")
    # Well under the address's own limit: it is the account's count that stops this address.
    api.register("ivan")
    assert api.login("ivan", DEFAULT_PASSWORD).status_code == 200
