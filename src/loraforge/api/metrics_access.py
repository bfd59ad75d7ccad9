"""Who may read `GET /metrics`: a scraper with `Authorization: Bearer <metrics_token>` (when that
setting is set), or an admin's access token or API key. Anything else gets 401 (no or a bad
credential) or 403 (a valid one that is not an admin's).

The series name every route and count every status code: a map of the API and of how it is used,
which is no business of anonymous clients or ordinary users.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from loraforge.api.deps import SessionDep, SettingsDep
from loraforge.db.models import Role
from loraforge.errors import AuthenticationFailed
from loraforge.services.accounts import auth
from loraforge.services.platform import ownership


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def ensure_metrics_reader(request: Request, session: SessionDep, settings: SettingsDep) -> None:
    credential = _bearer(request)
    if credential is None:
        raise AuthenticationFailed("/metrics needs a bearer credential", code="not_authenticated")
    token = settings.metrics_token
    # Compared as bytes in constant time (surrogateescape: an environment value may hold any byte).
    if token is not None and hmac.compare_digest(
        credential.encode("utf-8", "surrogateescape"),
        token.get_secret_value().encode("utf-8", "surrogateescape"),
    ):
        return
    principal = auth.authenticate_bearer(session, settings=settings, credential=credential)
    session.commit()  # ends the read transaction before the (slow-ish) exposition
    ownership.ensure_role(principal.user, {Role.admin})


MetricsReader = Annotated[None, Depends(ensure_metrics_reader)]
