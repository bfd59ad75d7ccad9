"""Links sent by mail: a forgotten password (anyone) and invitations (admins). Thin:
`services.accounts.account_links` does the work; the reset mail leaves after the answer."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, status

from loraforge.api.deps import AdminUser, ClientIP, SessionDep, SettingsDep
from loraforge.api.schemas.account_links import (
    Accepted,
    InviteRequest,
    InviteResult,
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
)
from loraforge.api.schemas.auth import UserPublic
from loraforge.services.accounts import account_links
from loraforge.services.platform import mail

router = APIRouter()


def _origin(request: Request) -> str:
    return str(request.base_url)


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    operation_id="auth_request_password_reset",
    tags=["auth"],
)
def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
) -> Accepted:
    """Mail a link to choose a new password. The same 202 whether or not the address has an account
    (429 `password_reset_throttled` after too many requests from one address)."""
    outgoing = account_links.request_reset(
        session, settings, email=body.email, ip=ip, request_origin=_origin(request)
    )
    if outgoing is not None:
        background.add_task(mail.send_quietly, settings, outgoing)
    return Accepted(detail=account_links.REQUEST_ANSWER)


@router.post(
    "/auth/password-reset/confirm",
    response_model=PasswordResetDone,
    operation_id="auth_confirm_password_reset",
    tags=["auth"],
)
def confirm_password_reset(
    body: PasswordResetConfirm, session: SessionDep, ip: ClientIP
) -> PasswordResetDone:
    """Set the password with a mailed link's token (a reset or an invitation); every session of the
    account ends. 400 `invalid_token` (field `body.token`) for an unknown, used or expired link."""
    done = account_links.confirm(session, token=body.token, new_password=body.new_password, ip=ip)
    detail = "Your account is active; log in." if done.purpose == "invite" else "Password changed; log in."
    return PasswordResetDone(detail=detail, purpose=done.purpose, username=done.user.username)


@router.post(
    "/admin/users/invite",
    status_code=status.HTTP_201_CREATED,
    response_model=InviteResult,
    operation_id="admin_invite_user",
    tags=["admin"],
)
def invite_user(
    body: InviteRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
) -> InviteResult:
    """Create an account whose owner chooses the password through a mailed link (valid
    `invite_ttl_hours`). Without mail, `invite_url` holds the link for you to pass on."""
    invited = account_links.invite(
        session, settings, actor=admin, username=body.username, email=body.email, role=body.role,
        ip=ip, request_origin=_origin(request),
    )  # fmt: skip
    return InviteResult(
        user=UserPublic.model_validate(invited.user),
        mail_sent=invited.mail_sent,
        invite_url=invited.invite_url,
    )
