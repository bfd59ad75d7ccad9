"""The one ownership policy, as a table of who may act on whose resource."""

from __future__ import annotations

import pytest

from loraforge.db.models import Role, User
from loraforge.errors import Forbidden, NotFound
from loraforge.services.platform.ownership import STAFF, can_access, ensure_access, ensure_role, owner_scope


def _user(user_id: int, role: Role, *, disabled: bool = False) -> User:
    return User(
        id=user_id,
        username=f"u{user_id}",
        email=f"u{user_id}@example.com",
        role=role.value,
        disabled=disabled,
    )


@pytest.mark.parametrize(
    ("actor", "staff_may", "allowed"),
    [
        (_user(1, Role.researcher), (), True),  # the owner
        (_user(2, Role.researcher), (), False),
        (_user(2, Role.operator), (), False),
        (_user(2, Role.admin), (), False),  # private resources stay private even from admins
        (_user(2, Role.operator), STAFF, True),  # e.g. cancelling someone's job
        (_user(2, Role.admin), STAFF, True),
        (_user(2, Role.operator), {Role.admin}, False),
        (_user(1, Role.researcher, disabled=True), (), False),
    ],
)
def test_can_access(actor, staff_may, allowed):
    assert can_access(actor, 1, staff_may=staff_may) is allowed


def test_denial_hides_existence_unless_revealed():
    stranger = _user(2, Role.researcher)
    with pytest.raises(NotFound):
        ensure_access(stranger, 1, resource="job")
    with pytest.raises(Forbidden):
        ensure_access(stranger, 1, resource="job", reveal=True)
    ensure_access(_user(1, Role.researcher), 1)


def test_owner_scope_and_roles():
    assert owner_scope(_user(5, Role.researcher), staff_may=STAFF) == 5
    assert owner_scope(_user(5, Role.operator), staff_may=STAFF) is None
    ensure_role(_user(1, Role.admin), {Role.admin})
    with pytest.raises(Forbidden):
        ensure_role(_user(1, Role.operator), {Role.admin})
