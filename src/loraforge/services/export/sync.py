"""The exports' part of every scheduler tick (`sync`, registered by the app as a scheduler hook).

An `exporting` version whose job
- succeeded: the job's RUN_DIR/output (the files and export.json) moves into the version's own folder
  (`<models_dir>/<model>/versions/<version>`, so the job's retention never takes it), and the version
  gets size, sha256 of the main file, format, quantization and the verification; it becomes `ready`
  but never the model's current version (nothing serves an export);
- failed, was cancelled or stopped: the version becomes `failed` with the job's error.
Only `exporting` rows are looked at, so a tick costs one indexed query when nothing finished.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import FINAL, Job, JobStatus, ModelVersion
from loraforge.services.export.create import TARGET_KEY
from loraforge.services.models.versions import job_output, version_dir
from loraforge.services.platform.archives import folder_size
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.export")
EXPORT_FILE = "export.json"
_BATCH = 50


def _read_export(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _files(report: dict[str, Any]) -> list[dict[str, Any]]:
    """export.json's file list, keeping only plain names (a name is never a path here)."""
    out: list[dict[str, Any]] = []
    for entry in report.get("files") or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name == Path(name).name and not name.startswith("."):
            size, digest = entry.get("size"), entry.get("sha256")
            out.append({"name": name, "size": size if isinstance(size, int) else None,
                        "sha256": digest if isinstance(digest, str) else None})  # fmt: skip
    return out


def main_file(files: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The file an export is about: the GGUF (an Ollama bundle's Modelfile is beside it), else the largest."""
    ggufs = [f for f in files if f["name"].endswith(".gguf")]
    if ggufs:
        return ggufs[0]
    return max(files, key=lambda f: f["size"] or 0, default=None)


def _move_output(output: Path, target: Path) -> None:
    """Every entry of the job's output into the version folder (a rename on one file system)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(output.iterdir()):
        if entry.is_symlink():
            continue  # the engine writes none; never carry a link into the registry
        destination = target / entry.name
        if destination.exists():
            if destination.is_dir():
                shutil.rmtree(destination)
            else:
                destination.unlink()
        shutil.move(str(entry), str(destination))


def _fail(version: ModelVersion, job: Job, reason: str | None = None) -> None:
    version.status = "failed"
    error = job.error if isinstance(job.error, dict) else {}
    message = reason or str(error.get("message") or f"the export job ended {job.status}")
    version.info = {**(version.info or {}), "error": message[:2000], "error_code": error.get("code")}


def _finish(session: Session, settings: Settings, version: ModelVersion, job: Job) -> None:
    output = job_output(settings, job)
    report = _read_export(output / EXPORT_FILE)
    if report is None:
        _fail(version, job, "the export job succeeded but wrote no readable export.json")
        return
    files = _files(report)
    main = main_file(files)
    target = version_dir(settings, model_id=version.model_id, version_id=version.id)
    _move_output(output, target)
    verification = report.get("verification")
    listed = report.get("commands")
    commands: dict[str, Any] = listed if isinstance(listed, dict) else {}
    export_info = {**(version.info or {}).get("export", {}), "files": files,
                   "commands": {k: v for k, v in commands.items() if isinstance(v, str)}}  # fmt: skip
    version.path = None  # the id-derived folder
    version.status = "ready"
    version.sha256 = main["sha256"] if main is not None else None
    version.verification = verification if isinstance(verification, dict) else None
    if isinstance(report.get("quantization"), str):
        version.quantization = report["quantization"]
    version.size_bytes = folder_size(target)
    version.info = {**(version.info or {}), "export": export_info}


def sync(session: Session, settings: Settings) -> None:
    """One pass (module docstring); commits what it changed."""
    final = [s.value for s in FINAL]
    rows = session.execute(
        select(ModelVersion, Job)
        .join(Job, Job.id == ModelVersion.source_job_id)
        .where(ModelVersion.status == "exporting", Job.status.in_(final))
        .limit(_BATCH)
    ).all()
    for version, job in rows:
        if (job.spec or {}).get(TARGET_KEY) != version.id:
            continue
        if job.status == JobStatus.succeeded.value:
            try:
                _finish(session, settings, version, job)
            except OSError as exc:  # a full disk while moving: the version fails, the tick goes on
                logger.exception("finishing export version %s failed", version.id)
                _fail(version, job, f"moving the exported files failed: {exc}")
        else:
            _fail(version, job)
    if rows:
        session.commit()
