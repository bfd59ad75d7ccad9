"""Password reset by mail and invitations (links that set a password)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.schemas.auth import Email, NewPassword, Username, UserPublic
from loraforge.api.schemas.common import RequestModel
from loraforge.db.models import Role


class PasswordResetRequest(RequestModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)] = Field(
        description="The account's email address (any text is accepted: the answer is the same)."
    )


class Accepted(BaseModel):
    detail: str


class PasswordResetConfirm(RequestModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The `token` of the mailed link (a reset or an invitation)."
    )
    new_password: NewPassword


class PasswordResetDone(BaseModel):
    detail: str
    purpose: Literal["reset", "invite"]
    username: str = Field(description="Log in with this name (or the email) and the new password.")


class InviteRequest(RequestModel):
    username: Username
    email: Email
    role: Role = Role.researcher


class InviteResult(BaseModel):
    user: UserPublic
    mail_sent: bool
    invite_url: str | None = Field(
        description="The activation link, only when the mail could not be sent (pass it on yourself)."
    )
