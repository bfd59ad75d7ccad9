"""Accounts: registration, login tokens, one's own profile and password, personal API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from loraforge.api.schemas.common import RequestModel, ResponseModel
from loraforge.db.models import Role
from loraforge.services.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from loraforge.services.accounts.users import USERNAME_RULE, check_username, normalize_email

Username = Annotated[str, Field(description=f"Username: {USERNAME_RULE}."), AfterValidator(check_username)]
Email = Annotated[
    str,
    Field(max_length=254, description="Email address (stored lower-case)."),
    AfterValidator(normalize_email),
]
NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=(
            f"At least {MIN_PASSWORD_LENGTH} characters, not a common password, not easy to guess "
            "(422 `weak_password`), no control characters (422 `invalid_password`)."
        ),
    ),
]
AnyPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class RegisterRequest(RequestModel):
    username: Username
    email: Email
    password: NewPassword


class LoginRequest(RequestModel):
    username_or_email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    password: AnyPassword
    remember_me: bool = Field(default=False, description="Keep the session for 30 days instead of 1.")


class UserSummary(ResponseModel):
    id: int
    username: str
    email: str
    role: Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (OAuth token type)
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserSummary


class UserPublic(ResponseModel):
    id: int
    username: str
    email: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class ProfileUpdate(RequestModel):
    username: Username | None = None
    email: Email | None = None


class PasswordChange(RequestModel):
    current_password: AnyPassword
    new_password: NewPassword
    revoke_api_keys: bool = Field(
        default=False,
        description="Also revoke all your API keys (do this if the old password may have leaked).",
    )


class ApiKeyCreate(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="Days until the key expires; omit for no expiry."
    )


class ApiKeyPublic(ResponseModel):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The full key. Shown only in this response; store it now.")
