"""Exports without the engine (scheduler off): formats and estimates, the request's validation with
field-named errors, the `exporting` version and its queued job, isolation and audit, the tick hook on a
finished job (files moved into the version's folder, sha256 and verification from export.json, or
`failed`), the launch spec, resumable single-file downloads (Range, 206, 416, ETag), and the refusal
to chat with an export. tests/api/test_api_exports_run.py runs the real engine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loraforge.db.models import Job, JobStatus
from loraforge.services.export import formats
from loraforge.services.export import launch_spec as export_launch
from loraforge.services.export import sync as export_sync
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings, demo_model_cache: Path) -> Settings:
    # Server folders may be registered from where the session's demo model was built.
    return settings.model_copy(
        update={"scheduler_enabled": False, "dataset_import_roots": str(demo_model_cache.parent)}
    )


def register_base(
    client: TestClient, admin: Account, folder: Path, *, shared: bool = False
) -> dict[str, Any]:
    body = {"name": "tiny-base", "source": "local", "ref": str(folder), "shared": shared}
    response = client.post("/api/models", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


def _export(client: TestClient, account: Account, version_id: int, **body: Any) -> Any:
    return client.post(f"/api/models/versions/{version_id}/exports", json=body, headers=account.headers)


def _fake_engine_output(output: Path) -> tuple[bytes, dict[str, Any]]:
    """What the engine leaves in RUN_DIR/output: a GGUF and export.json."""
    output.mkdir(parents=True, exist_ok=True)
    data = b"GGUF" + bytes(range(256)) * 40
    (output / "tiny-base-v1.q8_0.gguf").write_bytes(data)
    verification = {"ok": True, "reader": "transformers", "prompt": "Hi", "tokens_compared": 8,
                    "agreement": 1.0, "identical": True, "detail": "8/8 greedy tokens equal"}  # fmt: skip
    report = {
        "format": "gguf", "quantization": "q8_0",
        "files": [{"name": "tiny-base-v1.q8_0.gguf", "size": len(data),
                   "sha256": hashlib.sha256(data).hexdigest()}],
        "verification": verification,
        "commands": {"llama_cli": "llama-cli -m tiny-base-v1.q8_0.gguf -p Hi"},
    }  # fmt: skip
    (output / "export.json").write_text(json.dumps(report), encoding="utf-8")
    return data, report


def _tick(app: FastAPI, settings: Settings) -> None:
    with app.state.db.session() as session:
        export_sync.sync(session, settings)


def _end_job(app: FastAPI, job_id: int, status: JobStatus, error: dict[str, Any] | None = None) -> None:
    """The job's end as the watcher stores it (no engine runs here)."""
    with app.state.db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.error = status.value, error
        session.commit()


