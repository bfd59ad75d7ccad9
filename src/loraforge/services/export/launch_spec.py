"""RUN_DIR/spec.json of an export job, built when the scheduler launches it (`build`, registered by the
app as the `export` stage of `services.jobs.admission`).

The folders are resolved here, at launch, from the source version's id (never from a name a user
wrote): the version may have been renamed, and its owner's access was checked again by admission. The
engine writes RUN_DIR/output/<files> and RUN_DIR/output/export.json; `services.export.sync` takes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, ModelVersion, RegisteredModel
from loraforge.services.export.create import SOURCE_KEY, STAGE, source_paths
from loraforge.services.jobs.admission import StageLaunch
from loraforge.settings import Settings


def _template(version: ModelVersion) -> str:
    """The chat template the version was trained with (its job's spec), else the tokenizer's own."""
    template = (version.spec or {}).get("template")
    return template if isinstance(template, str) and template else "auto"


def build(session: Session, settings: Settings, job: Job, run_dir: Path, num_gpus: int) -> StageLaunch:
    del run_dir, num_gpus  # the engine writes under RUN_DIR/output by itself; exports run on the CPU
    spec: dict[str, Any] = job.spec or {}
    source_id = spec.get(SOURCE_KEY)
    version = session.get(ModelVersion, source_id) if isinstance(source_id, int) else None
    model = session.get(RegisteredModel, version.model_id) if version is not None else None
    if version is None or model is None:
        raise RuntimeError("the version to export no longer exists")
    block = spec.get("export") or {}
    fmt = str(block.get("format"))
    base, adapter = source_paths(session, settings=settings, model=model, version=version, fmt=fmt)
    engine_spec = {
        "stage": STAGE,
        "export": {
            "model_name_or_path": str(base),
            "adapter_name_or_path": str(adapter) if adapter is not None else None,
            "format": fmt,
            "quantization": block.get("quantization"),
            "template": _template(version),
            "verify": True,
            "name": block.get("name") or f"{model.name}-v{version.number}",
        },
    }
    return StageLaunch(spec=engine_spec, checkpoint_resume=False)
