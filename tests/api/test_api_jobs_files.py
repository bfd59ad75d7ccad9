"""Checkpoints, artifacts and the engine log of a real run: listings, streamed archives, byte ranges,
downloads, and who may read them."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import Api, assert_error
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.services.platform import archives
from loraforge.settings import Settings

pytestmark = pytest.mark.slow


def _tar_names(content: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}  # type: ignore[union-attr]


@pytest.mark.engine_heavy
def test_checkpoints_artifacts_and_logs_of_a_finished_run(api: Api, settings: Settings, demo_model: Path):
    alice, bob, operator = api.account("alice"), api.account("bob"), api.account("olga", role="operator")
    dataset = sample_dataset(api.client, alice)
    spec = tiny_spec(dataset["id"], max_steps=4, save_strategy="steps", save_steps=2)
    job_id = create_job(api.client, alice, spec, start=True)["id"]
    wait_for(api.client, alice, job_id, {"succeeded"})
    run_dir = settings.runs_dir / str(job_id)
    base = f"/api/jobs/{job_id}"

    # Checkpoints: from the run directory, with what the engine reported.
    listing = api.client.get(f"{base}/checkpoints", headers=alice.headers).json()["items"]
    assert [c["name"] for c in listing] == ["checkpoint-2", "checkpoint-4"]
    assert [c["step"] for c in listing] == [2, 4]
    on_disk = archives.folder_size(run_dir / "checkpoints" / "checkpoint-2")
    assert listing[0]["size_bytes"] == on_disk > 0
    # When it was saved: an ISO 8601 time with its offset, minutes ago (not seconds read as milliseconds).
    saved = datetime.fromisoformat(listing[0]["created_at"])
    assert saved.utcoffset() is not None and abs((datetime.now(UTC) - saved).total_seconds()) < 600
    assert "loss" in listing[0]["metrics"] or listing[0]["metrics"] == {}

    archive = api.client.get(f"{base}/checkpoints/checkpoint-2/archive", headers=alice.headers)
    assert archive.status_code == 200, archive.text
    assert archive.headers["content-type"] == "application/gzip"
    assert f'filename="job-{job_id}-checkpoint-2.tar.gz"' in archive.headers["content-disposition"]
    files = _tar_names(archive.content)
    prefix = f"job-{job_id}-checkpoint-2"
    state = (run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_bytes()
    assert files[f"{prefix}/trainer_state.json"] == state
    assert sum(len(v) for v in files.values()) == on_disk
    for bad in ("checkpoint-3", "..", "output", "checkpoint-2%2F..%2F..%2Fspec.json"):
        assert api.client.get(f"{base}/checkpoints/{bad}/archive", headers=alice.headers).status_code == 404

    # Artifacts: the output folder (adapter + tokenizer + summary), downloadable as an archive.
    artifacts = api.client.get(f"{base}/artifacts", headers=alice.headers).json()["items"]
    assert [a["name"] for a in artifacts] == ["output"]
    output = artifacts[0]
    assert output["kind"] == "adapter" and output["summary"]["steps"] == 4
    paths = {f["path"] for f in output["files"]}
    assert {"adapter_config.json", "summary.json"} <= paths
    assert output["size_bytes"] == archives.folder_size(run_dir / "output")
    archive = api.client.get(f"{base}/artifacts/output/archive", headers=alice.headers)
    files = _tar_names(archive.content)
    config = json.loads(files[f"job-{job_id}-output/adapter_config.json"])
    assert config["peft_type"] == "LORA"
    assert api.client.get(f"{base}/artifacts/checkpoints/archive", headers=alice.headers).status_code == 404
    assert api.client.get(f"{base}/artifacts/data/archive", headers=alice.headers).status_code == 404

    # Logs: the tail, then byte pages that follow the file to its end.
    raw = (run_dir / "engine.log").read_bytes()
    tail = api.client.get(f"{base}/logs", params={"tail": 5}, headers=alice.headers).json()
    assert len(tail["lines"]) == 5 and tail["size"] == len(raw) and tail["next_offset"] == len(raw)
    assert 0 <= tail["offset"] < len(raw)
    offset, pages, lines = 0, 0, []
    while True:
        page = api.client.get(f"{base}/logs", params={"offset": offset, "limit": 512}, headers=alice.headers)
        body = page.json()
        assert body["offset"] == offset and body["size"] == len(raw)
        if body["next_offset"] == offset:
            break
        lines += body["lines"]
        offset, pages = body["next_offset"], pages + 1
    assert offset == len(raw) and pages > 1
    everything = api.client.get(f"{base}/logs", params={"tail": 10_000}, headers=alice.headers).json()
    assert lines == everything["lines"]
    past = api.client.get(f"{base}/logs", params={"offset": len(raw) + 100}, headers=alice.headers).json()
    assert past["lines"] == [] and past["next_offset"] == len(raw)

    download = api.client.get(f"{base}/logs/download", headers=alice.headers)
    assert download.status_code == 200 and download.content == raw
    assert "attachment" in download.headers["content-disposition"]
    assert download.headers["content-type"].startswith("text/plain")
    part = api.client.get(f"{base}/logs/download", headers={**alice.headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == raw[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(raw)}"
    suffix = api.client.get(f"{base}/logs/download", headers={**alice.headers, "Range": "bytes=-7"})
    assert suffix.status_code == 206 and suffix.content == raw[-7:]
    beyond = api.client.get(f"{base}/logs/download", headers={**alice.headers, "Range": f"bytes={len(raw)}-"})
    assert_error(beyond, 416)

    # Who may read: the owner and staff; a stranger gets 404 everywhere.
    for path in (
        "/checkpoints", "/checkpoints/checkpoint-2/archive", "/artifacts", "/artifacts/output/archive",
        "/logs", "/logs/download", "/metrics",
    ):  # fmt: skip
        assert api.client.get(f"{base}{path}", headers=operator.headers).status_code == 200, path
        assert_error(api.client.get(f"{base}{path}", headers=bob.headers), 404)

    # The curve outlives the run directory's removal (retention) and goes with the job.
    metric_file = settings.data_dir / "job_metrics" / f"{job_id}.bin"
    assert metric_file.exists()
    models = api.client.get("/api/models", params={"job_id": job_id}, headers=alice.headers).json()["items"]
    for model in models:  # the succeeded job's output became a model; the job goes only after it
        assert api.client.delete(f"/api/models/{model['id']}", headers=alice.headers).status_code == 204
    assert api.client.delete(base, headers=alice.headers).status_code == 204
    assert not metric_file.exists()


def test_range_and_tar_helpers(tmp_path: Path) -> None:
    assert archives.parse_range(None, 100) is None
    assert archives.parse_range("bytes=0-", 100) == (0, 100)
    assert archives.parse_range("bytes=90-200", 100) == (90, 100)
    for bad in ("bytes=100-", "bytes=5-1", "bytes=0-1,3-4", "items=0-1", "bytes=-0", "bytes=x-"):
        with pytest.raises(ValueError):
            archives.parse_range(bad, 100)
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.bin").write_bytes(bytes(range(256)) * 5000)
    (folder / "empty").write_bytes(b"")
    (folder / "link").symlink_to("/etc/passwd")
    files = _tar_names(b"".join(archives.tar_gz_stream(folder, "x")))
    assert files == {"x": b"", "x/empty": b"", "x/sub": b"", "x/sub/a.bin": bytes(range(256)) * 5000}