def test_formats_and_estimates(api: Api, client: TestClient, demo_model_cache: Path) -> None:
    admin = api.admin()
    listed = client.get("/api/exports/formats", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    by_name = {f["name"]: f for f in listed.json()["formats"]}
    assert set(by_name) == {"gguf", "gguf_lora", "ollama", "onnx", "merged"}
    assert by_name["gguf_lora"]["needs_adapter"] and by_name["merged"]["needs_adapter"]
    kquants = {q["name"]: q for q in by_name["gguf"]["quantizations"] if q["name"] in formats.K_QUANTS}
    ok, _ = formats.kquants_status()
    assert set(kquants) == set(formats.K_QUANTS)
    assert all(q["available"] is ok and (ok or q["reason"]) for q in kquants.values())
    assert client.get("/api/exports/formats").status_code == 401

    version = register_base(client, admin, demo_model_cache)["current_version"]
    sizes: dict[str, dict[str, Any]] = {}
    for quant in ("f32", "f16", "q8_0", "q4_0"):
        response = client.get(
            f"/api/models/versions/{version['id']}/exports/estimate",
            params={"format": "gguf", "quantization": quant}, headers=admin.headers,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        sizes[quant] = response.json()
    assert sizes["f32"]["file_bytes"] > sizes["f16"]["file_bytes"] > sizes["q8_0"]["file_bytes"]
    assert sizes["q8_0"]["file_bytes"] > sizes["q4_0"]["file_bytes"] > 0
    q8 = sizes["q8_0"]
    assert q8["memory_bytes"] > q8["file_bytes"] and q8["param_count"] == version["info"]["param_count"]
    assert 0 < q8["context_length"] <= 4096
    longer = client.get(
        f"/api/models/versions/{version['id']}/exports/estimate",
        params={"format": "gguf", "quantization": "q8_0", "context_length": 8192}, headers=admin.headers,
    ).json()  # fmt: skip
    assert longer["memory_bytes"] > q8["memory_bytes"] and longer["file_bytes"] == q8["file_bytes"]
    onnx = client.get(
        f"/api/models/versions/{version['id']}/exports/estimate",
        params={"format": "onnx"}, headers=admin.headers,
    ).json()  # fmt: skip
    assert onnx["quantization"] == "fp32" and onnx["file_bytes"] > 0
    estimate = f"/api/models/versions/{version['id']}/exports/estimate"
    assert_error(
        client.get(estimate, params={"format": "zip"}, headers=admin.headers), 422, field="query.format"
    )
    assert_error(
        client.get(estimate, params={"format": "gguf", "quantization": "int4"}, headers=admin.headers),
        422, code="invalid_quantization", field="query.quantization",
    )  # fmt: skip
    assert_error(client.get(estimate, params={"format": "gguf_lora"}, headers=admin.headers), 409,
                 code="not_an_adapter", field="query.format")  # fmt: skip


def test_request_validation_isolation_and_audit(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model_cache: Path
) -> None:
    admin = api.admin()
    bob = api.account("bob")
    model = register_base(client, admin, demo_model_cache)
    source = model["current_version"]
    vid = source["id"]

    assert_error(_export(client, admin, vid, format="zip"), 422, field="body.format")
    assert_error(_export(client, admin, vid, format="gguf", quantization="q3_k"), 422,
                 code="invalid_quantization", field="body.quantization")  # fmt: skip
    assert_error(
        _export(client, admin, vid, format="onnx", quantization="q8_0"), 422, field="body.quantization"
    )
    assert_error(_export(client, admin, vid, format="gguf", name="../evil"), 422, field="body.name")
    assert_error(_export(client, admin, vid, format="gguf", extra=1), 422, field="body.extra")
    assert_error(
        _export(client, admin, vid, format="gguf_lora"), 409, code="not_an_adapter", field="body.format"
    )
    assert_error(
        _export(client, admin, vid, format="merged"), 409, code="not_an_adapter", field="body.format"
    )
    if not formats.kquants_status()[0]:
        assert_error(_export(client, admin, vid, format="gguf", quantization="q4_k_m"), 422,
                     code="quantization_unavailable", field="body.quantization")  # fmt: skip
    # a stranger learns nothing: every route answers 404 as if the version did not exist
    assert_error(_export(client, bob, vid, format="gguf"), 404)
    assert_error(client.get(f"/api/models/versions/{vid}/exports/estimate", params={"format": "gguf"},
                            headers=bob.headers), 404)  # fmt: skip
    assert_error(client.get(f"/api/models/versions/{vid}/files/config.json", headers=bob.headers), 404)

    started = _export(client, admin, vid, format="gguf", quantization="Q8_0")
    assert started.status_code == 201, started.text
    job_id, exporting = started.json()["job_id"], started.json()["version"]
    assert exporting["status"] == "exporting" and exporting["format"] == "gguf"
    assert exporting["quantization"] == "q8_0" and exporting["is_current"] is False
    assert exporting["parent_version_id"] == vid and exporting["weights"] == "full"
    assert exporting["export"]["name"] == "tiny-base-v1" and exporting["export"]["files"] == []
    job = client.get(f"/api/jobs/{job_id}", headers=admin.headers).json()
    assert job["status"] == "queued" and job["spec"]["stage"] == "export"
    assert job["spec"]["model_name_or_path"] == "tiny-base@v1" and job["spec"]["export"]["format"] == "gguf"
    after = client.get(f"/api/models/{model['id']}", headers=admin.headers).json()
    assert after["current_version_id"] == vid and after["version_count"] == 2
    assert_error(client.get(f"/api/jobs/{job_id}", headers=bob.headers), 404)
    assert_error(client.get(f"/api/models/versions/{exporting['id']}", headers=bob.headers), 404)
    # an export is not a model to chat with, ready or not; nor one to export again
    messages = [{"role": "user", "content": "hi"}]
    chat = client.post("/v1/chat/completions", headers=admin.headers,
                       json={"model": "tiny-base@v2", "messages": messages})  # fmt: skip
    assert chat.status_code == 409 and "model_not_servable" in chat.text, chat.text
    assert_error(_export(client, admin, exporting["id"], format="gguf"), 409, code="not_exportable")
    # the model is in use while its export is pending
    assert_error(client.delete(f"/api/models/{model['id']}", headers=admin.headers), 409, code="model_in_use")

    # a reader who may not change the model (shared with everyone) is refused with 403
    client.patch(f"/api/models/{model['id']}", json={"shared": True}, headers=admin.headers)
    assert_error(_export(client, bob, vid, format="gguf"), 403, code="not_owner")

    audits = api.audit(admin, action="model.export_requested")
    assert len(audits) == 1 and audits[0]["details"]["new_version_id"] == exporting["id"]
    assert audits[0]["details"]["format"] == "gguf" and audits[0]["details"]["job_id"] == job_id

    # the launch spec: folders from the version's id, the template of its training spec (none: auto)
    with app.state.db.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        launch = export_launch.build(session, settings, row, settings.runs_dir / str(job_id), 0)
    block = launch.spec["export"]
    assert launch.spec["stage"] == "export" and launch.checkpoint_resume is False
    assert Path(block["model_name_or_path"]) == demo_model_cache.resolve()
    assert block["adapter_name_or_path"] is None and block["template"] == "auto" and block["verify"] is True
    assert (block["format"], block["quantization"], block["name"]) == ("gguf", "q8_0", "tiny-base-v1")


def test_tick_hook_finishes_or_fails_and_files_download_with_range(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model_cache: Path
) -> None:
    admin = api.admin()
    model = register_base(client, admin, demo_model_cache)
    vid = model["current_version"]["id"]
    first = _export(client, admin, vid, format="gguf", quantization="q8_0").json()
    second = _export(client, admin, vid, format="ollama", quantization="f16").json()

    data, report = _fake_engine_output(settings.runs_dir / str(first["job_id"]) / "output")
    _end_job(app, first["job_id"], JobStatus.succeeded)
    _end_job(
        app, second["job_id"], JobStatus.failed, {"code": "unknown_tokenizer", "message": "no pre-tokenizer"}
    )
    _tick(app, settings)

    ready = client.get(f"/api/models/versions/{first['version']['id']}", headers=admin.headers).json()
    assert ready["status"] == "ready" and ready["is_current"] is False
    assert ready["sha256"] == hashlib.sha256(data).hexdigest() and ready["verification"]["ok"] is True
    assert ready["size_bytes"] >= len(data) and ready["export"]["files"] == report["files"]
    assert ready["export"]["commands"]["llama_cli"].startswith("llama-cli")
    folder = settings.models_dir / str(model["id"]) / "versions" / str(ready["id"])
    assert (folder / "tiny-base-v1.q8_0.gguf").is_file() and (folder / "export.json").is_file()
    assert not (settings.runs_dir / str(first["job_id"]) / "output" / "tiny-base-v1.q8_0.gguf").exists()
    failed = client.get(f"/api/models/versions/{second['version']['id']}", headers=admin.headers).json()
    assert failed["status"] == "failed" and failed["info"]["error_code"] == "unknown_tokenizer"
    current = client.get(f"/api/models/{model['id']}", headers=admin.headers).json()["current_version_id"]
    assert current == vid

    # the download resumes: the first half "dropped", the rest asked for with Range
    url = f"/api/models/versions/{ready['id']}/files/tiny-base-v1.q8_0.gguf"
    whole = client.get(url, headers=admin.headers)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"] == f'"{ready["sha256"]}"'
    half = len(data) // 2
    head = client.get(url, headers={**admin.headers, "Range": f"bytes=0-{half - 1}"})
    assert head.status_code == 206 and head.headers["content-range"] == f"bytes 0-{half - 1}/{len(data)}"
    tail = client.get(
        url, headers={**admin.headers, "Range": f"bytes={half}-", "If-Range": whole.headers["etag"]}
    )
    assert (
        tail.status_code == 206
        and tail.headers["content-range"] == f"bytes {half}-{len(data) - 1}/{len(data)}"
    )
    joined = head.content + tail.content
    assert joined == data and hashlib.sha256(joined).hexdigest() == ready["sha256"]
    beyond = client.get(url, headers={**admin.headers, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    missing = client.get(f"/api/models/versions/{ready['id']}/files/missing.gguf", headers=admin.headers)
    assert_error(missing, 404, code="file_not_found")
    assert (
        client.get(
            f"/api/models/versions/{ready['id']}/files/..%2Fexport.json", headers=admin.headers
        ).status_code
        == 404
    )
    # a safetensors version's files download the same way (a weak ETag: no recorded sha256)
    config = client.get(
        f"/api/models/versions/{vid}/files/config.json", headers={**admin.headers, "Range": "bytes=0-0"}
    )
    assert config.status_code == 206 and config.content == b"{" and config.headers["etag"].startswith('W/"')
    # the archive of an export holds its files; the failed one has none to give
    assert (
        client.get(f"/api/models/versions/{ready['id']}/download", headers=admin.headers).status_code == 200
    )
    assert_error(client.get(f"/api/models/versions/{failed['id']}/files/x", headers=admin.headers), 409)

    # deleting the model with its files takes the export's folder too
    assert (
        client.delete(
            f"/api/models/{model['id']}", params={"files": "true"}, headers=admin.headers
        ).status_code
        == 204
    )
    assert not folder.exists()
