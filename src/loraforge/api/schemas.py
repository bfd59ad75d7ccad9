"""Request and response models (`XCreate / XUpdate / XPublic`), apart from the ORM models.

Field rules come from the services (one rule, used by the API and the CLI alike). Request models
forbid unknown fields so a typo in a client is an error, not a silently ignored value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from loraforge.db.models import Role
from loraforge.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from loraforge.services.users import USERNAME_RULE, check_username, normalize_email

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
        description=f"At least {MIN_PASSWORD_LENGTH} characters.",
    ),
]
AnyPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- auth ----------------------------------------------------------------------------------------


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


# -- API keys ------------------------------------------------------------------------------------


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


# -- admin ---------------------------------------------------------------------------------------


class AdminUserView(UserPublic):
    updated_at: datetime


class UserPage(BaseModel):
    items: list[AdminUserView]
    total: int
    page: int
    page_size: int


class AdminUserUpdate(RequestModel):
    role: Role | None = None
    disabled: bool | None = None
    email: Email | None = None


class PasswordResetRequest(RequestModel):
    password: NewPassword | None = Field(
        default=None, description="The new password; omit to generate a temporary one."
    )


class PasswordResetResponse(BaseModel):
    temporary_password: str | None = Field(
        description="The generated password (shown once), or null when a password was given."
    )


class RecentLoginView(ResponseModel):
    user_id: int | None
    username: str
    at: datetime
    ip: str


class StatsResponse(ResponseModel):
    users_total: int
    users_by_role: dict[str, int]
    users_active: int
    users_disabled: int
    api_keys_active: int
    logins_last_24h: int
    failed_logins_last_24h: int
    recent_logins: list[RecentLoginView]


class AuditEntry(ResponseModel):
    id: int
    ts: datetime
    actor_id: int | None
    actor_username: str | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
    page: int
    page_size: int


# -- health --------------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
