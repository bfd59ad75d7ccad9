"""Push an exported folder to the Hugging Face Hub or ModelScope with the user's token.

The token lives only in this call: it is handed to the client object (never `login()`, which writes
it to ~/.cache/huggingface or ~/.modelscope), it is never logged, and any error text that might
echo it has it masked. Hub errors become a few stable codes the platform maps to messages:
`invalid_input` (field repo_id / folder / hub), `hub_auth_failed`, `hub_unreachable`,
`hub_unavailable` (ModelScope client not installed), `hub_push_failed`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from pathlib import Path
from typing import Any, Literal

from loraforge.engine.export.errors import ExportError

Hub = Literal["huggingface", "modelscope"]
HUBS: tuple[Hub, ...] = ("huggingface", "modelscope")
# Both hubs name a repository "owner/name"; the Hub's own rule (huggingface_hub.validate_repo_id)
# allows letters, digits, "-", "_", "." (no "--" or "..", no leading/trailing "-" or "."), ≤ 96 each.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


class HubAuthError(ExportError):
    code = "hub_auth_failed"


class HubUnreachableError(ExportError):
    code = "hub_unreachable"


class HubUnavailableError(ExportError):
    code = "hub_unavailable"


class HubPushError(ExportError):
    code = "hub_push_failed"


def check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ExportError(
            f"{repo_id!r} is not a repository id: use owner/name (letters, digits, '-', '_', '.').",
            field="repo_id",
        )


def available(hub: str) -> tuple[bool, str]:
    """(True, "") when HUB's client is installed here; else (False, how to get it)."""
    if hub == "huggingface":
        return (
            (True, "")
            if importlib.util.find_spec("huggingface_hub")
            else (False, "pip install huggingface_hub")
        )
    if hub == "modelscope":
        if importlib.util.find_spec("modelscope_hub") is None:
            return False, "install the ModelScope client: pip install '.[modelscope]' (modelscope-hub)"
        return True, ""
    return False, f"unknown hub {hub!r} (one of {', '.join(HUBS)})"


def push(
    folder: Path, repo_id: str, token: str, hub: str, private: bool, *, commit_message: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Creates REPO_ID (if absent; an existing one is reused) and uploads every file of FOLDER as one
    commit. Returns {"hub", "repo_id", "url", "commit_url", "revision", "private", "files"}.

    `endpoint` (Hugging Face only): the Hub's base URL; the caller passes the one it checked against
    its outbound policy, so that URL is the one used (None: huggingface_hub's HF_ENDPOINT default)."""
    if hub not in HUBS:
        raise ExportError(f"hub must be one of {', '.join(HUBS)}, not {hub!r}.", field="hub")
    check_repo_id(repo_id)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not files:
        raise ExportError(f"{str(folder)!r} is not a folder with files to upload.", field="folder")
    if not token or not token.strip():
        raise HubAuthError("a hub access token with write permission is required.", field="token")
    message = commit_message or "Upload model exported by LoRAForge"
    try:
        if hub == "huggingface":
            result = _push_hf(folder, repo_id, token, private, message, endpoint)
        else:
            result = _push_modelscope(folder, repo_id, token, private, message)
    except ExportError as exc:
        raise type(exc)(_mask(exc.message, token), suggestion=exc.suggestion, **exc.details) from None
    return {**result, "hub": hub, "repo_id": repo_id, "private": private, "files": len(files)}


def _mask(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _push_hf(
    folder: Path, repo_id: str, token: str, private: bool, message: str, endpoint: str | None
) -> dict[str, Any]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    api = HfApi(token=token, endpoint=endpoint)
    try:
        repo = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message
        )
    except HFValidationError as exc:
        raise ExportError(f"the Hub rejects repository id {repo_id!r}: {exc}", field="repo_id") from None
    except OfflineModeIsEnabled:
        raise HubUnreachableError(
            "this server runs with HF_HUB_OFFLINE=1: pushing to the Hub is disabled."
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        # 404 on create/upload of an "owner/name" means the token may not write to that owner.
        if status in (401, 403, 404):
            raise HubAuthError(
                f"the Hugging Face Hub refused the token for {repo_id!r} (HTTP {status}).",
                suggestion="Use a token with write access to that user or organisation.",
                status=status,
            ) from None
        raise HubPushError(f"the Hugging Face Hub answered HTTP {status}: {exc}", status=status) from None
    except (OSError, ConnectionError) as exc:
        raise HubUnreachableError(f"the Hugging Face Hub cannot be reached: {exc}") from None
    except Exception as exc:  # httpx's transport errors are not OSErrors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise HubUnreachableError(f"the Hugging Face Hub cannot be reached: {exc}") from None
        raise
    return {
        "url": str(repo),
        "commit_url": getattr(commit, "commit_url", None),
        "revision": getattr(commit, "oid", None),
    }


def _push_modelscope(folder: Path, repo_id: str, token: str, private: bool, message: str) -> dict[str, Any]:
    ok, why = available("modelscope")
    if not ok:
        raise HubUnavailableError(f"ModelScope push is not available here: {why}")
    from modelscope_hub import HubApi
    from modelscope_hub.errors import (
        AlreadyExistsError,
        AuthenticationError,
        HubError,
        NetworkError,
        PermissionDeniedError,
    )

    api = HubApi(token=token)
    try:
        with contextlib.suppress(AlreadyExistsError):  # an existing repository gets a new commit
            api.create_repo(repo_id, "model", visibility="private" if private else "public")
        commit = api.upload_folder(repo_id, "model", str(folder), commit_message=message)
    except (AuthenticationError, PermissionDeniedError) as exc:
        raise HubAuthError(
            f"ModelScope refused the token for {repo_id!r}: {exc}",
            suggestion="Use a ModelScope SDK token with write access to that owner.",
        ) from None
    except NetworkError as exc:
        raise HubUnreachableError(f"ModelScope cannot be reached: {exc}") from None
    except HubError as exc:
        raise HubPushError(f"ModelScope refused the upload: {exc}") from None
    return {
        "url": f"https://modelscope.cn/models/{repo_id}",
        "commit_url": getattr(commit, "commit_url", None),
        "revision": getattr(commit, "oid", None) or getattr(commit, "commit_id", None),
    }
