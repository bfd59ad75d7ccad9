"""Hub push: the real huggingface_hub client with only its two network calls replaced.

Checks what the Hub would receive (repository, visibility, folder, token only inside the client),
and that refusals become clear errors: a malformed repo id before any call, an auth failure with
the HTTP status, an unreachable Hub, ModelScope without its client.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from huggingface_hub.errors import HfHubHTTPError

from loraforge.engine.export import hub_push
from loraforge.engine.export.errors import ExportError
from loraforge.engine.export.hub_push import HubAuthError, HubUnavailableError, HubUnreachableError, push

TOKEN = "hf_SecretTokenValue1234567890"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "export"
    (out / "sub").mkdir(parents=True)
    (out / "model.gguf").write_bytes(b"GGUF")
    (out / "Modelfile").write_text("FROM ./model.gguf\n")
    (out / "sub" / "x.json").write_text("{}")
    return out


def _record(monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def create_repo(self: HfApi, repo_id: str, **kw: Any) -> RepoUrl:
        calls.append({"call": "create_repo", "token": self.token, "repo_id": repo_id, **kw})
        if fail is not None:
            raise fail
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self: HfApi, **kw: Any) -> CommitInfo:
        calls.append({"call": "upload_folder", "token": self.token, **kw})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/abc123",
            commit_message=kw["commit_message"], commit_description="", oid="abc123",
        )  # fmt: skip

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_hf_push_creates_the_repo_and_uploads_the_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _record(monkeypatch)
    result = push(folder, "alice/tiny-q8", TOKEN, "huggingface", private=True)
    assert calls[0] == {
        "call": "create_repo", "token": TOKEN, "repo_id": "alice/tiny-q8",
        "private": True, "repo_type": "model", "exist_ok": True,
    }  # fmt: skip
    assert calls[1]["call"] == "upload_folder" and calls[1]["token"] == TOKEN
    assert calls[1]["repo_id"] == "alice/tiny-q8" and calls[1]["folder_path"] == str(folder)
    assert calls[1]["repo_type"] == "model"
    assert result == {
        "url": "https://huggingface.co/alice/tiny-q8",
        "commit_url": "https://huggingface.co/alice/tiny-q8/commit/abc123",
        "revision": "abc123", "hub": "huggingface", "repo_id": "alice/tiny-q8", "private": True, "files": 3,
    }  # fmt: skip
    assert TOKEN not in repr(result) and TOKEN not in caplog.text
    # the token was handed to the client, never saved where huggingface_hub keeps a login
    assert not any(TOKEN in p.read_text(errors="ignore") for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "repo_id", ["", "alice", "alice/", "/x", "a/b/c", "alice/bad name", "al--ice/x", "a/..x", "-a/b"]
)
def test_bad_repo_id_is_refused_before_any_call(
    folder: Path, monkeypatch: pytest.MonkeyPatch, repo_id: str
) -> None:
    calls = _record(monkeypatch)
    with pytest.raises(ExportError) as exc:
        push(folder, repo_id, TOKEN, "huggingface", private=False)
    assert exc.value.code == "invalid_input" and exc.value.details["field"] == "repo_id"
    assert calls == []


def test_other_invalid_input(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"hub": "gitlab"}, "hub"),
        ({"folder": tmp_path / "missing"}, "folder"),
        ({"token": " "}, "token"),
    ]
    for kwargs, field in cases:
        args: dict[str, Any] = {"folder": folder, "repo_id": "alice/m", "token": TOKEN, "hub": "huggingface"}
        with pytest.raises(ExportError) as exc:
            push(**{**args, **kwargs}, private=False)
        assert exc.value.details["field"] == field
    assert calls == []


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_failure_is_a_clear_error_without_the_token(
    folder: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    # a server that echoes the token back must not get it into our message
    err = HfHubHTTPError(
        f"{status} Client Error: bad token {TOKEN}", response=httpx2.Response(status, request=request)
    )
    _record(monkeypatch, fail=err)
    with pytest.raises(HubAuthError) as exc:
        push(folder, "alice/m", TOKEN, "huggingface", private=False)
    assert exc.value.code == "hub_auth_failed" and f"HTTP {status}" in exc.value.message
    assert "write access" in (exc.value.suggestion or "")
    assert TOKEN not in str(exc.value) + exc.value.message


def test_unreachable_hub(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record(monkeypatch, fail=httpx2.ConnectError("connection refused"))
    with pytest.raises(HubUnreachableError) as exc:
        push(folder, "alice/m", TOKEN, "huggingface", private=False)
    assert exc.value.code == "hub_unreachable"


@pytest.mark.skipif(
    importlib.util.find_spec("modelscope_hub") is not None, reason="ModelScope client installed"
)
def test_modelscope_without_its_client(folder: Path) -> None:
    assert hub_push.available("modelscope")[0] is False
    with pytest.raises(HubUnavailableError, match="modelscope-hub"):
        push(folder, "alice/m", TOKEN, "modelscope", private=True)


def test_modelscope_push_through_its_client(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """modelscope-hub's HubApi (create_repo, upload_folder) replaced by a recorder of the same shape."""
    import importlib.machinery
    import sys
    import types

    calls: list[tuple[Any, ...]] = []
    errors = types.ModuleType("modelscope_hub.errors")
    for name in (
        "HubError",
        "NetworkError",
        "AuthenticationError",
        "PermissionDeniedError",
        "AlreadyExistsError",
    ):
        setattr(errors, name, type(name, (Exception,), {}))

    class HubApi:
        def __init__(self, *, token: str) -> None:
            calls.append(("init", token))

        def create_repo(self, repo_id: str, repo_type: str, *, visibility: str) -> None:
            calls.append(("create_repo", repo_id, repo_type, visibility))
            raise errors.AlreadyExistsError("exists")  # an existing repository is reused

        def upload_folder(
            self, repo_id: str, repo_type: str, folder_path: str, *, commit_message: str
        ) -> Any:
            calls.append(("upload_folder", repo_id, repo_type, folder_path))
            return types.SimpleNamespace(commit_url="https://modelscope.cn/c/1", oid="1")

    mod = types.ModuleType("modelscope_hub")
    mod.__spec__ = importlib.machinery.ModuleSpec("modelscope_hub", None)
    mod.HubApi = HubApi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "modelscope_hub", mod)
    monkeypatch.setitem(sys.modules, "modelscope_hub.errors", errors)
    result = push(folder, "alice/m", TOKEN, "modelscope", private=True)
    assert calls == [
        ("init", TOKEN),
        ("create_repo", "alice/m", "model", "private"),
        ("upload_folder", "alice/m", "model", str(folder)),
    ]
    assert result["url"] == "https://modelscope.cn/models/alice/m" and result["revision"] == "1"
