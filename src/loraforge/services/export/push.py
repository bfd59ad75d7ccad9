"""Pushing a version's files to the Hugging Face Hub or ModelScope with the user's own token.

Who may push: whoever may change the model (its owner, admins), like an export: publishing a model is
acting for it; readers who may not change it get 403 `not_owner`, strangers 404.

The token is used for this one request and forgotten: it is handed to the hub client
(`engine.export.hub_push`, which never logs in to a file), never stored, logged, audited or echoed (the
engine masks it in hub messages, and this module masks it again in anything it raises).

The hub's base URL goes through the outbound policy (`services.platform.outbound`) before anything is
sent, like any URL the server connects to on a user's behalf: huggingface_hub honours `HF_ENDPOINT`
(a mirror or a private Hub), so an endpoint pointed at loopback or a private network is refused unless
an administrator allowed it. The URL checked is the URL handed to the client. The policy is checked
when the push starts; the hub client's own connections (and the storage URLs the hub hands out for
large files) are not routed through the guarded transport.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.engine.export import hub_push
from loraforge.engine.export.errors import ExportError
from loraforge.errors import Conflict, FieldIssue, InvalidInput, ServiceError
from loraforge.inference.upstream import UpstreamError
from loraforge.services.models.catalog import get_version, record
from loraforge.services.models.versions import ensure_ready, version_folder
from loraforge.services.platform import outbound
from loraforge.services.platform.archives import files_under
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.export.push")

DEFAULT_ENDPOINTS = {"huggingface": "https://huggingface.co", "modelscope": "https://www.modelscope.cn"}


@dataclass(frozen=True)
class PushRequest:
    hub: str
    repo_id: str
    token: str
    private: bool


def _invalid(field: str, message: str, code: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=code, fields=[FieldIssue(field=field, message=message)])


def hub_endpoint(hub: str) -> str:
    """The base URL the hub client will connect to, read when the push starts (the clients read the
    same variables): `HF_ENDPOINT` for the Hugging Face Hub, `MODELSCOPE_DOMAIN` (a host name, the
    ModelScope clients' convention) for ModelScope; the public hubs otherwise."""
    if hub == "huggingface":
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINTS[hub]).strip().rstrip("/")
    domain = (os.environ.get("MODELSCOPE_DOMAIN") or "").strip().rstrip("/")
    if not domain:
        return DEFAULT_ENDPOINTS["modelscope"]
    return domain if domain.startswith(("http://", "https://")) else f"https://{domain}"


def _files(folder: Path) -> list[Path]:
    """The version's regular files; a folder holding a symbolic link is refused, since the hub client
    would upload what the link points to (anything the server can read)."""
    if not folder.is_dir():
        return []
    if any(path.is_symlink() for path in folder.rglob("*")):
        raise Conflict(
            "this version's folder holds symbolic links; push refuses to follow them",
            code="model_files_unsafe",
        )
    return list(files_under(folder))


def _mapped(exc: ExportError, token: str) -> ServiceError:
    """The engine's hub_* codes as API errors. 422 (not 401) for a refused token: a 401 means the
    caller's own LoRAForge session ended, and the UI would sign them out."""
    message = exc.message.replace(token, "***")
    if exc.suggestion:
        message = f"{message} {exc.suggestion.replace(token, '***')}"
    if isinstance(exc, hub_push.HubAuthError):
        return _invalid("token", message, "hub_auth_failed")
    if isinstance(exc, hub_push.HubUnreachableError):
        return UpstreamError(message, http_status=502, code="hub_unreachable")
    if isinstance(exc, hub_push.HubUnavailableError):
        return Conflict(message, code="hub_unavailable")
    if isinstance(exc, hub_push.HubPushError):
        return UpstreamError(message, http_status=502, code="hub_push_failed")
    field = str(exc.details.get("field") or "repo_id")
    return _invalid(field if field in ("hub", "repo_id", "token") else "repo_id", message, "invalid_input")


def push_version(
    session: Session, *, settings: Settings, actor: User, version_id: int, request: PushRequest,
    ip: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Upload a ready version's files as one commit to `request.repo_id` (created if absent, as
    private unless `request.private` is false). Returns the hub's answer: url, commit_url, revision,
    hub, repo_id, private, files (how many were sent)."""
    model, version = get_version(session, actor=actor, version_id=version_id, change=True)
    ensure_ready(session, model, version)
    try:
        hub_push.check_repo_id(request.repo_id)
    except ExportError as exc:
        raise _invalid("repo_id", exc.message, "invalid_repo_id") from None
    files = _files(version_folder(settings, version))
    if not files:
        raise Conflict(
            f"{model.name}@v{version.number} has no files on this server to push", code="model_files_missing"
        )
    ok, why = hub_push.available(request.hub)
    if not ok:
        raise Conflict(f"pushing to {request.hub} is not available on this server: {why}",
                       code="hub_unavailable")  # fmt: skip
    endpoint = outbound.check_url(
        outbound.policy_for(settings), hub_endpoint(request.hub), field="hub", allow_query=False,
        allow_fragment=False,
    )  # fmt: skip
    folder, label = version_folder(settings, version), f"{model.name}@v{version.number}"
    model_id, source_version_id = model.id, version.id
    # End the read transaction: the upload may take minutes, and nothing here needs the rows meanwhile.
    session.commit()
    try:
        result = hub_push.push(
            folder, request.repo_id, request.token, request.hub, request.private,
            commit_message=f"Upload {label} (exported by LoRAForge)",
            endpoint=endpoint if request.hub == "huggingface" else None,
        )  # fmt: skip
    except ExportError as exc:
        raise _mapped(exc, request.token) from None
    except Exception as exc:  # never a 500 whose text or traceback might carry the token
        logger.warning("push of %s to %s failed: %s", label, request.hub, type(exc).__name__)
        raise UpstreamError(
            f"the push to {request.hub} failed ({type(exc).__name__})", http_status=502,
            code="hub_push_failed",
        ) from None  # fmt: skip
    details = {
        "version_id": source_version_id, "hub": request.hub, "repo_id": request.repo_id,
        "private": request.private, "files": result.get("files"), "revision": result.get("revision"),
    }  # fmt: skip
    record(session, AuditAction.model_pushed, actor=actor, model_id=model_id, ip=ip, details=details)
    session.commit()
    return result
