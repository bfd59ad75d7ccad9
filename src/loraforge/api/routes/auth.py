"""Accounts and sessions: register, login, refresh, logout, profile, password, personal API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Response, status

from loraforge.api.deps import (
    ClientIP,
    CurrentPrincipal,
    CurrentUser,
    SameOrigin,
    SessionDep,
    SettingsDep,
    UserAgent,
)
from loraforge.api.ids import Id
from loraforge.api.schemas.auth import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    LoginRequest,
    PasswordChange,
    ProfileUpdate,
    RegisterRequest,
    TokenResponse,
    UserPublic,
    UserSummary,
)
from loraforge.errors import AuthenticationFailed, Forbidden
from loraforge.services.accounts import api_keys, auth, registration, users
from loraforge.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "loraforge_refresh"
# Only the auth endpoints ever see the refresh token; other requests never carry it.
REFRESH_COOKIE_PATH = "/api/auth"
# A readable companion of the refresh cookie that holds no secret, only "1": the web app probes
# /refresh at start-up only when it is there, so a signed-out visitor's page makes no request that
# fails (a failed request is a console error). Same lifetime as the refresh cookie, set and cleared
# with it; a page that learns the session is gone (a refused refresh) clears it itself.
SESSION_HINT_COOKIE = "loraforge_signed_in"

RefreshCookie = Annotated[
    str | None, Cookie(alias=REFRESH_COOKIE, description="Refresh token (HttpOnly cookie set by login).")
]


def _set_refresh_cookie(response: Response, result: auth.LoginResult, settings: Settings) -> None:
    refresh = result.refresh
    # Without "remember me" the cookie lives as long as the browser session (the server still
    # expires it after refresh_token_ttl_seconds); with it, it persists across browser restarts.
    max_age = settings.remember_me_ttl_seconds if refresh.remember_me else None
    response.set_cookie(
        REFRESH_COOKIE,
        refresh.token,
        max_age=max_age,
        expires=refresh.expires_at if refresh.remember_me else None,
        path=REFRESH_COOKIE_PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        SESSION_HINT_COOKIE,
        "1",
        max_age=max_age,
        expires=refresh.expires_at if refresh.remember_me else None,
        path="/",
        secure=settings.cookie_secure,
        httponly=False,
        samesite="strict",
    )


def _clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        REFRESH_COOKIE,
        path=REFRESH_COOKIE_PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(
        SESSION_HINT_COOKIE, path="/", secure=settings.cookie_secure, httponly=False, samesite="strict"
    )


def _issued(response: Response, result: auth.LoginResult, settings: Settings) -> TokenResponse:
    """A new session token pair (login or refresh): the refresh cookie set, the access token answered."""
    _set_refresh_cookie(response, result, settings)
    return TokenResponse(
        access_token=result.access_token,
        token_type="bearer",  # noqa: S106  (the OAuth token type, not a secret)
        expires_in=result.expires_in,
        user=UserSummary.model_validate(result.user),
    )


@router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=UserPublic, operation_id="auth_register"
)
def register(body: RegisterRequest, session: SessionDep, settings: SettingsDep, ip: ClientIP) -> UserPublic:
    """Create a researcher account. Log in afterwards to get tokens.

    Limited per client address (429 `registration_throttled`); a taken username or email gets one
    409 `username_or_email_taken` for both, so the answer does not tell which accounts exist.
    """
    if not settings.registration_open:
        raise Forbidden("registration is closed; ask an admin for an account", code="registration_closed")
    user = registration.register(
        session,
        username=body.username,
        email=body.email,
        password=body.password,
        ip=ip,
        max_per_hour=settings.registration_max_per_hour,
    )
    return UserPublic.model_validate(user)


@router.post("/login", response_model=TokenResponse, operation_id="auth_login")
def login(
    body: LoginRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    user_agent: UserAgent,
) -> TokenResponse:
    """Log in with username or email. Sets the refresh cookie; returns an access token."""
    result = auth.login(
        session,
        settings=settings,
        username_or_email=body.username_or_email,
        password=body.password,
        remember_me=body.remember_me,
        ip=ip,
        user_agent=user_agent,
    )
    return _issued(response, result, settings)


@router.post("/refresh", response_model=TokenResponse, operation_id="auth_refresh", dependencies=[SameOrigin])
def refresh(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    user_agent: UserAgent,
    refresh_token: RefreshCookie = None,
) -> TokenResponse:
    """Exchange the refresh cookie for a new access token and a new refresh cookie (rotation).

    A request with an `Origin` other than this server's is refused (403 `cross_origin`).
    """
    if not refresh_token:
        raise AuthenticationFailed("no refresh token", code="missing_refresh_token")
    result = auth.refresh(
        session, settings=settings, refresh_token=refresh_token, ip=ip, user_agent=user_agent
    )
    return _issued(response, result, settings)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, operation_id="auth_logout", dependencies=[SameOrigin]
)
def logout(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
    refresh_token: RefreshCookie = None,
) -> None:
    """End this session: its refresh tokens and access tokens stop working, the cookie is cleared.

    204 whatever the cookie; 403 `cross_origin` for a request from another site's page.
    """
    auth.logout(session, refresh_token=refresh_token, ip=ip)
    _clear_refresh_cookie(response, settings)


@router.get("/me", response_model=UserPublic, operation_id="auth_get_me")
def get_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.patch("/me", response_model=UserPublic, operation_id="auth_update_me")
def update_me(body: ProfileUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP) -> UserPublic:
    """Change your own username and/or email."""
    updated = users.update_profile(session, user=user, username=body.username, email=body.email, ip=ip)
    return UserPublic.model_validate(updated)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, operation_id="auth_change_password")
def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    ip: ClientIP,
    refresh_token: RefreshCookie = None,
) -> None:
    """Change your password. Your other sessions are logged out; this one stays.

    With `revoke_api_keys`, your API keys stop working too.
    """
    users.change_password(
        session,
        user=principal.user,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_families=auth.caller_sessions(session, principal=principal, refresh_token=refresh_token),
        revoke_api_keys=body.revoke_api_keys,
        ip=ip,
    )


@router.get("/api-keys", response_model=list[ApiKeyPublic], operation_id="auth_list_api_keys")
def list_api_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyPublic]:
    """Your API keys that are not revoked. Only the prefix of each is shown."""
    keys = api_keys.list_keys(session, actor=user, owner_id=user.id)
    return [ApiKeyPublic.model_validate(key) for key in keys]


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    operation_id="auth_create_api_key",
)
def create_api_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep, ip: ClientIP) -> ApiKeyCreated:
    """Create a key; the response holds the full key, which is never shown again."""
    created = api_keys.create_key(
        session, user=user, name=body.name, expires_in_days=body.expires_in_days, ip=ip
    )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(created.key).model_dump(), key=created.secret)


@router.delete(
    "/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="auth_revoke_api_key"
)
def revoke_api_key(key_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    api_keys.revoke_key(session, actor=user, key_id=key_id, ip=ip)
